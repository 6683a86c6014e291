/* snapenc.h: what the encoders of snapshot.h share among themselves, and
 * not with their callers (who include snapshot.h): the appenders' size
 * bounds, the escaped-string appenders with a length, and the JSON key
 * tables that the encoder (snapjson.c), its size bound and the CLI's parser
 * (jsonparse.c) all walk, so the three cannot disagree. */
#ifndef RESHIM_SNAPENC_H
#define RESHIM_SNAPENC_H

#include "config.h" /* RESHIM_VAR_NAME_MAX */
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

/* Size bounds that saturate at SIZE_MAX instead of wrapping. */
static inline size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static inline size_t sat_mul(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

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
 * Every answer of the stats socket is described by tables of fields: one
 * table per object; the encoder (snap_doc_json), its size bound
 * (snap_doc_json_max) and the parser (jsonparse.c) walk the same tables.
 * The stats tables are in snapjson.c, those of the other answers in
 * answerjson.c. */
enum ftype {
    T_INT,   /* int */
    T_U64,   /* uint64_t */
    T_I64,   /* int64_t */
    T_DBL,   /* double, as fixed point */
    T_STR,   /* char[size] */
    T_STRN,  /* char[size], null when empty */
    T_OBJ,   /* a nested object: sub[size] at base + off */
    T_ARR,   /* an array (arr) */
    T_MAP,   /* an object keyed by arr->names: element i is the value of names[i] */
};

#define FL_OPT 1u /* written only when the bool at base + opt is true; reading sets it */
#define FL_REQ 2u /* reading refuses an object without it */

struct field;

/* The elements of a T_ARR or T_MAP field. Inline: arr->max elements at
 * base + off, stride apart, their count an unsigned at base + count_off
 * (T_ARR; a T_MAP has all max). A list (T_ARR): base + off holds a struct
 * snap_list, the elements at its p or made one at a time by its at(). */
struct farr {
    const struct field *elem; /* an element: an object of nelem fields, */
    size_t nelem;
    bool bare;                /* or (bare) the one value elem[0] (its off 0) */
    size_t stride;
    size_t max;               /* elements there is room for */
    size_t count_off;
    bool list;
    bool counted;             /* the size bound takes the caller's count (else max) */
    const char (*names)[RESHIM_VAR_NAME_MAX]; /* T_MAP: max keys (the settings' names) */
};

/* The key in the table itself, not pointed to: a pointer in a constant
 * table is a relocation for the loader at every start-up of every preloaded
 * process (110 keys here: 1.4k instructions). The longest is 23 bytes; one
 * of 32 would lose its NUL, and test_encode reads back every key. "" for a
 * document or an element (no key). */
struct field {
    char key[32];
    enum ftype type;
    size_t size;
    size_t off;
    const struct field *sub;
    const struct farr *arr;   /* T_ARR, T_MAP */
    unsigned flags;           /* FL_ */
    size_t opt;               /* FL_OPT: its bool, in the base of off (T_MAP: of each element) */
};

/* A plain field of a table (one with an array or a flag names its members). */
#define FLD(k, t, s, o, sb) {.key = k, .type = (t), .size = (s), .off = (o), .sub = (sb)}

extern const struct field snap_stats_doc; /* the `stats` answer */
extern const struct field snap_error_doc, snap_trim_doc, snap_config_doc, snap_heap_doc;
extern const struct field snap_top_f[];  /* the `stats` object */
extern const size_t snap_top_n;
extern const struct field snap_dest_f[]; /* one element of net.destinations */
extern const size_t snap_dest_n;

/* The encoder, its bound and the parser of any document: the value top
 * (key unused) at base. snap_doc_json ends the text with "\n". count: the
 * elements of each counted array the bound allows for. snap_doc_parse
 * writes only what it reads (the caller clears out first); 0, or -1 with
 * a reason. */
size_t snap_doc_json(const struct field *top, const void *base, struct sbuf *b);
size_t snap_doc_json_max(const struct field *top, size_t count);
int snap_doc_parse(const struct field *top, const char *text, size_t len, void *base,
                   const char **err);

#endif
