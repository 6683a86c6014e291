# scripts/wheel.mk: the pip package (a wheel written by hand, offline).
#   make wheel        build/reshim-$(VERSION)-py3-none-manylinux_<glibc>_<arch>.whl:
#                     the library, the CLI and reshim-run in the Python package
#                     scripts/wheel/reshim/ (console scripts reshim and
#                     reshim-run, python -m reshim, reshim.activate())
#   make check-wheel  (part of make check) scripts/wheel/check_wheel.sh: a
#                     fresh venv, pip install --no-index of the wheel, a late
#                     server rescued through reshim-run, python -m reshim run
#                     and reshim.activate()
# WHEEL_GLIBC is the library's glibc floor, the highest GLIBC_ symbol version
# that build/libreshim.so and build/reshim need (objdump -T): build_wheel.py
# refuses a tag that is not exactly that. WHEEL_ARCH: this machine's.

WHEEL_GLIBC ?= 2.17
WHEEL_ARCH ?= $(shell uname -m)
WHEEL_TAG := py3-none-manylinux_$(subst .,_,$(WHEEL_GLIBC))_$(WHEEL_ARCH)
WHEEL := $(BUILD)/reshim-$(VERSION)-$(WHEEL_TAG).whl
WHEEL_SRC := $(wildcard scripts/wheel/reshim/*.py)

.PHONY: wheel check-wheel

wheel: $(WHEEL)

$(WHEEL): scripts/wheel/build_wheel.py $(WHEEL_SRC) $(BUILD)/libreshim.so $(BUILD)/reshim \
		$(BUILD)/reshim-run Makefile scripts/wheel.mk
	/usr/bin/python3 scripts/wheel/build_wheel.py --version $(VERSION) --lib $(BUILD)/libreshim.so \
		--cli $(BUILD)/reshim --run $(BUILD)/reshim-run --src scripts/wheel/reshim \
		--glibc $(WHEEL_GLIBC) --arch $(WHEEL_ARCH) --out $(BUILD) >/dev/null
	@echo "wheel: $@ ($$(du -k $@ | cut -f1) KiB)"

check-wheel: $(WHEEL) $(BUILD)/libreshim.so
	@echo "== wheel: $(WHEEL)"
	@rc=0; WHEEL=$(WHEEL) scripts/wheel/check_wheel.sh || rc=$$?; \
		if [ $$rc -eq 77 ]; then echo "  (skipped)"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

CHECK_CPU += check-wheel
CHECK_BUILD += $(WHEEL)
