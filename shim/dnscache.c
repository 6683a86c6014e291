/* dnscache.c: the DNS answer cache (see dnscache.h): a small fixed table
 * under one mutex (getaddrinfo is not async-signal-safe; the name match
 * from connect only tries the lock). Its copies are laid out as the C
 * library lays out its own answers, so that its freeaddrinfo frees the ones
 * handed to the app: glibc's (one block per node, the name apart) or musl's
 * (one array of struct aibuf, see copy_for_app).
 *
 * The cache's own copies live in the shim's own memory (sys_map), never
 * in the app's allocator: one block per entry (the nodes, their addresses,
 * the names), kept by the entry and written over in place by its next
 * answer when that fits (an answer re-resolved costs no system call), a
 * larger block mapped when not. Only the copies handed to the app
 * (dns_stale_answer) come from the app's allocator (alloc.h's
 * reshim_app_*, handed in by dns.c), laid out for its freeaddrinfo.
 *
 * The entries are a fixed array (64); a uthash index over them finds a
 * lookup's entry by its key (dns_key's packed bytes). uthash (off the hot
 * path: getaddrinfo, a failed connect's RESHIM_DEST check) takes its bucket
 * arrays from sys_map, never from the app's malloc nor through the shim's
 * own interposers: a few pages, given back with sys_unmap when it doubles
 * them. When it cannot have them, the answer is not cached
 * (HASH_NONFATAL_OOM), and nothing else changes. */
#define _GNU_SOURCE
#include "dnscache.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atfork.h"
#include "reshim.h"
#include "sys.h"

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) sys_map(sz)
#define uthash_free(ptr, sz) sys_unmap((ptr), (sz))
/* Paul Hsieh's SuperFastHash (4 bytes a step): 379 instructions a lookup
 * here against 511 with uthash's default (Jenkins, a byte at a time). */
#define HASH_FUNCTION(keyptr, keylen, hashv) HASH_SFH(keyptr, keylen, hashv)
#include <uthash.h>

#define DNS_CACHE_SLOTS 64

struct dns_entry {
    bool used;
    struct dns_key key;
    uint64_t stored_ns;   /* when the answer was last good */
    uint64_t used_ns;     /* for replacement */
    struct addrinfo *answer; /* the cache's copy, in block */
    void *block;             /* sys_map'd, kept while the entry is reused */
    size_t block_len;        /* mapped bytes (whole pages) */
    UT_hash_handle hh;       /* in index_head while used */
};

static pthread_mutex_t dns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dns_entry cache[DNS_CACHE_SLOTS];
static struct dns_entry *index_head; /* uthash over the used entries of cache[] */

/* The bytes of a key that identify the lookup: hints, service, node. */
#define KEY_AT(k) ((const void *)&(k)->flags)

static struct dns_entry *find(const struct dns_key *k)
{
    struct dns_entry *e;
    HASH_FIND(hh, index_head, KEY_AT(k), k->len, e);
    return e;
}

static void dns_atfork(int phase)
{
    if (phase == ATFORK_PREPARE)
        pthread_mutex_lock(&dns_lock);
    else if (phase == ATFORK_PARENT)
        pthread_mutex_unlock(&dns_lock);
    else
        pthread_mutex_init(&dns_lock, NULL);
}
RESHIM_ATFORK(dns_atfork, ATFORK_RANK_DNS);

bool dns_make_key(const char *node, const char *service, const struct addrinfo *hints,
                     struct dns_key *k)
{
    unsigned char tmp[16];
    if (!node || strlen(node) >= DNS_NODE_MAX || (service && strlen(service) >= DNS_SERVICE_MAX))
        return false;
    if (inet_pton(AF_INET, node, tmp) == 1 || inet_pton(AF_INET6, node, tmp) == 1)
        return false; /* numeric: never fails temporarily */
    if (hints && (hints->ai_flags & AI_NUMERICHOST))
        return false;
    k->flags = hints ? hints->ai_flags : 0;
    k->family = hints ? hints->ai_family : 0;
    k->socktype = hints ? hints->ai_socktype : 0;
    k->protocol = hints ? hints->ai_protocol : 0;
    size_t sl = service ? strlen(service) : 0, nl = strlen(node);
    memcpy(k->names, service ? service : "", sl + 1);
    memcpy(k->names + sl + 1, node, nl + 1);
    k->node_at = (unsigned)(sl + 1);
    k->len = (unsigned)(offsetof(struct dns_key, names) - offsetof(struct dns_key, flags) + sl +
                        1 + nl + 1);
    return true;
}

