# make deb: build/reshim_$(VERSION)_ARCH.deb from `make install PREFIX=/usr`
# (scripts/deb.sh); make check-deb: installs it in a fresh Debian root made
# with debootstrap, tests it there and removes it (scripts/check-deb.sh).
.PHONY: deb check-deb lintian

deb: all
	@MAKE="$(MAKE)" BUILD="$(BUILD)" scripts/deb.sh $(VERSION)

# lintian on the package (what it still says is listed in README.md, Install).
lintian: deb
	lintian --info --display-info $(BUILD)/reshim_$(VERSION)_$(shell dpkg --print-architecture).deb

# A skip (exit 77: not root, no mirror) says why and does not fail make.
check-deb: deb
	@BUILD="$(BUILD)" scripts/check-deb.sh $(VERSION); rc=$$?; \
		if [ $$rc = 77 ]; then echo "check-deb: skipped"; else exit $$rc; fi
