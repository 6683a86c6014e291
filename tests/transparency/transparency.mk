# transparency.mk: CPython's own tests with and without the shim, compared
# test by test (tests/transparency/cpython.sh). `make check` runs the subset
# that fits its time (about 90 s); `make check-full` all ten modules.
.PHONY: check-cpython check-cpython-full

check-cpython: all
	@echo "== CPython's tests with and without the shim (subset)"
	@tests/transparency/cpython.sh -j 2 --check

check-cpython-full: all
	@echo "== CPython's tests with and without the shim (all ten modules)"
	@tests/transparency/cpython.sh --full

CHECK_EXTRA += check-cpython
CHECK_FULL += check-cpython-full
