#!/usr/bin/env bash
# The cases of test_nonblock_edges.sh that judge no time (a pending socket
# abandoned in its backoff, asking without a wait, RESHIM_NONBLOCK=off,
# threads polling one socket, fork during the backoff): they run beside other
# tests; the timed ones run alone. Each is described there.
NB_PART=untimed exec bash "$(dirname "$0")/test_nonblock_edges.sh"
