/* snapenc.h: what the encoders of snapshot.h share among themselves, and
 * not with their callers (who include snapshot.h): the appenders' size
 * bounds, the escaped-string appenders with a length, and the JSON key
 * tables that the encoder (snapjson.c), its size bound and the CLI's parser
 * (jsonparse.c) all walk, so the three cannot disagree. */
#ifndef RESHIM_SNAPENC_H
#define RESHIM_SNAPENC_H

#include "snapshot.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(b, s) sb_mem((b), (s), sizeof(s) - 1)  /* append a string literal */
#define LITLEN(s) (sizeof(s) - 1)
#define FSIZE(type, m) sizeof(((type *)0)->m)

#define FIXED_DECIMALS 3  /* seconds in both encodings: millisecond resolution */
#define JSON_ESC_MAX 6 /* most output bytes for one input byte: \u00XX, \ufffd */
#define PROM_ESC_MAX 3 /* U+FFFD for an invalid byte */

/* ---- sbuf.c ---------------------------------------------------------------- */
size_t sb_u64_len(uint64_t v);            /* digits of v */
size_t sb_int_max_len(void);              /* the longest int (INT_MIN) */
size_t sb_fixed_max_len(int decimals);    /* the longest sb_fixed */
void sb_json_strn(struct sbuf *b, const char *str, size_t n); /* sb_json_str of n bytes */
void sb_prom_strn(struct sbuf *b, const char *str, size_t n); /* sb_prom_label of n bytes */

/* A fixed char array of the snapshot: its text, NUL-terminated or not (at
 * most size - 1 bytes are taken, so the size bounds hold whatever the
 * array holds). */
static inline size_t field_len(const char *s, size_t size)
{
    return strnlen(s, size - 1);
}

static inline bool field_is(const char *s, size_t size, const char *word)
{
    size_t n = strlen(word);
    return n < size && field_len(s, size) == n && memcmp(s, word, n) == 0;
}

/* ---- the JSON layout (snapjson.c) ------------------------------------------
 * One table per object; the encoder, snap_json_max and the parser walk the
 * same tables. */
enum ftype {
    T_INT,   /* int */
    T_U64,   /* uint64_t */
    T_I64,   /* int64_t */
    T_DBL,   /* double, as fixed point */
    T_STR,   /* char[size] */
    T_STRN,  /* char[size], null when empty */
    T_OBJ,   /* a nested object: sub[size] at base + off */
    T_DESTS, /* the destinations array (base is the snapshot) */
};

struct field {
    const char *key;
    enum ftype type;
    size_t size;
    size_t off;
    const struct field *sub;
};

extern const struct field snap_top_f[];  /* the `stats` object */
extern const size_t snap_top_n;
extern const struct field snap_dest_f[]; /* one element of net.destinations */
extern const size_t snap_dest_n;

#endif
