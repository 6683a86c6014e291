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

int cmd_trim(int argc, char **argv)
{
    bool json;
    int pid;
    if (cli_pid_json(argc, argv, &pid, &json) != EXIT_OK)
        return EXIT_USAGE;
    char *ans;
    size_t len;
    /* A trim can take a while on a big heap: twice the usual wait. */
    int rc = cli_ask(pid, "trim", 2 * cli_timeout_ms, "trim refused: ", &ans, &len);
    if (rc != EXIT_OK)
        return rc;
    const char *why = NULL;
    struct snap_trim t;
    if (json) {
        cli_print_raw(ans, len);
    } else if (snap_trim_parse(ans, len, &t, &why) != 0) {
        cli_err("process %d: unexpected answer to trim (%s): %.200s", pid, why, ans);
        rc = EXIT_FAIL;
    } else {
        char a[32], b[32], c[32];
        printf("released %s (rss %s -> %s, in %llu ms)\n",
               cli_bytes(t.trimmed_bytes, a, sizeof a), cli_bytes(t.rss_before_bytes, b, sizeof b),
               cli_bytes(t.rss_after_bytes, c, sizeof c), (unsigned long long)t.ms);
    }
    free(ans);
    return rc;
}
