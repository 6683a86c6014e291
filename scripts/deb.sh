#!/usr/bin/env bash
# deb.sh VERSION: builds build/reshim_VERSION_ARCH.deb (`make deb`).
# What is packaged is what `make install PREFIX=/usr DESTDIR=<staging>`
# installs, plus what Debian requires of a binary package: DEBIAN/control
# (Depends computed by dpkg-shlibdeps from the ELF files), DEBIAN/md5sums,
# /usr/share/doc/reshim/copyright (machine-readable) and changelog.gz, man
# pages gzipped -9n, ELF files stripped, everything root:root. No debhelper,
# no network: dpkg-dev and binutils (build-essential) are enough.
# Environment: MAKE, BUILD (default build), DEB_MAINTAINER (default: the
# author of HEAD), SOURCE_DATE_EPOCH (default: HEAD's commit time).
set -euo pipefail

VERSION=${1:?usage: deb.sh VERSION}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
MAKE=${MAKE:-make}
ARCH=$(dpkg --print-architecture)
OUT="$BUILD/reshim_${VERSION}_${ARCH}.deb"
WORK="$BUILD/deb"
STAGE="$WORK/reshim"
DOC="$STAGE/usr/share/doc/reshim"

git_() { git -C "$ROOT" "$@" 2>/dev/null; }
: "${SOURCE_DATE_EPOCH:=$(git_ log -1 --format=%ct || date +%s)}"
export SOURCE_DATE_EPOCH
MAINT=${DEB_MAINTAINER:-$(git_ log -1 --format='%an <%ae>' || true)}
[ -n "$MAINT" ] || MAINT="reshim maintainers <root@localhost>"

rm -rf "$WORK"
mkdir -p "$WORK"
umask 022

# 1. Whatever `make install` installs.
"$MAKE" --no-print-directory install PREFIX=/usr DESTDIR="$ROOT/$STAGE" >/dev/null

# 2. ELF files stripped as dh_strip does (debug info, .comment, .note).
while IFS= read -r -d '' f; do
    if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        if [[ $f == *.so || $f == *.so.* ]]; then
            # A shared library: what dynamic linking needs stays.
            strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
        else
            strip --remove-section=.comment --remove-section=.note "$f"
        fi
        ELF+=("$f")
    fi
done < <(find "$STAGE" -type f -print0)

# 2b. The musl build links musl's libc.so (no libc.so.6): tell lintian.
if [ -f "$STAGE/usr/lib/reshim/musl/libreshim.so" ]; then
    mkdir -p "$STAGE/usr/share/lintian/overrides"
    printf '%s\n' '# The musl build (for musl programs) links musl'"'"'s libc.so, not glibc'"'"'s.' \
        'reshim: library-not-linked-against-libc [usr/lib/reshim/musl/libreshim.so]' \
        >"$STAGE/usr/share/lintian/overrides/reshim"
fi

# 3. Man pages gzipped -9n (no name, no time stamp in the header).
if [ -d "$STAGE/usr/share/man" ]; then
    find "$STAGE/usr/share/man" -type f ! -name '*.gz' -exec gzip -9n {} +
fi

# 4. /usr/share/doc/reshim: copyright, changelog.gz, the upstream changelog.
mkdir -p "$DOC"
holder="the reshim authors"
if [ -f LICENSE ]; then
    if ! grep -q 'Apache License' LICENSE || ! grep -q 'Version 2.0' LICENSE; then
        echo "deb.sh: LICENSE is not the Apache License 2.0; update the copyright file" >&2
        exit 1
    fi
    # An appendix filled in ("Copyright 2026 Someone"), not the template's.
    h=$(grep -E '^[[:space:]]*Copyright [0-9]' LICENSE | grep -v '\[' | head -n 1 |
        sed -E 's/^[[:space:]]*Copyright //' || true)
    [ -z "$h" ] || holder=$h
fi
year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
[[ $holder == [0-9]* ]] || holder="$year $holder"
cat > "$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: reshim
Upstream-Contact: $MAINT

