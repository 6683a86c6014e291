# tests/ops/ops.mk: the operations kit (ops/). `make check-ops` (part of
# `make check`): promtool check rules and the rules' unit tests
# (ops/prometheus/reshim-alerts.test.yml), then tests/ops/test_ops.sh (the
# names in the alerts and the dashboard against a live `reshim metrics`; the
# Kubernetes example). check-ops first installs, with npm, the packages
# test_ops.sh validates the Kubernetes objects with (ops-k8s-deps, into
# build/ops-node, once); where npm or its registry is not to be had, that
# part is left out with a note.
.PHONY: check-ops ops-k8s-deps

OPS_K8S_NPM := kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0

check-ops: all
	@echo "== the operations kit (ops/)"
	@[ -d $(BUILD)/ops-node/node_modules/kubernetes-models ] || \
		$(MAKE) --no-print-directory ops-k8s-deps >/dev/null 2>&1 || \
		echo "check-ops: npm install of the Kubernetes schema validator failed: schema check left out"
	@promtool check rules ops/prometheus/reshim-alerts.yml
	@cd ops/prometheus && promtool test rules reshim-alerts.test.yml
	@tests/ops/test_ops.sh

ops-k8s-deps:
	@mkdir -p $(BUILD)/ops-node
	cd $(BUILD)/ops-node && npm install --no-audit --no-fund --no-save --prefix . $(OPS_K8S_NPM)

CHECK_CPU += check-ops
