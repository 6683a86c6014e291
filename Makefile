# reshim: `make` builds build/libreshim.so; `make check` runs every test;
# `make demo` the demo; `make bench` the benchmarks. See README.md.

# The version, in this one place: the library, the CLI, reshim-run, the man
# pages, the stats JSON and the packages take it from here (CHANGELOG.md says
# what each version changed).
VERSION := 0.2.0

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
BUILD := build

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
# Every compile gets the version as RESHIM_VERSION (shim/reshim.h has no
# default); $(VERSION_STAMP) changes only when VERSION does, and what is
# built with it depends on it, so a new version rebuilds them.
VERSION_CFLAGS := -DRESHIM_VERSION='"$(VERSION)"'
VERSION_STAMP := $(BUILD)/VERSION
# The glibc floor (shim/compat.h, force-included): imports pinned to their
# oldest symbol versions, so that a build here loads on glibc 2.17 and newer.
# The CLI names libdl and libpthread by their sonames, as DT_NEEDED even
# where they are empty (glibc 2.34 moved them into libc; an older glibc
# needs them).
COMPAT_CFLAGS := -include shim/compat.h
# The CLI's __libc_start_main as well (shim/compat.c).
CLI_COMPAT := -DRESHIM_COMPAT_START -Wl,--wrap=__libc_start_main
SHIM_LIBS := -Wl,--push-state,--no-as-needed -l:libdl.so.2 -l:libpthread.so.0 -Wl,--pop-state
# The library needs neither (shim/compat.h: its weak references find the
# functions in libc.so.6, or load libdl or libpthread on an older glibc):
# named as needed, the two stubs were 15 % of a preloaded /bin/true's
# start-up. On the link line still, as needed only, for a build host whose
# libc.so.6 lacks the versions compat.h pins.
LIB_LIBS := -Wl,--push-state,--as-needed -l:libdl.so.2 -l:libpthread.so.0 -Wl,--pop-state
SHIM_CFLAGS := $(CFLAGS) $(WARN) $(VERSION_CFLAGS) -std=gnu11 -fPIC -fvisibility=hidden \
	-ftls-model=initial-exec -fno-builtin-malloc -fno-builtin-calloc \
	-fno-strict-aliasing $(COMPAT_CFLAGS)
# -nostartfiles: without the compiler's crtbeginS.o/crtendS.o (the C++
# transactional-memory clone tables, __cxa_finalize at dlclose, the
# __gmon_start__ hook: nothing of ours), the loader looks up four weak
# symbols fewer, none of them defined anywhere (a search of every object):
# 2.9k of a preloaded /bin/true's instructions (callgrind). Constructors and
# destructors run from .init_array/.fini_array all the same; __dso_handle,
# which pthread_atfork passes on, is atfork.c's.
SHIM_LDFLAGS := -shared -nostartfiles -Wl,--version-script=shim/libreshim.map -Wl,-z,relro \
	-Wl,--no-undefined

# The encoders of snapshot.h, by concern: the output buffer and numbers,
# UTF-8, the stats JSON (key tables + encoder), the other answers' key
# tables (answerjson.c: heap, config, trim, errors), Prometheus, the stats
# socket's requests. Their parser (jsonparse.c, the CLI's one JSON reader)
# is for the CLI only: it is not in the library. answerjson.c names the
# RESHIM_ variables (config.c).
SNAP_MODS := sbuf utf8 snapjson answerjson prom request
SNAP_SRC := $(SNAP_MODS:%=shim/%.c)
SNAP_PARSE_SRC := shim/jsonparse.c

