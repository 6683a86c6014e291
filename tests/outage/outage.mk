# The outage matrix (tests/outage/matrix.py): real clients (curl, python3
# urllib, node) against local peers that refuse, come up late, flap, reset,
# drop SYNs (in a network namespace) or stop answering DNS; without reshim,
# with it, and behind an HAProxy sidecar tuned for retries.
#   make outage        the full matrix (100 runs per cell, three clients,
#                      10-20 minutes on a busy 2-core machine; also `make check-full`);
#                      prints the table and writes it to build/outage.md
#   make check-outage  a quick run (part of `make check`) that asserts outcomes
#                      only: reshim never does worse than no shim, and it
#                      rescues refused-then-up, late and flapping (>= 95 %).
# Needs root for the network namespaces (blackhole, dns); without root the
# quick check runs the loopback scenarios only.
OUTAGE := tests/outage/matrix.py
OUTAGE_NS_SCENARIOS := $(if $(filter 0,$(shell id -u)),blackhole dns)
OUTAGE_QUICK := refused down late flapping reset $(OUTAGE_NS_SCENARIOS)
comma := ,
empty :=
space := $(empty) $(empty)

.PHONY: outage check-outage
CHECK_EXTRA += check-outage

OUTAGE_FULL_CMD := /usr/bin/python3 $(OUTAGE) --reps 100 --batch 10 --clients curl,python,node \
	--out $(BUILD)/outage.md --json $(BUILD)/outage.json --assert

outage: all | $(BUILD)
	@$(OUTAGE_FULL_CMD)

# Under `make check-full` (RESHIM_CHECK_FULL=1) it is the full matrix.
check-outage: all | $(BUILD)
	@if [ "$${RESHIM_CHECK_FULL:-}" = 1 ]; then $(OUTAGE_FULL_CMD); else \
		echo "outage: quick matrix ($(OUTAGE_QUICK))"; \
		/usr/bin/python3 $(OUTAGE) --reps 10 --batch 20 --reps-of flapping=20 \
		--clients curl,python --scenarios $(subst $(space),$(comma),$(strip $(OUTAGE_QUICK))) \
		--out $(BUILD)/outage-quick.md --assert; fi
