# tests/fuzz/fuzz.mk: libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined).
#   make fuzz         each harness for FUZZ_SECONDS (default 120) over its kept
#                     corpus tests/fuzz/corpus/NAME; new inputs in build/fuzz/new/NAME
#   make fuzz-merge   adds to the kept corpus the new inputs that reach code it
#                     does not (libFuzzer -merge=1 -use_counters=0: edges only, not
#                     hit counts, so that the corpus stays a few hundred files)
#   make check-fuzz   (part of make check) builds each harness, runs its corpus
#                     and FUZZ_CHECK_SECONDS (default 4) of fuzzing, two harnesses
#                     at a time (FUZZ_JOBS, environment); fails on any
#                     crash, leak, UB or failed check. Without clang and its
#                     fuzzer runtime it fails, saying what to install.
#   make check-cli-hostile  (part of make check) tests/fuzz/cli_hostile.sh

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 120
FUZZ_CHECK_SECONDS ?= 4
FUZZ_NAMES := config dest request encode json snapjson
# The code under test gets libFuzzer's coverage instrumentation; the
# harnesses (their checkers) only the sanitizers, so that cov: and ft: count
# shim code and the fuzzer is not steered into the checkers' own branches.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -g -O1 -std=gnu11 $(WARN) $(FUZZ_SAN) -Ishim -Ishim/cli -Itests/fuzz
FUZZ_TARGET_CFLAGS := $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link
FUZZ_LDFLAGS := -fsanitize=fuzzer $(FUZZ_SAN)

# Objects of the code under test, per harness (shim/cli/X.c is cli_X.o).
FUZZ_OBJ_config := config dest
FUZZ_OBJ_dest := dest
FUZZ_ANSWERS := $(SNAP_MODS) jsonparse config dest
FUZZ_OBJ_request := $(FUZZ_ANSWERS)
FUZZ_OBJ_encode := $(FUZZ_ANSWERS)
FUZZ_OBJ_json := $(FUZZ_ANSWERS) cli_table
FUZZ_OBJ_snapjson := $(FUZZ_ANSWERS)

FUZZ_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-merge fuzz-toolchain check-fuzz check-cli-hostile

# Loud, not a skip: the toolchain is a dependency (scripts/install-deps.sh).
fuzz-toolchain:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "fuzz: $(FUZZ_CC) not found:" \
		"install clang and libclang-rt-14-dev (make deps)" >&2; exit 1; }
	@mkdir -p $(BUILD)/fuzz
	@printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' \
		>$(BUILD)/fuzz/probe.c
	@$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $(BUILD)/fuzz/probe $(BUILD)/fuzz/probe.c \
		2>$(BUILD)/fuzz/probe.err || { cat $(BUILD)/fuzz/probe.err >&2; echo "fuzz: $(FUZZ_CC)" \
		"cannot build a libFuzzer program: install libclang-rt-14-dev (make deps)" >&2; exit 1; }

$(BUILD)/fuzz/obj/%.o: shim/%.c $(SHIM_HDR) | fuzz-toolchain
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_TARGET_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/obj/cli_%.o: shim/cli/%.c $(SHIM_HDR) $(CLI_HDR) | fuzz-toolchain
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_TARGET_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/obj/fuzz_%.o: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(SHIM_HDR) $(CLI_HDR) \
		| fuzz-toolchain
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

define fuzz_rules
$(BUILD)/fuzz/fuzz_$(1): $(BUILD)/fuzz/obj/fuzz_$(1).o $$(FUZZ_OBJ_$(1):%=$(BUILD)/fuzz/obj/%.o)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $$@ $$^ -lm
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_rules,$(n))))

fuzz-build: $(FUZZ_BINS)

check-fuzz: all fuzz-build
	@tests/fuzz/run.sh check $(FUZZ_CHECK_SECONDS) $(FUZZ_NAMES)

fuzz: fuzz-build
	@tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-merge: fuzz-build
	@for n in $(FUZZ_NAMES); do \
		[ -d $(BUILD)/fuzz/new/$$n ] || continue; \
		$(BUILD)/fuzz/fuzz_$$n -merge=1 -use_counters=0 tests/fuzz/corpus/$$n $(BUILD)/fuzz/new/$$n \
			>$(BUILD)/fuzz/logs/$$n.merge.log 2>&1 || { echo "fuzz-merge $$n failed" >&2; exit 1; }; \
		echo "fuzz-merge $$n: $$(ls tests/fuzz/corpus/$$n | wc -l) inputs"; \
	done

# The CLI end to end against a process answering escape sequences (the
# regression test of the terminal-injection defects the fuzzers led to).
check-cli-hostile: all
	@tests/fuzz/cli_hostile.sh

CHECK_CPU += check-fuzz check-cli-hostile
CHECK_BUILD += $(FUZZ_BINS)