SHIM_SRC := $(filter-out $(SNAP_PARSE_SRC),$(wildcard shim/*.c))
SHIM_OBJ := $(patsubst shim/%.c,$(BUILD)/obj/%.o,$(SHIM_SRC))
SHIM_HDR := $(wildcard shim/*.h)

# The same library for musl programs (Alpine), where musl-gcc is installed
# (Debian's musl-tools): its own objects, the same flags. musl's libc holds
# libdl and libpthread.
ifeq ($(origin MUSL_CC),undefined)
MUSL_CC := $(shell command -v musl-gcc 2>/dev/null)
endif
MUSL_LIB := $(if $(MUSL_CC),$(BUILD)/musl/libreshim.so)
MUSL_OBJ := $(patsubst shim/%.c,$(BUILD)/musl/obj/%.o,$(SHIM_SRC))

# Pure modules: unit-tested without LD_PRELOAD.
UNIT_TESTS := config dest backoff policy breaker log budget cgroup encode heapsample rundir config_show replay_proto \
	dnscache cfiwalk
UNIT_SRC_config := shim/config.c shim/dest.c
UNIT_SRC_dest := shim/dest.c
UNIT_SRC_backoff := shim/backoff.c
UNIT_SRC_policy := shim/policy.c shim/backoff.c
UNIT_SRC_breaker := shim/breaker.c shim/policy.c shim/backoff.c shim/config.c shim/dest.c
UNIT_SRC_log := shim/log.c shim/sys.c
UNIT_SRC_budget := shim/budget.c shim/config.c shim/dest.c
UNIT_SRC_cgroup := shim/cgroup.c shim/sys.c
UNIT_SRC_encode := $(SNAP_SRC) $(SNAP_PARSE_SRC) shim/config.c shim/dest.c
UNIT_SRC_heapsample := shim/heapsample.c
UNIT_SRC_rundir := shim/rundir.c shim/sys.c shim/log.c shim/state.c
UNIT_SRC_config_show := shim/config_show.c shim/config.c shim/dest.c $(SNAP_SRC) $(SNAP_PARSE_SRC)
UNIT_SRC_replay_proto := shim/replay_proto.c
UNIT_SRC_dnscache := shim/dnscache.c shim/state.c shim/sys.c
UNIT_SRC_cfiwalk := shim/cfiwalk.c
UNIT_CFLAGS := -O1 -g $(WARN) -std=gnu11 -Ishim
UNIT_LIBS := -lcmocka -lm

.PHONY: FORCE print-version all deps deps-demo check check-full check-build check-cpu check-unit check-sanitize check-integration demo bench \
	install uninstall clean

# The CLI: shim/cli/*.c with the pure modules it shares with the library
# (the snapshot encoders, the configuration parser). libdl as the library
# has it: `heap` opens elfutils' libdw at run time (cli/symbols.c).
CLI_SRC := $(wildcard shim/cli/*.c)
CLI_HDR := $(wildcard shim/cli/*.h)
CLI_SHARED := $(SNAP_SRC) $(SNAP_PARSE_SRC) shim/config.c shim/config_show.c shim/dest.c shim/compat.c
CLI := $(if $(CLI_SRC),$(BUILD)/reshim)
# The same CLI static with musl (musl-gcc -static): one file that runs in any
# Linux image, Alpine, Debian, distroless or scratch alike (README, Install).
# Built when musl-gcc is there (`make deps` installs musl-tools). Named
# reshim-static, beside libreshim.so, so that `run` and `doctor` find the
# same library as build/reshim (build/libreshim.so; installed, its own dir).
CLI_STATIC := $(if $(and $(CLI_SRC),$(MUSL_CC)),$(BUILD)/reshim-static)

# The man pages and reshim-run as installed: @VERSION@ replaced.
MAN_PAGES := $(patsubst shim/man/%,$(BUILD)/man/%,$(wildcard shim/man/*.[1-8]))

all: $(BUILD)/libreshim.so $(MUSL_LIB) $(CLI) $(CLI_STATIC) $(BUILD)/reshim-run $(MAN_PAGES)

# Rewritten only when VERSION differs from what it holds (always checked).
$(VERSION_STAMP): FORCE | $(BUILD)
	@[ "$$(cat $@ 2>/dev/null)" = "$(VERSION)" ] || echo "$(VERSION)" >$@

$(BUILD)/reshim: $(CLI_SRC) $(CLI_SHARED) $(CLI_HDR) $(SHIM_HDR) $(VERSION_STAMP) | $(BUILD)
	$(CC) $(CFLAGS) $(WARN) $(VERSION_CFLAGS) $(COMPAT_CFLAGS) -std=gnu11 -Ishim -Ishim/cli -o $@ $(CLI_SRC) \
		$(CLI_SHARED) $(CLI_COMPAT) -lm $(SHIM_LIBS)

# uthash (uthash-dev) is one header (the CLI's tables, the library's DNS
# cache); musl-gcc sees musl's headers only, so it gets a directory that
# holds uthash.h alone.
UTHASH_H := $(firstword $(wildcard /usr/include/uthash.h /usr/local/include/uthash.h) /usr/include/uthash.h)
$(BUILD)/uthash/uthash.h: $(UTHASH_H) | $(BUILD)
	mkdir -p $(@D) && cp $< $@

$(BUILD)/reshim-static: $(CLI_SRC) $(CLI_SHARED) $(CLI_HDR) $(SHIM_HDR) $(VERSION_STAMP) \
		$(BUILD)/uthash/uthash.h | $(BUILD)
	$(MUSL_CC) $(CFLAGS) $(WARN) $(VERSION_CFLAGS) -std=gnu11 -Ishim -Ishim/cli -I$(BUILD)/uthash \
		-static -o $@ $(CLI_SRC) $(CLI_SHARED) -lm

$(BUILD)/obj/%.o: shim/%.c $(SHIM_HDR) $(VERSION_STAMP) | $(BUILD)/obj
	$(CC) $(SHIM_CFLAGS) -c $< -o $@

$(BUILD)/reshim-run: scripts/reshim-run $(VERSION_STAMP) | $(BUILD)
	sed 's/@VERSION@/$(VERSION)/g' $< >$@.tmp && chmod 0755 $@.tmp && mv $@.tmp $@
$(BUILD)/man/%: shim/man/% $(VERSION_STAMP) | $(BUILD)/man
	sed 's/@VERSION@/$(VERSION)/g' $< >$@

$(BUILD)/libreshim.so: $(SHIM_OBJ) shim/libreshim.map
	$(CC) $(SHIM_LDFLAGS) -o $@ $(SHIM_OBJ) $(LIB_LIBS)

$(BUILD)/musl/obj/%.o: shim/%.c $(SHIM_HDR) $(VERSION_STAMP) $(BUILD)/uthash/uthash.h \
		| $(BUILD)/musl/obj
	$(MUSL_CC) $(SHIM_CFLAGS) -I$(BUILD)/uthash -c $< -o $@

$(BUILD)/musl/libreshim.so: $(MUSL_OBJ) shim/libreshim.map
	$(MUSL_CC) $(SHIM_LDFLAGS) -o $@ $(MUSL_OBJ)

$(BUILD) $(BUILD)/obj $(BUILD)/musl/obj $(BUILD)/man $(BUILD)/unit $(BUILD)/asan $(BUILD)/tsan $(BUILD)/bin:
	mkdir -p $@

# What the tests need (make check, check-full, bench); the demo needs less.
deps:
	@scripts/install-deps.sh check
deps-demo:
	@scripts/install-deps.sh demo

# ---- unit tests (cmocka), plain and under ASan+UBSan and TSan ----
define unit_rules
$(BUILD)/unit/test_$(1): tests/unit/test_$(1).c $$(UNIT_SRC_$(1)) $(SHIM_HDR) | $(BUILD)/unit
	$(CC) $(UNIT_CFLAGS) -o $$@ tests/unit/test_$(1).c $$(UNIT_SRC_$(1)) $(UNIT_LIBS)
$(BUILD)/asan/test_$(1): tests/unit/test_$(1).c $$(UNIT_SRC_$(1)) $(SHIM_HDR) | $(BUILD)/asan
	$(CC) $(UNIT_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer -o $$@ tests/unit/test_$(1).c $$(UNIT_SRC_$(1)) $(UNIT_LIBS)
$(BUILD)/tsan/test_$(1): tests/unit/test_$(1).c $$(UNIT_SRC_$(1)) $(SHIM_HDR) | $(BUILD)/tsan
	$(CC) $(UNIT_CFLAGS) -fsanitize=thread -o $$@ tests/unit/test_$(1).c $$(UNIT_SRC_$(1)) \
		$(UNIT_LIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rules,$(t))))

UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/unit/test_%)
ASAN_BINS := $(UNIT_TESTS:%=$(BUILD)/asan/test_%)
TSAN_BINS := $(UNIT_TESTS:%=$(BUILD)/tsan/test_%)

check-unit: $(UNIT_BINS)
	@scripts/run-unit.sh plain $(UNIT_BINS)

check-sanitize: $(ASAN_BINS) $(TSAN_BINS)
	@scripts/run-unit.sh asan+ubsan $(ASAN_BINS)
	@scripts/run-unit.sh tsan $(TSAN_BINS)

# ---- helper programs used by integration tests and benchmarks ----
TEST_PROGS := $(patsubst tests/integration/%.c,$(BUILD)/bin/%,$(wildcard tests/integration/*.c)) \
	$(patsubst tests/bench/%.c,$(BUILD)/bin/%,$(wildcard tests/bench/*.c))
$(BUILD)/bin/%: tests/integration/%.c | $(BUILD)/bin
	$(CC) -O2 -g $(WARN) -std=gnu11 -o $@ $< -lpthread $(PROG_LDFLAGS)
# Its call sites are named in `reshim heap` (dladdr sees exported symbols).
$(BUILD)/bin/heap_sites: PROG_LDFLAGS := -rdynamic
$(BUILD)/bin/%: tests/bench/%.c | $(BUILD)/bin
	$(CC) -O2 -g $(WARN) -std=gnu11 -o $@ $< -lpthread

check-integration: all $(TEST_PROGS)
	@JOBS=$${JOBS:-3} tests/integration/run.sh

# Each test area under tests/ may bring a make fragment (tests/AREA/AREA.mk)
# that adds its own targets to CHECK_CPU or CHECK_EXTRA (run by `make
# check`) and to CHECK_FULL (run by `make check-full` as well).
# What their tests run is built first, in one parallel step (CHECK_BUILD: a
# fragment adds its programs and libraries there), so that `make check`
# compiles on every core. Then the checks that judge no time and only keep
# the CPU busy (CHECK_CPU: unit tests, fuzzing, the tarball's build...) run
# side by side, each one's output printed whole as it ends; then the
# integration tests (three at a time, those that judge time alone), then
# CHECK_EXTRA one after another (timing matters to those).
CHECK_EXTRA :=
CHECK_FULL :=
CHECK_CPU = check-unit check-sanitize
CHECK_BUILD = all $(UNIT_BINS) $(ASAN_BINS) $(TSAN_BINS) $(TEST_PROGS)
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
include $(sort $(wildcard tests/*/*.mk))
# Packaging fragments (scripts/*.mk): make deb, make wheel, make dist...
include $(sort $(wildcard scripts/*.mk))

print-version:
	@echo $(VERSION)

check-build:
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) $(CHECK_BUILD)

check-cpu:
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) -Otarget $(CHECK_CPU)

check: deps
	@$(MAKE) --no-print-directory check-build
	@$(MAKE) --no-print-directory check-cpu
	@$(MAKE) --no-print-directory check-integration
	@$(if $(strip $(CHECK_EXTRA)),$(MAKE) --no-print-directory $(CHECK_EXTRA))

# Everything `make check` does, with the long variants: every CPython test
# module, stress for minutes, the full outage matrix.
check-full: deps
	@$(MAKE) --no-print-directory check-build
	@$(MAKE) --no-print-directory check-cpu
	@RESHIM_CHECK_FULL=1 $(MAKE) --no-print-directory check-integration
	@$(if $(strip $(CHECK_EXTRA) $(CHECK_FULL)),RESHIM_CHECK_FULL=1 $(MAKE) --no-print-directory $(CHECK_EXTRA) $(CHECK_FULL))

demo: deps-demo
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all $(TEST_PROGS)
	@tests/bench/run.sh

MANDIR := $(PREFIX)/share/man
# The operations kit: alerting rules, dashboard, Kubernetes example.
OPSDIR := $(PREFIX)/share/doc/reshim/ops
OPS_FILES := $(sort $(wildcard ops/*/*))

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/reshim $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 0644 $(BUILD)/libreshim.so $(DESTDIR)$(PREFIX)/lib/reshim/libreshim.so
	if [ -f $(BUILD)/musl/libreshim.so ]; then \
		install -d $(DESTDIR)$(PREFIX)/lib/reshim/musl && \
		install -m 0644 $(BUILD)/musl/libreshim.so $(DESTDIR)$(PREFIX)/lib/reshim/musl/libreshim.so; \
	fi
	install -m 0755 $(BUILD)/reshim $(DESTDIR)$(PREFIX)/bin/reshim
	$(if $(CLI_STATIC),install -m 0755 $(CLI_STATIC) $(DESTDIR)$(PREFIX)/lib/reshim/reshim-static)
	install -m 0755 $(BUILD)/reshim-run $(DESTDIR)$(PREFIX)/bin/reshim-run
	install -m 0644 $(BUILD)/man/reshim.1 $(BUILD)/man/reshim-run.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BUILD)/man/libreshim.7 $(DESTDIR)$(MANDIR)/man7/
	for f in $(OPS_FILES); do \
		install -d $(DESTDIR)$(OPSDIR)/$$(basename $$(dirname $$f)) && \
		install -m 0644 $$f $(DESTDIR)$(OPSDIR)/$$(basename $$(dirname $$f))/ || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/reshim/musl/libreshim.so
	-rmdir $(DESTDIR)$(PREFIX)/lib/reshim/musl 2>/dev/null
	rm -f $(DESTDIR)$(PREFIX)/lib/reshim/libreshim.so $(DESTDIR)$(PREFIX)/bin/reshim \
		$(DESTDIR)$(PREFIX)/lib/reshim/reshim-static \
		$(DESTDIR)$(PREFIX)/bin/reshim-run $(DESTDIR)$(MANDIR)/man1/reshim.1 \
		$(DESTDIR)$(MANDIR)/man1/reshim-run.1 $(DESTDIR)$(MANDIR)/man7/libreshim.7
	-rmdir $(DESTDIR)$(PREFIX)/lib/reshim 2>/dev/null
	rm -rf $(DESTDIR)$(OPSDIR)
	-rmdir $(DESTDIR)$(PREFIX)/share/doc/reshim 2>/dev/null

clean:
	rm -rf $(BUILD)
