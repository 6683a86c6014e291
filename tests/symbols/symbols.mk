# tests/symbols/symbols.mk: `make check-symbols` (part of `make check`): the
# shim's own calls never run its own interposers (check_self_calls.sh); no
# files of shim/ call each other, round a loop of any length (cycles.sh).
.PHONY: check-symbols

check-symbols: all
	@echo "== the shim's own calls (sys.c), per object and in libreshim.so"
	@BUILD=$(abspath $(BUILD)) tests/symbols/check_self_calls.sh
	@echo "== files of shim/ call only downward (no loop among them)"
	@BUILD=$(abspath $(BUILD)) tests/symbols/cycles.sh

CHECK_CPU += check-symbols
