#!/usr/bin/env python3
"""build_wheel.py: writes reshim's wheel by hand (a zip, PEP 427 / 491), with
no setuptools, no wheel package and no network.

  build_wheel.py --version V --lib build/libreshim.so --cli build/reshim \\
      --run scripts/reshim-run --src scripts/wheel/reshim --glibc 2.17 \\
      --arch x86_64 --out build/

The platform tag (manylinux_<glibc>_<arch>) is given, and checked against the
binaries: the highest GLIBC_ symbol version they need (objdump -T) must be
the tag's glibc, and their ELF machine the tag's arch, so that the tag never
claims more (or less) than the files can do. The binaries go in stripped of
debug info (objcopy --strip-debug) with their exec bit in the zip entries
(pip restores it). Entries are sorted and dated SOURCE_DATE_EPOCH (default
1980-01-01): the same inputs give the same wheel, byte for byte.
Prints the wheel's path."""

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

MACHINES = {"x86_64": 62, "aarch64": 183, "i686": 3, "ppc64le": 21, "s390x": 22}

SUMMARY = "LD_PRELOAD shim: connect/DNS retries and a memory budget for unmodified programs"
DESCRIPTION = """\
reshim makes unmodified Linux programs survive a backend restarting, a refused
connect or a DNS hiccup: libreshim.so, preloaded with LD_PRELOAD, retries what
is safe to retry, and counts and bounds memory. This wheel bundles the library,
the `reshim` CLI and `reshim-run` (glibc %(glibc)s or later, %(arch)s).

    reshim-run -- python app.py
    python -m reshim run -- python app.py

Where the start command cannot be changed, the first line of the app:

    import reshim; reshim.activate()

re-executes the interpreter once (same arguments, same pid) with the shim
preloaded, and returns whether the shim is active.
"""


def fail(msg):
    sys.stderr.write("build_wheel: %s\n" % msg)
    sys.exit(1)


def glibc_floor(paths):
    """The highest GLIBC_x.y a set of ELF files needs, as (x, y)."""
    best = (0, 0)
    for p in paths:
        try:
            out = subprocess.run(["objdump", "-T", p], check=True, capture_output=True,
                                 text=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            fail("objdump -T %s: %s (binutils is needed)" % (p, e))
        for m in re.finditer(r"GLIBC_(\d+)\.(\d+)", out):
            best = max(best, (int(m.group(1)), int(m.group(2))))
    return best


def elf_machine(path):
    with open(path, "rb") as f:
        h = f.read(20)
    if h[:4] != b"\x7fELF":
        fail("%s is not an ELF file" % path)
    return int.from_bytes(h[18:20], "little" if h[5] == 1 else "big")


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    for a in ("version", "lib", "cli", "run", "src", "glibc", "arch", "out"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()

    want = tuple(int(x) for x in args.glibc.split("."))
    have = glibc_floor([args.lib, args.cli])
    if have != want:
        fail("the binaries need glibc %d.%d (objdump -T), the tag says %s: set WHEEL_GLIBC=%d.%d"
             % (have + (args.glibc,) + have))
    if args.arch not in MACHINES:
        fail("unknown arch %s" % args.arch)
    for p in (args.lib, args.cli):
        if elf_machine(p) != MACHINES[args.arch]:
            fail("%s is not an %s ELF file (e_machine %d)" % (p, args.arch, elf_machine(p)))

    name, version = "reshim", args.version
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*([ab]|rc)?[0-9]*(\.post[0-9]+)?(\.dev[0-9]+)?", version):
        fail("version %r is not a PEP 440 version" % version)
    tag = "py3-none-manylinux_%d_%d_%s" % (want + (args.arch,))
    distinfo = "%s-%s.dist-info" % (name, version)
    whl = os.path.join(args.out, "%s-%s-%s.whl" % (name, version, tag))

    files = {}  # archive name -> (bytes, executable)
    for root, dirs, names in os.walk(args.src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and d != "_bin")
        for n in sorted(names):
            if n.endswith((".py", ".typed")):
                p = os.path.join(root, n)
                arc = "reshim/" + os.path.relpath(p, args.src).replace(os.sep, "/")
                with open(p, "rb") as f:
                    files[arc] = (f.read(), False)
    if "reshim/__init__.py" not in files:
        fail("%s has no __init__.py" % args.src)
    files["reshim/_build.py"] = (
        ("# Written by build_wheel.py.\nVERSION = %r\nGLIBC_FLOOR = %r\n" % (version, want)).encode(),
        False)
    with tempfile.TemporaryDirectory() as tmp:
        for src, arc in ((args.lib, "libreshim.so"), (args.cli, "reshim")):
            dst = os.path.join(tmp, arc)
            shutil.copyfile(src, dst)
            if shutil.which("objcopy"):
                subprocess.run(["objcopy", "--strip-debug", dst], check=True)
            with open(dst, "rb") as f:
                files["reshim/_bin/" + arc] = (f.read(), True)
    with open(args.run, "rb") as f:
        files["reshim/_bin/reshim-run"] = (f.read(), True)

    files[distinfo + "/METADATA"] = ((
        "Metadata-Version: 2.1\n"
        "Name: %s\nVersion: %s\nSummary: %s\n"
        "Requires-Python: >=3.8\n"
        "Platform: Linux\n"
        "Classifier: Operating System :: POSIX :: Linux\n"
        "Classifier: Programming Language :: C\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Description-Content-Type: text/markdown\n\n%s"
        % (name, version, SUMMARY, DESCRIPTION % {"glibc": args.glibc, "arch": args.arch})).encode(),
        False)
    files[distinfo + "/WHEEL"] = ((
        "Wheel-Version: 1.0\nGenerator: reshim scripts/wheel/build_wheel.py\n"
        "Root-Is-Purelib: false\nTag: %s\n" % tag).encode(), False)
    files[distinfo + "/entry_points.txt"] = ((
        "[console_scripts]\nreshim = reshim._cli:reshim\nreshim-run = reshim._cli:reshim_run\n"
    ).encode(), False)
    files[distinfo + "/top_level.txt"] = (b"reshim\n", False)

    record = "".join("%s,%s,%d\n" % (arc, record_hash(data), len(data))
                     for arc, (data, _) in sorted(files.items()))
    record += distinfo + "/RECORD,,\n"
    files[distinfo + "/RECORD"] = (record.encode(), False)

    epoch = max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)
    date = time.gmtime(epoch)[:6]
    os.makedirs(args.out, exist_ok=True)
    tmpwhl = whl + ".tmp"
    # dist-info last (RECORD last of all), as PEP 427 recommends.
    order = sorted(files, key=lambda a: (a.startswith(distinfo), a.endswith("/RECORD"), a))
    with zipfile.ZipFile(tmpwhl, "w", zipfile.ZIP_DEFLATED) as z:
        for arc in order:
            data, exe = files[arc]
            info = zipfile.ZipInfo(arc, date)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix: external_attr carries the mode
            info.external_attr = ((0o100755 if exe else 0o100644) << 16)
            z.writestr(info, data, compresslevel=9)
    os.replace(tmpwhl, whl)
    print(whl)


if __name__ == "__main__":
    main()
