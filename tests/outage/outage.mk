# The outage matrix (tests/outage/matrix.py): real clients (curl, python3
# urllib, node; python3-requests and node keep-alive for the keep-alive race)
# against local peers that refuse, come up late, flap, reset, restart with
# requests in their accept queue (nginx), close idle keep-alive connections as
# the next request comes (nginx), drop SYNs (in a network namespace) or stop
# answering DNS; without reshim, with it, and behind an HAProxy sidecar tuned
# for retries.
#   make outage        the full matrix (100 runs per cell, three clients,
#                      15-25 minutes on a busy 2-core machine; also `make check-full`);
#                      prints the table and writes it to build/outage.md
#   make check-outage  a quick run (part of `make check`) that asserts outcomes
#                      only: reshim never does worse than no shim, and it
#                      rescues refused-then-up, late and flapping (>= 95 %)
#                      and reset on accept, the restarting backend's queue and
#                      the keep-alive race (>= 99 %, replayed; nginx's access
#                      log counts what the clients got); with RESHIM_REPLAY=
#                      connect the reset on accept fails as before replay and
#                      the clients' replay counters (pushed to reshim collect)
#                      stay 0.
#   make outage-longlived   the long-lived scenarios (tests/outage/longlived.py):
#                      one client process per cell making 300 requests against
#                      an nginx restarted over and over (python3 requests, node
#                      keep-alive pools, 20 in flight) and the flapping peer;
#                      writes build/outage-longlived.md and .json; asserts
#   make check-outage-longlived   a quick run of it with assertions (about 1.5
#                      minutes; part of `make check`)
# Needs root for the network namespaces (blackhole, dns) and nginx (queue,
# keepalive); without root the quick check runs the other scenarios only.
OUTAGE := tests/outage/matrix.py
# The namespace scenarios need root, network namespaces and iptables in them:
# probed when the quick check runs (a machine without them says so and runs
# the others).
OUTAGE_NS_PROBE = n=reshim-outage-probe-$$$$; if [ "$$(id -u)" = 0 ] && ip netns add $$n 2>/dev/null; then \
	ip netns exec $$n iptables -L INPUT >/dev/null 2>&1 && echo blackhole dns; ip netns del $$n 2>/dev/null; fi
OUTAGE_QUICK := refused,down,late,flapping,reset,reset-connect

.PHONY: outage check-outage outage-longlived check-outage-longlived
CHECK_EXTRA += check-outage check-outage-longlived

OUTAGE_FULL_CMD := /usr/bin/python3 $(OUTAGE) --reps 100 --batch 10 --clients curl,python,node \
	--out $(BUILD)/outage.md --json $(BUILD)/outage.json --assert

outage: all | $(BUILD)
	@$(OUTAGE_FULL_CMD)

# Under `make check-full` (RESHIM_CHECK_FULL=1) it is the full matrix.
check-outage: all | $(BUILD)
	@if [ "$${RESHIM_CHECK_FULL:-}" = 1 ]; then $(OUTAGE_FULL_CMD); else \
		ns=$$($(OUTAGE_NS_PROBE)); sc="$(OUTAGE_QUICK)$${ns:+,$$(echo $$ns | tr ' ' ,)}"; \
		[ -n "$$ns" ] || echo "outage: no network namespace with iptables here: black hole and DNS left out"; \
		if [ "$$(id -u)" = 0 ]; then sc="$$sc,queue,keepalive"; else \
		echo "outage: not root (nginx's workers run as nobody): queue and keep-alive race left out"; fi; \
		echo "outage: quick matrix ($$sc)"; \
		/usr/bin/python3 $(OUTAGE) --reps 10 --batch 20 --reps-of flapping=20,reset-connect=20,keepalive=20 \
		--clients curl,python --clients-of keepalive=python+node --scenarios "$$sc" \
		--out $(BUILD)/outage-quick.md --assert; fi

LONGLIVED := tests/outage/longlived.py
# Requests per cell of the quick run: enough to meet several nginx restarts
# in every row; the clients mostly sleep, so all rows run at once.
LONGLIVED_QUICK := 40,py-session=150,node-ka=150,node-ka20=300,node-new20=300

outage-longlived: all | $(BUILD)
	@/usr/bin/python3 $(LONGLIVED) --requests 300 --parallel 4 \
		--out $(BUILD)/outage-longlived.md --json $(BUILD)/outage-longlived.json --assert

check-outage-longlived: all | $(BUILD)
	@if [ "$${RESHIM_CHECK_FULL:-}" = 1 ]; then $(MAKE) --no-print-directory outage-longlived; else \
		echo "outage-longlived: quick run, requests per cell $(LONGLIVED_QUICK) (default first)"; \
		/usr/bin/python3 $(LONGLIVED) --requests $(LONGLIVED_QUICK) --parallel 7 --judge all \
		--out $(BUILD)/outage-longlived-quick.md --json $(BUILD)/outage-longlived-quick.json \
		--assert; fi