#ifdef RESHIM_MUSL
/* musl's layout (src/network/lookup.h, getaddrinfo.c, freeaddrinfo.c since
 * 1.1.20): one calloc'd array of struct aibuf, the canonical name after it;
 * node k has slot k, node 0 holds the count of nodes still owned (ref).
 * freeaddrinfo walks to the last node, steps back `slot` elements to the
 * array and frees it when ref drops to 0. Older musl freed the head node
 * with free(), which is this array's start too. */
struct musl_aibuf {
    struct addrinfo ai;
    union {
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } sa;
    volatile int lock[1];
    short slot, ref;
};

static struct addrinfo *copy_for_app(const struct addrinfo *src, const struct dns_app_alloc *app)
{
    size_t n = 0, canon_len = 0;
    const char *canon = NULL;
    for (const struct addrinfo *a = src; a; a = a->ai_next) {
        if (a->ai_addrlen > sizeof(((struct musl_aibuf *)0)->sa) || ++n > 32767)
            return NULL; /* not what musl's getaddrinfo makes: no stale answer */
        if (a->ai_canonname && !canon)
            canon = a->ai_canonname;
    }
    if (!n)
        return NULL;
    if (canon)
        canon_len = strlen(canon);
    struct musl_aibuf *out = app->calloc(1, n * sizeof *out + canon_len + 1);
    if (!out)
        return NULL;
    char *outcanon = canon ? memcpy((char *)(out + n), canon, canon_len + 1) : NULL;
    size_t k = 0;
    for (const struct addrinfo *a = src; a; a = a->ai_next, k++) {
        out[k].ai = *a;
        out[k].ai.ai_addr = a->ai_addr ? (struct sockaddr *)&out[k].sa : NULL;
        if (a->ai_addr)
            memcpy(&out[k].sa, a->ai_addr, a->ai_addrlen);
        out[k].ai.ai_canonname = a->ai_canonname ? outcanon : NULL;
        out[k].ai.ai_next = k + 1 < n ? &out[k + 1].ai : NULL;
        out[k].slot = (short)k;
    }
    out[0].ref = (short)n;
    return &out[0].ai;
}
#else
static void free_list(struct addrinfo *ai, const struct dns_app_alloc *app)
{
    while (ai) {
        struct addrinfo *next = ai->ai_next;
        app->free(ai->ai_canonname);
        app->free(ai);
        ai = next;
    }
}

/* glibc's layout: each node and its address in one block, the canonical
 * name in another, so that its freeaddrinfo() (node by node) frees it. */
static struct addrinfo *copy_for_app(const struct addrinfo *src, const struct dns_app_alloc *app)
{
    struct addrinfo *head = NULL, **tail = &head;
    for (; src; src = src->ai_next) {
        struct addrinfo *n = app->malloc(sizeof *n + src->ai_addrlen);
        if (!n) {
            free_list(head, app);
            return NULL;
        }
        *n = *src;
        n->ai_next = NULL;
        n->ai_addr = src->ai_addr ? (struct sockaddr *)(n + 1) : NULL;
        if (src->ai_addr)
            memcpy(n->ai_addr, src->ai_addr, src->ai_addrlen);
        n->ai_canonname = NULL;
        if (src->ai_canonname) {
            size_t len = strlen(src->ai_canonname) + 1;
            n->ai_canonname = app->malloc(len);
            if (n->ai_canonname)
                memcpy(n->ai_canonname, src->ai_canonname, len);
            if (!n->ai_canonname) {
                app->free(n);
                free_list(head, app);
                return NULL;
            }
        }
        *tail = n;
        tail = &n->ai_next;
    }
    return head;
}
#endif

/* The cache's own copy of an answer: one block of the shim's own memory
 * holding the nodes, then their addresses (8-byte aligned), then the
 * canonical names. stored_bytes: its size (0 for no answer). */
#define ALIGN8(n) (((n) + 7) & ~(size_t)7)
static size_t stored_bytes(const struct addrinfo *src)
{
    size_t n = 0;
    for (; src; src = src->ai_next) {
        n += sizeof(struct addrinfo);
        if (src->ai_addr)
            n += ALIGN8(src->ai_addrlen);
        if (src->ai_canonname)
            n += strlen(src->ai_canonname) + 1;
    }
    return n;
}

