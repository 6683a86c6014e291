/* metrics.c: `reshim metrics [PID...]`: the Prometheus text exposition
 * (0.0.4) of the named processes, or of every shimmed process of this
 * user, merged by snap_prometheus: each family once (HELP, TYPE), then one
 * sample per process, labelled pid and comm. */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METRICS_MAX 4096

int cmd_metrics(int argc, char **argv)
{
    int *pids = calloc((size_t)argc + 1, sizeof *pids);
    struct reshim_snapshot **snaps = calloc(METRICS_MAX, sizeof *snaps);
    int npids = 0, rc = EXIT_OK, n = 0;
    if (!pids || !snaps) {
        cli_err("out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    static const struct option longopts[] = {{NULL, 0, NULL, 0}};
    if (cli_getopt(argc, argv, "", longopts) != -1) {
        rc = EXIT_USAGE;
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        int pid = cli_parse_pid(argv[i]);
        if (pid < 0) {
            rc = cli_usage_error("metrics", "'%s' is not a process id", argv[i]);
            goto out;
        }
        bool dup = false;
        for (int k = 0; k < npids; k++)
            dup |= pids[k] == pid;
        if (!dup)
            pids[npids++] = pid;
    }
    int nfound = 0;
    if (npids) {
        /* Named processes that cannot be found: exit 3; the others are printed. */
        for (int i = 0; i < npids; i++) {
            struct proc_ref p;
            if (procs_find_or_explain(pids[i], &p) == EXIT_OK)
                pids[nfound++] = pids[i];
            else
                rc = EXIT_NOPROC;
        }
        if (nfound)
            n = snapshots_collect(pids, nfound, snaps, METRICS_MAX);
        if (n < nfound && rc == EXIT_OK)
            rc = EXIT_FAIL;
    } else {
        n = snapshots_collect(NULL, 0, snaps, METRICS_MAX);
        if (n == 0)
            procs_say_none();
    }
    if (n > 0) {
        const struct reshim_snapshot *const *cs = (const struct reshim_snapshot *const *)snaps;
        size_t cap = snap_prometheus_max(cs, (size_t)n);
        char *mem = malloc(cap);
        if (!mem) {
            cli_err("out of memory");
            rc = EXIT_FAIL;
            goto out;
        }
        struct sbuf b;
        sb_init(&b, mem, cap);
        snap_prometheus(cs, (size_t)n, &b);
        if (b.overflow) {
            cli_err("internal error: the metrics did not fit their buffer");
            rc = EXIT_FAIL;
        } else {
            fwrite(b.p, 1, b.len, stdout);
        }
        free(mem);
    }
out:
    if (snaps)
        for (int i = 0; i < n; i++)
            free(snaps[i]);
    free(snaps);
    free(pids);
    return rc;
}
