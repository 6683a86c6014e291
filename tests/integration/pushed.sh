#!/bin/sh
# pushed.sh CMD...: execs CMD with the shim preloaded and its stats pushed
# (RESHIM_PUSH) to the test's collector, first noting its pid (exec keeps it)
# in $RESHIM_TEST_TMP/pushed.pid and, when its stderr is a file, in that
# file's name + .pid, for stat_field (lib.sh). A program, not a function, so
# that it goes wherever a command does: env X=1 pushed.sh prog, timeout 9
# pushed.sh prog. lib.sh's push_start sets RESHIM_TEST_TMP, RESHIM_TEST_PUSH
# and RESHIM_TEST_SHIM (the library; another build: RESHIM_TEST_SHIM=... pushed.sh).
set -eu
echo $$ >"$RESHIM_TEST_TMP/pushed.pid"
err=$(readlink /proc/$$/fd/2 2>/dev/null || true)
if [ -f "$err" ]; then echo $$ >"$err.pid"; fi
RESHIM_PUSH=$RESHIM_TEST_PUSH LD_PRELOAD="$RESHIM_TEST_SHIM${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
