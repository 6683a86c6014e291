"""reshim for Python platforms: the shim (libreshim.so), the CLI (reshim) and
reshim-run, bundled in a wheel.

    pip install reshim-VERSION-py3-none-manylinux_2_17_x86_64.whl
    reshim-run -- python app.py          # or: python -m reshim run -- python app.py

Where the start command cannot be changed (Heroku, Hugging Face Spaces,
Streamlit Cloud), the first line of the app:

    import reshim; reshim.activate()

re-executes the interpreter once, with the same arguments (sys.orig_argv)
and the same pid (os.execv), with the bundled library first in LD_PRELOAD.
"""

import os
import stat
import sys

__all__ = ["activate", "active", "library", "cli", "run_script"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_BIN = os.path.join(_HERE, "_bin")

# The environment guard: set to the pid before the re-exec. The re-executed
# interpreter has the same pid, so it knows it is the second run and never
# re-executes again; a child process (another pid) that inherits the
# variable is not fooled by it.
GUARD = "RESHIM_ACTIVATED"

# Written by scripts/wheel/build_wheel.py: the version (the Makefile's) and
# the library's glibc floor (the wheel's manylinux tag).
try:
    from ._build import VERSION as __version__, GLIBC_FLOOR as _MIN_GLIBC
except ImportError:  # the source tree, not a built wheel
    __version__, _MIN_GLIBC = "0+unknown", (2, 17)

_warned = set()


def library():
    """The absolute path of the bundled libreshim.so."""
    return os.path.join(_BIN, "libreshim.so")


def cli():
    """The absolute path of the bundled reshim CLI (made executable if it is not)."""
    return _executable(os.path.join(_BIN, "reshim"))


def run_script():
    """The absolute path of the bundled reshim-run (POSIX sh)."""
    return _executable(os.path.join(_BIN, "reshim-run"))


def _executable(path):
    # pip keeps the exec bit of the wheel's entries; other installers may not.
    try:
        st = os.stat(path)
        if not st.st_mode & stat.S_IXUSR:
            os.chmod(path, st.st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError:
        pass
    return path


def _warn(msg):
    """One line on stderr, once per message (reshim-run's style)."""
    if msg in _warned:
        return
    _warned.add(msg)
    try:
        sys.stderr.write("reshim: warn: activate(): %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def _is_reshim(path):
    base = os.path.basename(path)
    return base == "libreshim.so" or (base.startswith("libreshim-") and base.endswith(".so"))


def active():
    """Whether a libreshim.so (this one or any other) is mapped in this process."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and _is_reshim(parts[5].strip()):
                    return True
    except OSError:
        pass
    return False


def _truthy(value):
    return (value or "").strip().lower() in ("1", "on", "yes", "true")


def _glibc():
    """glibc's version as a tuple, None when the C library is another."""
    try:
        v = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    if not v or not v.startswith("glibc "):
        return None
    try:
        return tuple(int(x) for x in v.split()[1].split(".")[:2])
    except ValueError:
        return None


def _forked_child():
    """Whether this looks like a forked worker of a process running the same
    command (gunicorn, multiprocessing with fork): re-executing it would start
    a second copy of the parent's program. /proc/PPID/cmdline equal to ours."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            mine = f.read()
        with open("/proc/%d/cmdline" % os.getppid(), "rb") as f:
            parent = f.read()
        return bool(mine) and mine == parent and os.readlink("/proc/self/exe") == os.readlink(
            "/proc/%d/exe" % os.getppid())
    except OSError:
        return False


def _why_not(lib):
    """Why the interpreter cannot be re-executed with the shim; None when it can."""
    if not sys.platform.startswith("linux"):
        return "not Linux (%s): LD_PRELOAD of libreshim.so works on Linux only" % sys.platform
    g = _glibc()
    if g is None:
        return "the C library is not glibc (musl?): the bundled libreshim.so is built for glibc"
    if g < _MIN_GLIBC:
        return "glibc %d.%d is older than %d.%d, which the bundled libreshim.so needs" % (g + _MIN_GLIBC)
    if not os.path.isfile(lib) or not os.access(lib, os.R_OK):
        return "%s: no such readable file" % lib
    if ":" in lib or any(c.isspace() for c in lib):
        return "the library path %s contains a colon or a blank, which LD_PRELOAD cannot carry" % lib
    if not getattr(sys, "orig_argv", None):
        return "sys.orig_argv is not available (Python %d.%d; 3.10 or later is needed)" % sys.version_info[:2]
    if not sys.executable:
        return "sys.executable is empty (an embedded interpreter): there is no command to re-execute"
    if os.getuid() != os.geteuid() or os.getgid() != os.getegid():
        return "the interpreter runs setuid/setgid: the loader ignores LD_PRELOAD (secure execution)"
    try:
        st = os.stat(sys.executable)
        if (st.st_mode & stat.S_ISUID and st.st_uid != os.getuid()) or (
                st.st_mode & stat.S_ISGID and st.st_gid != os.getgid()):
            return "%s is setuid/setgid: the loader would ignore LD_PRELOAD" % sys.executable
    except OSError as e:
        return "%s: %s" % (sys.executable, e.strerror)
    if sys.argv and sys.argv[0] in ("", "-"):
        return "the program was read from stdin or typed interactively: it cannot be run again"
    if _forked_child():
        return ("this process is a forked copy of its parent (a pre-forking server's worker?): "
                "re-executing it would start the parent's program again; activate reshim in the "
                "parent, or start it with reshim-run")
    return None


def activate():
    """Makes sure this interpreter runs with libreshim.so preloaded.

    Returns True when the shim is loaded (already, or now, in the
    re-executed interpreter: this call then never returns in the first one).
    Re-executes sys.executable with sys.orig_argv (same pid, os.execv), the
    bundled library (or RESHIM_LIBRARY) first in LD_PRELOAD, at most once.
    Returns False, with a one-line warning, where that cannot work:
    RESHIM_DISABLE=1, not Linux, not glibc, the library missing, no
    sys.orig_argv or sys.executable, a setuid interpreter, a forked worker,
    or a re-exec after which the library was still not loaded.
    Call it first, before the app starts threads or opens connections:
    whatever ran before it runs twice.
    """
    if _truthy(os.environ.get("RESHIM_DISABLE")):
        _warn("RESHIM_DISABLE=%s: not activated" % os.environ.get("RESHIM_DISABLE"))
        return False
    if active():
        return True
    lib = os.environ.get("RESHIM_LIBRARY") or library()
    lib = os.path.abspath(lib)
    if os.environ.get(GUARD) == str(os.getpid()):
        # The second run: the re-exec happened and the loader did not load it.
        _warn("re-executed with %s in LD_PRELOAD, but it is not loaded (see the loader's message "
              "above, if any); running without reshim" % lib)
        return False
    why = _why_not(lib)
    if why:
        _warn(why + "; running without reshim")
        return False
    cur = os.environ.get("LD_PRELOAD", "")
    entries = [e for e in cur.replace(" ", ":").split(":") if e]
    if lib not in entries:
        # First: its malloc then wraps that of any allocator preloaded with it.
        os.environ["LD_PRELOAD"] = lib + (":" + cur if cur else "")
    os.environ[GUARD] = str(os.getpid())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        os.execv(sys.executable, sys.orig_argv)
    except OSError as e:
        os.environ.pop(GUARD, None)
        _warn("cannot re-execute %s: %s; running without reshim" % (sys.executable, e.strerror))
        if cur:
            os.environ["LD_PRELOAD"] = cur
        else:
            os.environ.pop("LD_PRELOAD", None)
        return False
    return False  # not reached
