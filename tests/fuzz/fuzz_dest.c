/* fuzz_dest: the destination filter (shim/dest.c): RESHIM_DEST rules,
 * their matching, the printable names of socket addresses, and the glob.
 *
 * Input: RULES \0 PATTERN \0 SUBJECT \0 ADDRESS-BYTES. The rules are parsed
 * (RESHIM_DEST); the address bytes make a socket address (family, length
 * and contents fuzzed) that is named (dest_format) and matched
 * (dest_rules_allow); the pattern and subject go to dest_glob.
 *
 * Checked: no crash or undefined behaviour; a parsed rule list is
 * well-formed (a rejected one is empty); a name is NUL-terminated, fits its
 * buffer, is printable ASCII and its length is returned; the name of an
 * inet, inet6 or unix address, given back as a rule, matches that address
 * (and with "!" in front, excludes it); no rules allow everything; the glob
 * agrees with a reference matcher (dynamic programming over both strings). */
#include <netinet/in.h>
#include <sys/un.h>

#include "dest.h"
#include "fuzz_common.h"

#define GLOB_MAX 256

static bool names_answer(void *ctx, const char *name, const struct sockaddr *sa, socklen_t len)
{
    CHECK(name && name[0] && sa, "name callback without a name");
    return *(const bool *)ctx;
}

/* Reference glob: m[i][j] = pattern p[i..] matches s[j..]. */
static bool ref_glob(const char *p, const char *s)
{
    static bool m[GLOB_MAX + 1][GLOB_MAX + 1];
    size_t np = strlen(p), ns = strlen(s);
    for (size_t i = np + 1; i-- > 0;)
        for (size_t j = ns + 1; j-- > 0;) {
            bool v;
            if (i == np)
                v = j == ns;
            else if (p[i] == '*')
                v = m[i + 1][j] || (j < ns && m[i][j + 1]);
            else
                v = j < ns && (p[i] == '?' || p[i] == s[j]) && m[i + 1][j + 1];
            m[i][j] = v;
        }
    return m[0][0];
}

static void check_rules(const struct dest_rules *d)
{
    CHECK(d->n <= DEST_MAX_RULES, "%u rules", d->n);
    bool positive = false;
    for (unsigned i = 0; i < d->n; i++) {
        const struct dest_rule *r = &d->r[i];
        CHECK(r->kind <= DR_UNIX, "kind %u", r->kind);
        CHECK(memchr(r->text, 0, sizeof r->text), "text not terminated");
        if (r->kind == DR_ADDR || r->kind == DR_CIDR)
            CHECK(r->prefix <= (r->family == AF_INET ? 32 : 128) &&
                      (r->family == AF_INET || r->family == AF_INET6),
                  "family %u prefix %u", r->family, r->prefix);
        positive |= !r->negate;
    }
    CHECK(positive == d->has_positive, "has_positive");
}

/* The address's own name as a rule: it must match (and "!name" exclude). */
static void check_self_rule(const struct sockaddr *sa, socklen_t len, const char *name)
{
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)sa;
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                          ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (plen > sizeof un->sun_path)
            plen = sizeof un->sun_path;
        /* An abstract name is compared as a C string: its bytes after an
         * embedded NUL cannot be matched by any rule (see the report). */
        if (plen && un->sun_path[0] == '\0' && memchr(un->sun_path + 1, 0, plen - 1))
            return;
        if (strcmp(name, "unix:(unnamed)") == 0)
            return;
    } else if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        size_t need = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                               : sizeof(struct sockaddr_in6);
        if (len < need || name[0] == '(')
            return;
        size_t n = strlen(name);
        if (n >= 2 && name[n - 2] == ':' && name[n - 1] == '0')
            return; /* port 0: not a destination a rule can name */
    } else {
        return;
    }
    /* A rule cannot hold a comma (the separator), nor blanks at its ends
     * (they are trimmed), nor be longer than a rule's text. */
    size_t n = strlen(name);
    if (strchr(name, ',') || n == 0 || name[0] == ' ' || name[n - 1] == ' ' ||
        n - 5 >= DEST_NAME_MAX)
        return;
    struct dest_rules r;
    CHECK(dest_rules_parse(name, &r) == 0 && r.n == 1, "the name %s does not parse as a rule",
          name);
    bool no = false;
    CHECK(dest_rules_allow(&r, sa, len, names_answer, &no), "%s does not match itself", name);
    char neg[DEST_NAME_MAX + 8];
    snprintf(neg, sizeof neg, "!%s", name);
    CHECK(dest_rules_parse(neg, &r) == 0, "%s does not parse", neg);
    CHECK(!dest_rules_allow(&r, sa, len, names_answer, &no), "%s does not exclude it", neg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *rules = buf;
    const char *pattern = rules + strlen(rules) + 1;
    const char *subject = pattern < buf + size + 1 ? pattern + strlen(pattern) + 1 : pattern;
    const char *end = subject < buf + size + 2 ? subject + strlen(subject) + 1 : subject;
    struct rd r = {(const uint8_t *)end, end < buf + size ? (size_t)(buf + size - end) : 0};

    struct dest_rules d;
    if (dest_rules_parse(rules, &d) == 0)
        check_rules(&d);
    else
        CHECK(d.n == 0 && !d.has_positive, "a rejected list left rules");

    if (strlen(pattern) <= GLOB_MAX && strlen(subject) <= GLOB_MAX)
        CHECK(dest_glob(pattern, subject) == ref_glob(pattern, subject),
              "glob '%s' on '%s': %d", pattern, subject, dest_glob(pattern, subject));

    /* A socket address: family, length, bytes. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    uint8_t fam = rd_u8(&r);
    uint8_t lenb = rd_u8(&r);
    size_t nbuf = rd_u8(&r) % (DEST_NAME_MAX + 1);
    bool name_hits = rd_u8(&r) & 1;
    sa_family_t family = fam % 4 == 0 ? AF_INET : fam % 4 == 1 ? AF_INET6
                         : fam % 4 == 2 ? AF_UNIX : fam;
    size_t body = r.n < sizeof ss - sizeof(sa_family_t) ? r.n : sizeof ss - sizeof(sa_family_t);
    memcpy((char *)&ss + sizeof(sa_family_t), r.p, body);
    ss.ss_family = family;
    socklen_t len = (socklen_t)(lenb < 2 ? lenb
                                         : sizeof(sa_family_t) + (lenb - 2u) % (sizeof ss - 1));
    const struct sockaddr *sa = (const struct sockaddr *)&ss;

    char name[DEST_NAME_MAX + 1];
    memset(name, 'x', sizeof name);
    size_t got = dest_format(sa, len, name, nbuf);
    if (nbuf) {
        CHECK(got < nbuf && name[got] == '\0' && strlen(name) == got, "format: %zu of %zu",
              got, nbuf);
        for (size_t i = 0; i < got; i++)
            CHECK(name[i] >= 0x20 && name[i] < 0x7f, "byte 0x%02x in a name",
                  (unsigned char)name[i]);
    } else {
        CHECK(got == 0 && name[0] == 'x', "format into no room wrote");
    }
    CHECK(name[DEST_NAME_MAX] == 'x' || nbuf > DEST_NAME_MAX, "format wrote past its buffer");

    if (len >= sizeof(sa_family_t)) {
        bool allow = dest_rules_allow(&d, sa, len, names_answer, &name_hits);
        if (d.n == 0)
            CHECK(allow, "no rules, yet refused");
        char full[DEST_NAME_MAX];
        dest_format(sa, len, full, sizeof full);
        check_self_rule(sa, len, full);
    }
    free(buf);
    return 0;
}
