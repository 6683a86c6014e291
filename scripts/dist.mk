# scripts/dist.mk: the source tarball (included by the top Makefile).
#   make dist        build/reshim-$(VERSION).tar.gz, one top directory
#                    reshim-$(VERSION)/, holding exactly the files git tracks
#                    (as they are in the work tree: `git stash create` turns
#                    uncommitted changes to them into a commit to archive;
#                    files git does not track never go in). Needs git, so it
#                    runs in a clone, never in an unpacked tarball.
#   make check-dist  (part of `make check`) makes it, unpacks it in a
#                    temporary directory and runs `make all` there, as on a
#                    fresh machine: the library, the CLI, reshim-run and the
#                    man pages must be built, and each must say $(VERSION).

DIST_NAME := reshim-$(VERSION)
DIST_TARBALL := $(BUILD)/$(DIST_NAME).tar.gz

.PHONY: dist check-dist

dist: | $(BUILD)
	@command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 || \
		{ echo "dist: needs git and a git clone (it packs the files git tracks)" >&2; exit 1; }
	@tree=$$(git stash create) && \
	git archive --format=tar --prefix=$(DIST_NAME)/ $${tree:-HEAD} | gzip -n -9 >$(DIST_TARBALL).tmp && \
	mv $(DIST_TARBALL).tmp $(DIST_TARBALL) && \
	echo "dist: $(DIST_TARBALL) ($$(tar -tzf $(DIST_TARBALL) | grep -vc '/$$') files," \
		"$$(wc -c <$(DIST_TARBALL)) bytes$${tree:+, with uncommitted changes to tracked files})"

check-dist: dist
	@tmp=$$(mktemp -d /tmp/reshim-dist.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	tar -xzf $(DIST_TARBALL) -C "$$tmp" && d="$$tmp/$(DIST_NAME)" && \
	top=$$(ls -A "$$tmp") && [ "$$top" = "$(DIST_NAME)" ] || \
		{ echo "check-dist: the tarball's top level is '$$top', not $(DIST_NAME)/" >&2; exit 1; }; \
	for f in Makefile LICENSE CHANGELOG.md README.md scripts/reshim-run scripts/dist.mk; do \
		[ -f "$$d/$$f" ] || { echo "check-dist: $$f is not in the tarball" >&2; exit 1; }; \
	done; \
	[ ! -e "$$d/build" ] && [ ! -e "$$d/.git" ] || \
		{ echo "check-dist: build/ or .git in the tarball" >&2; exit 1; }; \
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(MAKE) -s -C "$$d" -j$(BUILD_JOBS) all >"$$tmp/build.log" 2>&1 || \
		{ tail -n 30 "$$tmp/build.log" >&2; echo "check-dist: make all failed in the unpacked tarball" >&2; exit 1; }; \
	for f in build/libreshim.so build/reshim build/reshim-run build/man/reshim.1 \
		build/man/reshim-run.1 build/man/libreshim.7; do \
		[ -s "$$d/$$f" ] || { echo "check-dist: make all built no $$f" >&2; exit 1; }; \
	done; \
	[ "$$($$d/build/reshim --version)" = "reshim $(VERSION)" ] || \
		{ echo "check-dist: reshim --version says '$$($$d/build/reshim --version)'" >&2; exit 1; }; \
	[ "$$($$d/build/reshim-run --version)" = "reshim-run $(VERSION)" ] || \
		{ echo "check-dist: reshim-run --version says '$$($$d/build/reshim-run --version)'" >&2; exit 1; }; \
	grep -q '^\.TH .*"reshim $(VERSION)"' "$$d/build/man/reshim.1" || \
		{ echo "check-dist: build/man/reshim.1 does not say $(VERSION)" >&2; exit 1; }; \
	echo "check-dist: $(DIST_TARBALL) unpacks to $(DIST_NAME)/ and builds with make all; reshim, reshim-run and the man pages say $(VERSION)"

CHECK_CPU += check-dist
