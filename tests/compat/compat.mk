# tests/compat: the library and the CLI built here, on an older glibc (a
# Debian 11 root made with debootstrap, cached in build/debroot/): `make
# check-compat` (root; exit 77 skips). Not part of `make check`: CI runs it
# after, as it runs check-deb.
.PHONY: check-compat
check-compat: all
	@BUILD=$(BUILD) scripts/check-compat.sh
