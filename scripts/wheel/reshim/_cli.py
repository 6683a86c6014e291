"""The console scripts of the wheel: `reshim` and `reshim-run` exec the
bundled programs (same pid), which find the bundled libreshim.so beside
themselves. `python -m reshim ARGS` is `reshim ARGS`."""

import os
import sys

from . import cli, library, run_script


def _exec(path, argv):
    try:
        os.execv(path, argv)
    except OSError as e:
        sys.stderr.write("%s: cannot run %s: %s\n" % (os.path.basename(argv[0]), path, e.strerror))
        return 127 if not os.path.exists(path) else 126


def reshim():
    """`reshim ARGS`: the bundled CLI (`reshim run -- CMD`, `reshim ls`, ...)."""
    return _exec(cli(), ["reshim"] + sys.argv[1:])


def reshim_run():
    """`reshim-run [OPTIONS] -- CMD`: the bundled POSIX sh script, run by
    /bin/sh (no exec bit needed); it finds libreshim.so beside itself, or
    RESHIM_LIBRARY. Without /bin/sh (distroless images): `reshim run`, which
    does the same with fewer options."""
    if os.path.exists("/bin/sh"):
        return _exec("/bin/sh", ["/bin/sh", run_script()] + sys.argv[1:])
    sys.stderr.write("reshim-run: no /bin/sh here; using `reshim run` (library %s)\n" % library())
    return _exec(cli(), ["reshim", "run"] + sys.argv[1:])