Files: *
Copyright: $holder
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License");
 you may not use this file except in compliance with the License.
 You may obtain a copy of the License at
 .
 https://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS,
 WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 See the License for the specific language governing permissions and
 limitations under the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0
 can be found in "/usr/share/common-licenses/Apache-2.0".
EOF

# The version has no Debian revision (reshim is its own upstream, a
# "native" package), so the Debian changelog is changelog.gz (Policy 12.7;
# lintian: wrong-name-for-changelog-of-native-package for changelog.Debian.gz).
{
    printf 'reshim (%s) unstable; urgency=medium\n\n' "$VERSION"
    printf '  * reshim %s, built from source by make deb.\n' "$VERSION"
    [ -f CHANGELOG.md ] && printf '    What changed: /usr/share/doc/reshim/CHANGELOG.md.gz.\n'
    printf '\n -- %s  %s\n' "$MAINT" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$DOC/changelog.gz"
if [ -f CHANGELOG.md ] && [ ! -e "$DOC/CHANGELOG.md" ] && [ ! -e "$DOC/CHANGELOG.md.gz" ]; then
    gzip -9n < CHANGELOG.md > "$DOC/CHANGELOG.md.gz"
fi

# 5. Modes and time stamps (reproducible: everything at SOURCE_DATE_EPOCH).
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f -exec chmod go-w,u+rw {} +
find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# 6. Depends: what the ELF files need at run time, per dpkg-shlibdeps (it
# wants a debian/control to read; a minimal one in a scratch directory).
depends=""
mkdir -p "$WORK/shlibs/debian"
printf 'Source: reshim\n\nPackage: reshim\nArchitecture: any\n' > "$WORK/shlibs/debian/control"
if [ ${#ELF[@]} -gt 0 ]; then
    abs=()
    # The musl build (lib/reshim/musl/) needs musl's loader, which only a
    # musl program brings: no Debian dependency.
    for f in "${ELF[@]}"; do [[ $f == */musl/* ]] || abs+=("$ROOT/$f"); done
    if out=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O --warnings=0 "${abs[@]}" 2>"$ROOT/$WORK/shlibdeps.err"); then
        depends=${out#shlibs:Depends=}
    else
        # The floor from the symbol versions the files use: libc6 (>= 2.x).
        cat "$WORK/shlibdeps.err" >&2
        v=$(objdump -T "${ELF[@]}" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
        depends="libc6 (>= $v)"
        echo "deb.sh: dpkg-shlibdeps failed; Depends: $depends (from objdump -T)" >&2
    fi
fi

# 7. DEBIAN/control and md5sums.
mkdir -p "$STAGE/DEBIAN"
# Installed-Size as dpkg-gencontrol computes it: KiB per file, rounded up,
# plus one per directory.
isize=$(find "$STAGE" -path "$STAGE/DEBIAN" -prune -o ! -path "$STAGE" -printf '%y %s\n' |
    awk '$1 == "d" { s += 1; next } { s += int(($2 + 1023) / 1024) } END { print s + 0 }')
cat > "$STAGE/DEBIAN/control" <<EOF
Package: reshim
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINT
Installed-Size: $isize
${depends:+Depends: $depends
}Section: net
Priority: optional
Description: retries for unmodified programs, by LD_PRELOAD
 libreshim.so, preloaded with LD_PRELOAD, makes unmodified Linux programs
 survive a backend restarting, a refused connect or a DNS hiccup: connects
 that fail for a moment are retried with backoff (event loops are never
 blocked), temporary DNS failures are retried or served stale, and data is
 never replayed. It also counts heap and anonymous memory exactly, can
 return free heap to the OS under a memory budget, and can turn an OOM kill
 into an allocation error the program handles.
 .
 The package contains the library (/usr/lib/reshim/libreshim.so),
 reshim-run (runs a command with the library preloaded) and the reshim
 command, which lists and inspects shimmed processes and serves their
 statistics to Prometheus.
EOF
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 -r md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/md5sums"
touch -d "@$SOURCE_DATE_EPOCH" "$STAGE/DEBIAN" "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/md5sums"

# 8. The package, owned by root:root whoever builds it.
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "deb: $OUT ($(stat -c %s "$OUT") bytes), Depends: ${depends:-none}"