static struct addrinfo *stored_fill(void *block, const struct addrinfo *src)
{
    size_t nodes = 0;
    for (const struct addrinfo *a = src; a; a = a->ai_next)
        nodes++;
    struct addrinfo *out = block;
    char *at = (char *)(out + nodes);
    for (size_t i = 0; src; src = src->ai_next, i++) {
        out[i] = *src;
        out[i].ai_next = i + 1 < nodes ? &out[i + 1] : NULL;
        if (src->ai_addr) {
            out[i].ai_addr = (struct sockaddr *)at;
            memcpy(at, src->ai_addr, src->ai_addrlen);
            at += ALIGN8(src->ai_addrlen);
        }
    }
    for (size_t i = 0; i < nodes; i++)
        if (out[i].ai_canonname) {
            size_t len = strlen(out[i].ai_canonname) + 1;
            out[i].ai_canonname = memcpy(at, out[i].ai_canonname, len);
            at += len;
        }
    return out;
}

void dns_remember(const struct dns_key *k, const struct addrinfo *answer)
{
    size_t need = stored_bytes(answer);
    if (!need)
        return;
    uint64_t now = reshim_now_ns();
    void *unmap = NULL;
    size_t unmap_len = 0;
    pthread_mutex_lock(&dns_lock);
    struct dns_entry *slot = find(k);
    bool fresh = !slot;
    if (fresh) { /* a new key: the first unused entry, else the least recently used */
        struct dns_entry *unused = NULL, *oldest = NULL;
        for (int i = 0; i < DNS_CACHE_SLOTS && !unused; i++) {
            struct dns_entry *e = &cache[i];
            if (!e->used)
                unused = e;
            else if (!oldest || e->used_ns < oldest->used_ns)
                oldest = e;
        }
        slot = unused ? unused : oldest;
    }
    if (slot->block_len < need) { /* the entry's block is too small: a larger one */
        void *block = sys_map(need);
        if (!block) { /* no memory: nothing changes, not cached */
            pthread_mutex_unlock(&dns_lock);
            return;
        }
        unmap = slot->block;
        unmap_len = slot->block_len;
        slot->block = block;
        slot->block_len = sys_page_round(need);
        slot->answer = NULL;
    }
    if (fresh) {
        if (slot->used) {
            HASH_DELETE(hh, index_head, slot);
            slot->used = false;
        }
        slot->key = *k;
        HASH_ADD_KEYPTR(hh, index_head, KEY_AT(&slot->key), slot->key.len, slot);
        if (!slot->hh.tbl) { /* no memory for the index: not cached (the block is kept) */
            pthread_mutex_unlock(&dns_lock);
            sys_unmap(unmap, unmap_len);
            return;
        }
    }
    slot->answer = stored_fill(slot->block, answer);
    slot->used = true;
    slot->stored_ns = slot->used_ns = now;
    pthread_mutex_unlock(&dns_lock);
    sys_unmap(unmap, unmap_len);
}

struct addrinfo *dns_stale_answer(const struct dns_key *k, uint64_t max_age, uint64_t *age,
                                  const struct dns_app_alloc *app)
{
    struct addrinfo *copy = NULL;
    uint64_t now = reshim_now_ns();
    pthread_mutex_lock(&dns_lock);
    struct dns_entry *e = find(k);
    if (e && now - e->stored_ns <= max_age) {
        copy = copy_for_app(e->answer, app);
        e->used_ns = now;
        *age = now - e->stored_ns;
    }
    pthread_mutex_unlock(&dns_lock);
    return copy;
}

bool dns_have_stale(const struct dns_key *k, uint64_t max_age)
{
    uint64_t now = reshim_now_ns();
    pthread_mutex_lock(&dns_lock);
    struct dns_entry *e = find(k);
    bool found = e && now - e->stored_ns <= max_age;
    pthread_mutex_unlock(&dns_lock);
    return found;
}

static bool same_host(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return false;
}

bool reshim_dns_name_has_addr(void *ctx, const char *name, const struct sockaddr *sa,
                              socklen_t len)
{
    (void)ctx;
    (void)len;
    bool found = false;
    if (strcmp(name, "localhost") == 0) {
        if (sa->sa_family == AF_INET)
            return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 == 127;
        if (sa->sa_family == AF_INET6)
            return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    }
    /* Called from connect, which may run in a signal handler: never wait. */
    if (pthread_mutex_trylock(&dns_lock) != 0)
        return false;
    /* Every entry of that name (any service or hints), ignoring case: the
     * used entries, in the index's list. */
    for (struct dns_entry *e = index_head; e && !found; e = e->hh.next) {
        if (strcasecmp(e->key.names + e->key.node_at, name) != 0)
            continue;
        for (struct addrinfo *ai = e->answer; ai && !found; ai = ai->ai_next)
            found = ai->ai_addr && same_host(ai->ai_addr, sa);
    }
    pthread_mutex_unlock(&dns_lock);
    return found;
}

