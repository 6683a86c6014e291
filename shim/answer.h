/* answer.h: the answers to the stats socket's requests (answer.c), written
 * into a buffer the caller (server.c, one per client) provides. */
#ifndef RESHIM_ANSWER_H
#define RESHIM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "snapshot.h"

#define ANSWER_SMALL (16 * 1024) /* what a one-line answer is given */

struct answer {
    /* Room for an answer of up to need bytes: the caller's buffer, emptied,
     * its size in *cap; NULL when there is no memory. */
    char *(*room)(void *ctx, size_t need, size_t *cap);
    void *ctx;
    struct sbuf b;    /* the answer, once written */
    uint64_t done_ns; /* when it was done, when that was long after the request */
};

enum answer_result {
    ANSWER_NONE,  /* a blank line: nothing */
    ANSWER_TEXT,  /* a->b holds the answer */
    ANSWER_WATCH, /* start watching: a frame every *watch_ms */
    ANSWER_NOMEM, /* no room for the answer: close the client */
};

/* From init: the RESHIM_ values as given in the environment (for `config`). */
void answer_init(reshim_getenv_fn get, void *ctx);
/* Fork child: the trim rate limit starts again. */
void answer_forget(void);

/* One request line (without its newline). snapshot: the snapshot of this
 * turn of the thread (taken on first use). */
enum answer_result answer_request(struct answer *a, const char *line, size_t len,
                                  const struct reshim_snapshot *(*snapshot)(void), uint64_t now,
                                  uint32_t *watch_ms);
/* The stats answer (also each frame of `watch`); false: no room. */
bool answer_stats(struct answer *a, const struct reshim_snapshot *s);
/* {"error":"msg"}; false: no room. */
bool answer_error(struct answer *a, const char *msg);

#endif
