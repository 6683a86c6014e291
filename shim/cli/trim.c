/* trim.c: `reshim trim PID [--json]`: asks the process to return its free
 * heap to the OS now and prints what RSS that released (human-readable, or
 * the process's JSON answer, read by the keys of answerjson.c). The
 * process's refusal (rate limit, no trim in its allocator) is printed as
 * it gave it, exit 1. */
#define _GNU_SOURCE
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "answerjson.h"

/* The trim answer of process pid, printed for humans: the exit code. */
static int trim_human(int pid, const char *ans, size_t len)
{
    const char *why = NULL;
    struct snap_trim t;
    if (snap_trim_parse(ans, len, &t, &why) != 0) {
        cli_err("process %d: unexpected answer to trim (%s): %.200s", pid, why, ans);
        return EXIT_FAIL;
    }
    char a[32], b[32], c[32];
    printf("released %s (rss %s -> %s, in %llu ms)\n", cli_bytes(t.trimmed_bytes, a, sizeof a),
           cli_bytes(t.rss_before_bytes, b, sizeof b), cli_bytes(t.rss_after_bytes, c, sizeof c),
           (unsigned long long)t.ms);
    return EXIT_OK;
}

int cmd_trim(int argc, char **argv)
{
    /* A trim can take a while on a big heap: twice the usual wait. */
    return cli_pid_json_command(argc, argv, "trim", 2 * cli_timeout_ms, "trim refused: ",
                                trim_human);
}
