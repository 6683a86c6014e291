/* trim.c: `reshim trim PID [--json]`: asks the process to return its free
 * heap to the OS now and prints what RSS that released (human-readable, or
 * the process's JSON answer). The process's refusal (rate limit, no trim in
 * its allocator) is printed as it gave it, exit 1. */
#define _GNU_SOURCE
#include "cli.h"

#include <stdlib.h>
#include <string.h>

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
    struct json *j = NULL;
    unsigned long long bytes, before, after, ms;
    if (json) {
        cli_print_raw(ans, len);
    } else if (!(j = json_parse(ans, len, &why)) ||
               !json_u64(json_get(j, "trimmed_bytes"), &bytes)) {
        cli_err("process %d: unexpected answer to trim (%s): %.200s", pid,
                why ? why : "no trimmed_bytes", ans);
        rc = EXIT_FAIL;
    } else {
        char a[32], b[32], c[32], extra[128] = "";
        size_t k = 0;
        if (json_u64(json_get(j, "rss_before_bytes"), &before) &&
            json_u64(json_get(j, "rss_after_bytes"), &after))
            k += (size_t)snprintf(extra + k, sizeof extra - k, "rss %s -> %s",
                                  cli_bytes(before, b, sizeof b), cli_bytes(after, c, sizeof c));
        if (json_u64(json_get(j, "ms"), &ms) && k < sizeof extra)
            snprintf(extra + k, sizeof extra - k, "%sin %llu ms", k ? ", " : "", ms);
        printf("released %s%s%s%s\n", cli_bytes(bytes, a, sizeof a), extra[0] ? " (" : "", extra,
               extra[0] ? ")" : "");
    }
    json_free(j);
    free(ans);
    return rc;
}
