/* config_show.c: the `config` answer (see config_show.h), filled into the
 * struct of answerjson.h that its key table encodes. Pure: no allocation,
 * no stdio (it runs in the stats thread), numbers through the sbuf
 * printers of sbuf.c. */
#include "config_show.h"

#include <string.h>

#define NS_S 1000000000ull

/* v with the largest unit of units[] that divides it exactly; "0" for 0. */
struct unit {
    uint64_t mult;
    char name[4]; /* the text in the table: no relocation at load */
};

static const char *exact(char *buf, size_t n, uint64_t v, const struct unit *u, size_t nu)
{
    struct sbuf b;
    sb_init(&b, buf, n);
    size_t i = 0;
    while (v && i + 1 < nu && v % u[i].mult != 0)
        i++;
    if (!v) {
        sb_str(&b, "0");
        return buf;
    }
    sb_u64(&b, v / u[i].mult);
    sb_str(&b, u[i].name);
    return buf;
}

static const char *duration(char *buf, size_t n, uint64_t ns)
{
    static const struct unit u[] = {{3600 * NS_S, "h"}, {60 * NS_S, "min"}, {NS_S, "s"},
                                    {1000000, "ms"},    {1000, "us"},       {1, "ns"}};
    return exact(buf, n, ns, u, sizeof u / sizeof u[0]);
}

static const char *size(char *buf, size_t n, uint64_t bytes)
{
    static const struct unit u[] = {{1ull << 40, "T"}, {1ull << 30, "G"}, {1ull << 20, "M"},
                                    {1ull << 10, "K"}, {1, ""}};
    return exact(buf, n, bytes, u, sizeof u / sizeof u[0]);
}

static const char *count(char *buf, size_t n, uint64_t v)
{
    struct sbuf b;
    sb_init(&b, buf, n);
    sb_u64(&b, v);
    return buf;
}

/* Hundredths of a percent: 0.2 -> "20%", 0.125 -> "12.5%", 0.1234 -> "12.34%". */
static const char *percent(char *buf, size_t n, double fraction)
{
    uint64_t h = (uint64_t)(fraction * 10000.0 + 0.5);
    struct sbuf b;
    sb_init(&b, buf, n);
    sb_u64(&b, h / 100);
    if (h % 100) {
        char frac[4] = {'.', (char)('0' + h % 100 / 10), (char)('0' + h % 10), 0};
        if (frac[2] == '0')
            frac[2] = 0;
        sb_str(&b, frac);
    }
    sb_str(&b, "%");
    return buf;
}

const char *config_show_value(const struct reshim_config *cfg, enum reshim_var v,
                              const char *given, char *buf, size_t n)
{
    switch (v) {
    case V_DISABLE: return cfg->disable ? "1" : "0";
    case V_LOG: return reshim_log_level_name(cfg->log_level);
    case V_LOG_FILE: return cfg->log_file;
    case V_RETRIES: return count(buf, n, cfg->retries);
    case V_BACKOFF_BASE: return duration(buf, n, cfg->backoff_base_ns);
    case V_BACKOFF_MAX: return duration(buf, n, cfg->backoff_max_ns);
    case V_JITTER: return reshim_jitter_name(cfg->jitter);
    case V_RETRY_DEADLINE: return duration(buf, n, cfg->retry_deadline_ns);
    case V_RETRY_BUDGET: return percent(buf, n, cfg->retry_budget);
    case V_BREAKER: return count(buf, n, cfg->breaker);
    case V_NONBLOCK: return cfg->nonblock ? "on" : "off";
    case V_REPLAY: return reshim_replay_name(cfg->replay);
    case V_REPLAY_MAX: return size(buf, n, cfg->replay_max);
    case V_DEST:
        /* The rules as given (they parsed), or every destination. */
        return cfg->source[V_DEST] == SRC_ENV && given && *given ? given : "all";
    case V_DNS_STALE: return duration(buf, n, cfg->dns_stale_ns);
    case V_MEM_BUDGET:
        switch (cfg->mem_budget_kind) {
        case BUDGET_AUTO: return "auto";
        case BUDGET_OFF: return "off";
        case BUDGET_BYTES: return size(buf, n, cfg->mem_budget_bytes);
        case BUDGET_PERCENT: return percent(buf, n, cfg->mem_budget_fraction);
        }
        return "?";
    case V_MEM_WARN: return percent(buf, n, cfg->mem_warn);
    case V_MEM_TRIM: return percent(buf, n, cfg->mem_trim);
    case V_MEM_POLICY: return reshim_mem_policy_name(cfg->mem_policy);
    case V_HEAP_SAMPLE: return size(buf, n, cfg->heap_sample_bytes);
    case V_HEAP_UNWINDER: return reshim_unwinder_name(cfg->heap_unwinder);
    case V_HEAP_PYTHON: return cfg->heap_python ? "on" : "off";
    case V_RUN_DIR: return cfg->run_dir;
    case V_INTERVAL: return duration(buf, n, cfg->interval_ns);
    case V_PUSH: return cfg->push;
    case V_COUNT: break;
    }
    return "";
}

#define VALUE_MAX 48 /* a formatted number with its unit */

size_t config_show_json_max(const struct reshim_config *cfg, const char *const given[V_COUNT])
{
    size_t need = 16;
    for (int v = 0; v < V_COUNT; v++) {
        char vb[VALUE_MAX];
        const char *val = config_show_value(cfg, (enum reshim_var)v, given[v], vb, sizeof vb);
        /* Escaping takes at most 6 bytes per input byte (\u00XX, \ufffd). */
        need += strlen(reshim_config_names[v]) + 6 * strlen(val) + 64;
        if (given[v])
            need += 6 * strlen(given[v]) + 16;
    }
    return need;
}

void config_show_fill(struct snap_config *out, const struct reshim_config *cfg,
                      const char *const given[V_COUNT])
{
    for (int v = 0; v < V_COUNT; v++) {
        struct snap_config_var *x = &out->var[v];
        char vb[VALUE_MAX];
        enum reshim_source src = cfg->source[v];
        x->present = true;
        snap_word(x->value, sizeof x->value,
                  config_show_value(cfg, (enum reshim_var)v, given[v], vb, sizeof vb));
        snap_word(x->source, sizeof x->source, reshim_source_name(src));
        x->has_given = src == SRC_INVALID;
        snap_word(x->given, sizeof x->given, x->has_given && given[v] ? given[v] : "");
    }
}
