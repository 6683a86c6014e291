# tests/ops/ops.mk: the operations kit (ops/). `make check-ops` (part of
# `make check`): promtool check rules and the rules' unit tests
# (ops/prometheus/reshim-alerts.test.yml), then tests/ops/test_ops.sh (the
# names in the alerts and the dashboard against a live `reshim metrics`; the
# Kubernetes example). `make ops-k8s-deps` installs, with npm, the packages
# test_ops.sh validates the Kubernetes objects with (into build/ops-node;
# without them that part is left out, with a note).
.PHONY: check-ops ops-k8s-deps

OPS_K8S_NPM := kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0

check-ops: all
	@echo "== the operations kit (ops/)"
	@promtool check rules ops/prometheus/reshim-alerts.yml
	@cd ops/prometheus && promtool test rules reshim-alerts.test.yml
	@tests/ops/test_ops.sh

ops-k8s-deps:
	@mkdir -p $(BUILD)/ops-node
	cd $(BUILD)/ops-node && npm install --no-audit --no-fund --no-save --prefix . $(OPS_K8S_NPM)

CHECK_EXTRA += check-ops
