#!/bin/sh
# st_chain.sh LEVELS DIR LIVE_PORT DEAD_PORT: a chain of shells under the
# shim. Each level runs one generation of DIR/st_exec (a forked child:
# allocates, a refused connect, a line "sh 0" to LIVE_PORT), then replaces
# itself through `sh -c` with the next level (exec sh -c 'exec sh FILE ...').
# Exit 0 when every level's st_exec did.
n=$1
shift
"$1/st_exec" 0 "$2" "$3" sh >/dev/null || exit 1
[ "$n" -le 0 ] && exit 0
exec sh -c 'exec sh "$0" "$@"' "$0" $((n - 1)) "$@"
