# tests/stress/stress.mk: robustness stress of the preloaded shim (included
# by the top Makefile). `make check-stress`: the short runs (plain, then the
# shim built with ASan+UBSan and with TSan, then the CLI under valgrind);
# `make check-stress-full` (RESHIM_CHECK_FULL=1, from make check-full): the
# same for minutes. See tests/stress/run.sh for what each run checks.

STRESS_DIR := $(BUILD)/stress
STRESS_PROGS := $(patsubst tests/stress/%.c,$(STRESS_DIR)/%,$(wildcard tests/stress/st_*.c))
STRESS_SAN_CFLAGS := $(filter-out -O2,$(SHIM_CFLAGS)) -O1 -fno-omit-frame-pointer
# Built without ASan/TSan instrumentation (UBSan still on in the ASan
# build): the malloc path, which runs before the sanitizer's runtime is set
# up (see tests/stress/run.sh).
STRESS_SAN_PLAIN := alloc alloc_count alloc_gate alloc_map alloc_next heapprof heapsample

$(STRESS_DIR) $(STRESS_DIR)/asan-obj $(STRESS_DIR)/tsan-obj:
	mkdir -p $@

$(STRESS_DIR)/st_%: tests/stress/st_%.c tests/stress/stress_util.h | $(STRESS_DIR)
	$(CC) -O2 -g $(WARN) -std=gnu11 -o $@ $< -lpthread

$(STRESS_DIR)/asan-obj/%.o: shim/%.c $(SHIM_HDR) $(VERSION_STAMP) | $(STRESS_DIR)/asan-obj
	$(CC) $(STRESS_SAN_CFLAGS) $(if $(filter $*,$(STRESS_SAN_PLAIN)),-fsanitize=undefined,-fsanitize=address,undefined) -c $< -o $@
$(STRESS_DIR)/tsan-obj/%.o: shim/%.c $(SHIM_HDR) $(VERSION_STAMP) | $(STRESS_DIR)/tsan-obj
	$(CC) $(STRESS_SAN_CFLAGS) $(if $(filter $*,$(STRESS_SAN_PLAIN)),,-fsanitize=thread) -c $< -o $@

$(STRESS_DIR)/libreshim-asan.so: $(patsubst shim/%.c,$(STRESS_DIR)/asan-obj/%.o,$(SHIM_SRC)) shim/libreshim.map
	$(CC) $(SHIM_LDFLAGS) -fsanitize=address,undefined -o $@ $(filter %.o,$^) -ldl -lpthread
$(STRESS_DIR)/libreshim-tsan.so: $(patsubst shim/%.c,$(STRESS_DIR)/tsan-obj/%.o,$(SHIM_SRC)) shim/libreshim.map
	$(CC) $(SHIM_LDFLAGS) -fsanitize=thread -o $@ $(filter %.o,$^) -ldl -lpthread

STRESS_LIBS := $(STRESS_DIR)/libreshim-asan.so $(STRESS_DIR)/libreshim-tsan.so
STRESS_DEPS := all $(STRESS_PROGS)

.PHONY: check-stress check-stress-full check-stress-plain check-stress-asan check-stress-tsan \
	check-stress-valgrind

check-stress-plain: all $(STRESS_PROGS)
	@tests/stress/run.sh plain
check-stress-asan: all $(STRESS_PROGS) $(STRESS_DIR)/libreshim-asan.so
	@tests/stress/run.sh asan
check-stress-tsan: all $(STRESS_PROGS) $(STRESS_DIR)/libreshim-tsan.so
	@tests/stress/run.sh tsan
check-stress-valgrind: all
	@tests/stress/run.sh valgrind

# Every variant runs even when an earlier one failed; the target fails after.
# The two sanitized libraries build two files at a time (`make check` runs
# without -j): half the wait.
check-stress: $(STRESS_DEPS)
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) $(STRESS_LIBS)
	@rc=0; for v in plain asan tsan valgrind; do tests/stress/run.sh $$v || rc=1; done; exit $$rc

check-stress-full: $(STRESS_DEPS)
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) $(STRESS_LIBS)
	@rc=0; for v in plain asan tsan valgrind; do RESHIM_CHECK_FULL=1 tests/stress/run.sh $$v || rc=1; done; exit $$rc

CHECK_EXTRA += check-stress
CHECK_BUILD += $(STRESS_PROGS) $(STRESS_LIBS)
CHECK_FULL += check-stress-full
