#include "core/config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/xalloc.h"

#define CONFIG_MAX_FILE (1024 * 1024)
#define CONFIG_MAX_LINE 1000
#define CONFIG_MAX_LABELS 256
#define CONFIG_MAX_SECTION 47 /* "[label." + 40 */

enum cfg_type { T_STRING, T_PATH, T_INT, T_BOOL, T_DURATION, T_KEYTYPES, T_EKUS, T_CBPOLICY };

/* One key: where it lives, how it parses, its bounds and default. */
struct cfg_row {
    const char *section; /* "label" rows apply to every [label.NAME] */
    const char *key;
    enum cfg_type type;
    size_t offset; /* into struct kp_config, or struct label_cfg for label rows */
    long min, max;
    const char *def; /* default, in file syntax without quotes; NULL: none */
    const char *(*check)(const char *value); /* strings: NULL or why the value is bad */
};

static const char *check_tls_version(const char *v)
{
    return strcmp(v, "1.2") == 0 || strcmp(v, "1.3") == 0 ? NULL : "must be \"1.2\" or \"1.3\"";
}

static const char *check_base_path(const char *v)
{
    size_t n = strlen(v);
    if (n < 2 || n > 200 || v[0] != '/' || v[n - 1] == '/' || strstr(v, "//") != NULL)
        return "must start with /, not end with / and be at most 200 characters";
    return NULL;
}

static const char *check_store_url(const char *v)
{
    if (strncmp(v, "sqlite:", 7) == 0 && v[7] != '\0')
        return NULL;
    if (strncmp(v, "postgresql://", 13) == 0 && v[13] != '\0')
        return NULL;
    return "must be sqlite:PATH or postgresql://user@host:port/database";
}

static const char *check_log_level(const char *v)
{
    return log_level_parse(v) >= 0 ? NULL : "must be debug, info, warn or error";
}

static const char *check_log_format(const char *v)
{
    return log_format_parse(v) >= 0 ? NULL : "must be \"text\" or \"json\"";
}

/* "" or comma-separated 64-digit lowercase hex SHA-256 values. */
static const char *check_sha256_list(const char *v)
{
    const char *p = v;

    while (*p != '\0') {
        size_t n;
        p += strspn(p, " ");
        n = strspn(p, "0123456789abcdef");
        if (n != 64)
            return "must be SHA-256 values in lowercase hex, separated by commas";
        p += n;
        p += strspn(p, " ");
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return "must be SHA-256 values in lowercase hex, separated by commas";
    }
    return NULL;
}

static const char *check_approval(const char *v)
{
    return strcmp(v, "auto") == 0 || strcmp(v, "manual") == 0 ? NULL
                                                              : "must be \"auto\" or \"manual\"";
}

static const char *check_otp_subject(const char *v)
{
    return strcmp(v, "entity") == 0 || strcmp(v, "any") == 0 ? NULL
                                                             : "must be \"entity\" or \"any\"";
}

static const char *check_not_empty(const char *v)
{
    return v[0] != '\0' ? NULL : "cannot be empty";
}

#define C(field) offsetof(struct kp_config, field)
#define L(field) offsetof(struct label_cfg, field)

static const struct cfg_row config_rows[] = {
    {"server", "listen", T_STRING, C(listen), 0, 0, "0.0.0.0", check_not_empty},
    {"server", "port", T_INT, C(port), 0, 65535, "9443", NULL},
    {"server", "threads", T_INT, C(threads), 0, 256, "0", NULL},
    {"server", "max_body_bytes", T_INT, C(max_body_bytes), 1024, 16 * 1024 * 1024, "65536", NULL},
    {"server", "max_header_bytes", T_INT, C(max_header_bytes), 1024, 1024 * 1024, "16384", NULL},
    {"server", "max_url_bytes", T_INT, C(max_url_bytes), 256, 65536, "2048", NULL},
    {"server", "max_header_count", T_INT, C(max_header_count), 8, 1000, "64", NULL},
    {"server", "read_timeout", T_DURATION, C(read_timeout), 1, 3600, "10", NULL},
    {"server", "idle_timeout", T_DURATION, C(idle_timeout), 1, 86400, "60", NULL},
    {"server", "max_connections", T_INT, C(max_connections), 1, 1000000, "10000", NULL},
    {"server", "auth_fail_limit", T_INT, C(auth_fail_limit), 0, 1000000, "10", NULL},
    {"server", "auth_fail_limit_addr", T_INT, C(auth_fail_limit_addr), 0, 1000000, "100", NULL},
    {"server", "auth_fail_window", T_DURATION, C(auth_fail_window), 1, 86400, "60", NULL},
    {"tls", "cert", T_PATH, C(tls_cert), 0, 0, NULL, check_not_empty},
    {"tls", "key", T_PATH, C(tls_key), 0, 0, NULL, check_not_empty},
    {"tls", "client_ca", T_PATH, C(tls_client_ca), 0, 0, "", NULL},
    {"tls", "min_version", T_STRING, C(tls_min_version), 0, 0, "1.2", check_tls_version},
    {"tls", "max_version", T_STRING, C(tls_max_version), 0, 0, "1.3", check_tls_version},
    {"tls", "allow_cbc", T_BOOL, C(tls_allow_cbc), 0, 0, "false", NULL},
    {"est", "base_path", T_STRING, C(est_base_path), 0, 0, "/.well-known/est", check_base_path},
    {"est", "retry_after", T_INT, C(est_retry_after), 1, 86400, "30", NULL},
    {"est", "fullcmc", T_BOOL, C(est_fullcmc), 0, 0, "false", NULL},
    {"est", "serverkeygen", T_BOOL, C(est_serverkeygen), 0, 0, "false", NULL},
    {"store", "url", T_STRING, C(store_url), 0, 0, "sqlite:kipuka.db", check_store_url},
    {"store", "pool_size", T_INT, C(store_pool_size), 1, 1000, "4", NULL},
    {"coap", "psk_file", T_PATH, C(coap_psk_file), 0, 0, "", NULL},
    {"otp", "key_file", T_PATH, C(otp_key_file), 0, 0, "otp.key", check_not_empty},
    {"otp", "default_ttl", T_DURATION, C(otp_default_ttl), 60, 366 * 86400, "24h", NULL},
    {"otp", "default_uses", T_INT, C(otp_default_uses), 1, 1000000, "1", NULL},
    {"log", "level", T_STRING, C(log_level), 0, 0, "info", check_log_level},
    {"log", "format", T_STRING, C(log_format), 0, 0, "text", check_log_format},
    {"admin", "token_sha256", T_STRING, C(admin_token_sha256), 0, 0, "", check_sha256_list},
    {"admin", "client_subjects", T_STRING, C(admin_client_subjects), 0, 0, "", NULL},
    {"admin", "client_ca", T_PATH, C(admin_client_ca), 0, 0, "", NULL},
    {"admin", "client_ca_may_issue", T_BOOL, C(admin_client_ca_may_issue), 0, 0, "false", NULL},
    {"metrics", "require_auth", T_BOOL, C(metrics_require_auth), 0, 0, "true", NULL},
    {"crl", "path", T_STRING, C(crl_path), 0, 0, "/crl", check_base_path},
    {"crl", "next_update", T_DURATION, C(crl_next_update), 3600, 366 * 86400, "24h", NULL},
    {"crl", "refresh", T_DURATION, C(crl_refresh), 1, 86400, "5m", NULL},
    {"coap", "enabled", T_BOOL, C(coap_enabled), 0, 0, "false", NULL},
    {"coap", "listen", T_STRING, C(coap_listen), 0, 0, "", NULL},
    {"coap", "port", T_INT, C(coap_port), 0, 65535, "5684", NULL},
    {"coap", "max_sessions", T_INT, C(coap_max_sessions), 1, 100000, "1000", NULL},
    {"coap", "session_timeout", T_DURATION, C(coap_session_timeout), 1, 86400, "120", NULL},
};

static const struct cfg_row label_rows[] = {
    {"label", "ca_cert", T_PATH, L(ca_cert), 0, 0, NULL, check_not_empty},
    {"label", "ca_chain", T_PATH, L(ca_chain), 0, 0, "", NULL},
    {"label", "ca_key", T_PATH, L(ca_key), 0, 0, NULL, check_not_empty},
    {"label", "key_types", T_KEYTYPES, L(key_types), 0, 0,
     "ec:P-256, ec:P-384, rsa:2048, rsa:3072, rsa:4096", NULL},
    {"label", "max_validity_days", T_INT, L(max_validity_days), 1, 3650, "398", NULL},
    {"label", "eku", T_EKUS, L(ekus), 0, 0, "clientAuth", NULL},
    {"label", "allow_otp", T_BOOL, L(allow_otp), 0, 0, "true", NULL},
    {"label", "otp_subject", T_STRING, L(otp_subject), 0, 0, "entity", check_otp_subject},
    {"label", "allow_psk", T_BOOL, L(allow_psk), 0, 0, "false", NULL},
    {"label", "allow_mtls", T_BOOL, L(allow_mtls), 0, 0, "true", NULL},
    {"label", "channel_binding", T_CBPOLICY, L(channel_binding), 0, 0, "optional", NULL},
    {"label", "mtls_subject_match", T_BOOL, L(mtls_subject_match), 0, 0, "true", NULL},
    {"label", "mtls_accept_external", T_BOOL, L(mtls_accept_external), 0, 0, "false", NULL},
    {"label", "reenroll_allow_change", T_BOOL, L(reenroll_allow_change), 0, 0, "false", NULL},
    {"label", "max_sans", T_INT, L(max_sans), 0, 1000, "20", NULL},
    {"label", "csrattrs_extra", T_STRING, L(csrattrs_extra), 0, 0, "", NULL},
    {"label", "approval", T_STRING, L(approval), 0, 0, "auto", check_approval},
    {"label", "approval_ttl", T_DURATION, L(approval_ttl), 1, 366 * 86400, "7d", NULL},
    {"label", "serverkeygen_kek_file", T_PATH, L(serverkeygen_kek_file), 0, 0, "", NULL},
    {"label", "serverkeygen_archive", T_BOOL, L(serverkeygen_archive), 0, 0, "false", NULL},
    {"label", "serverkeygen_archive_key_file", T_PATH, L(serverkeygen_archive_key_file), 0, 0, "",
     NULL},
};

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const key_type_names[KEY__MAX] = {[KEY_EC_P256] = "ec:P-256",
                                                     [KEY_EC_P384] = "ec:P-384",
                                                     [KEY_RSA_2048] = "rsa:2048",
                                                     [KEY_RSA_3072] = "rsa:3072",
                                                     [KEY_RSA_4096] = "rsa:4096"};

static const char *const eku_names[EKU__MAX] = {[EKU_CLIENT_AUTH] = "clientAuth",
                                                [EKU_SERVER_AUTH] = "serverAuth",
                                                [EKU_CODE_SIGNING] = "codeSigning",
                                                [EKU_EMAIL_PROTECTION] = "emailProtection"};

/* Parser state passed through libinih. */
struct cfg_parse {
    struct kp_config *cfg;
    char *why;   /* first error */
    char **seen; /* "section\nkey" already set, to refuse duplicates */
    size_t nseen;
};

const char *config_key_type_name(enum key_type t)
{
    return (unsigned)t < KEY__MAX ? key_type_names[t] : "unknown";
}

const char *config_eku_name(enum eku e)
{
    return (unsigned)e < EKU__MAX ? eku_names[e] : "unknown";
}

int config_key_type_parse(const char *s)
{
    for (int i = 0; i < KEY__MAX; i++)
        if (strcmp(s, key_type_names[i]) == 0)
            return i;
    return -1;
}

long config_parse_duration(const char *s)
{
    char *end = NULL;
    long mult = 1, v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    if (*end == 's')
        end++;
    else if (*end == 'm' && end++)
        mult = 60;
    else if (*end == 'h' && end++)
        mult = 3600;
    else if (*end == 'd' && end++)
        mult = 86400;
    if (*end != '\0' || v > LONG_MAX / mult)
        return -1;
    return v * mult;
}

/* Split a comma/space separated list and map each word through names[]. */
static int config_parse_set(const char *s, const char *const *names, int n, unsigned *out)
{
    unsigned set = 0;
    char *copy = xstrdup(s), *p = copy;
    int ok = 1;

    while (*p) {
        size_t len;
        int found = 0;
        p += strspn(p, ", \t");
        len = strcspn(p, ", \t");
        if (len == 0)
            break;
        for (int i = 0; i < n; i++) {
            if (strlen(names[i]) == len && strncmp(p, names[i], len) == 0) {
                set |= 1u << i;
                found = 1;
            }
        }
        if (!found)
            ok = 0;
        p += len;
    }
    free(copy);
    if (ok)
        *out = set;
    return ok;
}

/* TOML basic string: "..." with \" \\ \t \n escapes. Returns NULL if not one. */
static char *config_unquote(const char *v)
{
    size_t n = strlen(v), o = 0;
    char *s;

    if (n < 2 || v[0] != '"' || v[n - 1] != '"')
        return NULL;
    s = xmalloc(n);
    for (size_t i = 1; i < n - 1; i++) {
        char c = v[i];
        if (c == '"')
            goto bad;
        if (c == '\\') {
            i++;
            if (i >= n - 1)
                goto bad;
            switch (v[i]) {
            case '"':
                c = '"';
                break;
            case '\\':
                c = '\\';
                break;
            case 't':
                c = '\t';
                break;
            case 'n':
                c = '\n';
                break;
            default:
                goto bad;
            }
        }
        s[o++] = c;
    }
    s[o] = '\0';
    return s;
bad:
    free(s);
    return NULL;
}

static void *config_fail(struct cfg_parse *p, const char *fmt, const char *a, const char *b)
{
    if (p->why == NULL)
        p->why = xasprintf(fmt, a, b);
    return NULL;
}

/* Parse one value into *field according to the row. Returns 1 on success. */
static int config_set(struct cfg_parse *p, const struct cfg_row *row, void *base, const char *value)
{
    char *field = (char *)base + row->offset;
    char *str = NULL;
    char key[64];
    long num;
    int ok = 0;

    snprintf(key, sizeof(key), "%s.%s", row->section, row->key);

    switch (row->type) {
    case T_STRING:
    case T_PATH:
        str = config_unquote(value);
        if (str == NULL) {
            config_fail(p, "%s: expected a quoted string, got %s", key, value);
            goto out;
        }
        if (row->check != NULL && row->check(str) != NULL) {
            config_fail(p, "%s %s", key, row->check(str));
            goto out;
        }
        free(*(char **)field);
        *(char **)field = str;
        str = NULL; /* steal */
        ok = 1;
        break;
    case T_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            config_fail(p, "%s: expected true or false, got %s", key, value);
            goto out;
        }
        *(bool *)field = value[0] == 't';
        ok = 1;
        break;
    case T_INT:
    case T_DURATION: {
        char *end = NULL;
        str = config_unquote(value);
        if (row->type == T_DURATION) {
            num = config_parse_duration(str ? str : value);
        } else {
            errno = 0;
            num = str ? -1 : strtol(value, &end, 10);
            if (str || errno != 0 || end == value || *end != '\0')
                num = LONG_MIN;
        }
        if (num == LONG_MIN || num < 0 || num < row->min || num > row->max) {
            char range[64];
            snprintf(range, sizeof(range), "%ld..%ld", row->min, row->max);
            config_fail(p, "%s: expected a value in %s", key, range);
            goto out;
        }
        *(long *)field = num;
        ok = 1;
        break;
    }
    case T_KEYTYPES:
    case T_EKUS: {
        unsigned set = 0;
        int good;
        str = config_unquote(value);
        good = str != NULL &&
               (row->type == T_KEYTYPES ? config_parse_set(str, key_type_names, KEY__MAX, &set)
                                        : config_parse_set(str, eku_names, EKU__MAX, &set));
        if (!good || (row->type == T_KEYTYPES && set == 0)) {
            config_fail(p, "%s: unknown or empty list %s", key, value);
            goto out;
        }
        *(unsigned *)field = set;
        ok = 1;
        break;
    }
    case T_CBPOLICY:
        str = config_unquote(value);
        if (str && strcmp(str, "optional") == 0) {
            *(enum cb_policy *)field = CB_OPTIONAL;
        } else if (str && strcmp(str, "required") == 0) {
            *(enum cb_policy *)field = CB_REQUIRED;
        } else {
            config_fail(p, "%s: expected \"optional\" or \"required\", got %s", key, value);
            goto out;
        }
        ok = 1;
        break;
    }
out:
    free(str);
    return ok;
}

static int config_apply_defaults(struct cfg_parse *p, const struct cfg_row *rows, size_t n,
                                 void *base)
{
    for (size_t i = 0; i < n; i++) {
        char *quoted;
        int ok;
        if (rows[i].def == NULL)
            continue;
        if (rows[i].type == T_BOOL || rows[i].type == T_INT)
            quoted = xstrdup(rows[i].def);
        else
            quoted = xasprintf("\"%s\"", rows[i].def);
        ok = config_set(p, &rows[i], base, quoted);
        free(quoted);
        if (!ok)
            return 0;
    }
    return 1;
}

static int label_name_valid(const char *name)
{
    static const char *const reserved[] = {"cacerts",  "simpleenroll", "simplereenroll",
                                           "csrattrs", "serverkeygen", "fullcmc"};
    size_t n = strlen(name);
    if (n == 0 || n > 40 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-") != n)
        return 0;
    for (size_t i = 0; i < NROWS(reserved); i++)
        if (strcmp(name, reserved[i]) == 0)
            return 0;
    return 1;
}

static struct label_cfg *config_label_get(struct cfg_parse *p, const char *name)
{
    struct kp_config *cfg = p->cfg;
    for (size_t i = 0; i < cfg->nlabels; i++)
        if (strcmp(cfg->labels[i].name, name) == 0)
            return &cfg->labels[i];
    if (!label_name_valid(name))
        return config_fail(p, "label name \"%s\"%s: use 1-40 of [A-Za-z0-9._-], not an operation",
                           name, "");
    if (cfg->nlabels >= CONFIG_MAX_LABELS)
        return config_fail(p, "too many labels%s%s", "", "");
    cfg->labels = xrealloc(cfg->labels, (cfg->nlabels + 1) * sizeof(*cfg->labels));
    struct label_cfg *l = &cfg->labels[cfg->nlabels++];
    memset(l, 0, sizeof(*l));
    l->name = xstrdup(name);
    if (!config_apply_defaults(p, label_rows, NROWS(label_rows), l))
        return NULL;
    return l;
}

static int config_seen(struct cfg_parse *p, const char *section, const char *key)
{
    char *k = xasprintf("%s\n%s", section, key);
    for (size_t i = 0; i < p->nseen; i++) {
        if (strcmp(p->seen[i], k) == 0) {
            free(k);
            return 1;
        }
    }
    p->seen = xrealloc(p->seen, (p->nseen + 1) * sizeof(*p->seen));
    p->seen[p->nseen++] = k;
    return 0;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_parse *p = user;
    char sect[256];
    const char *key = name;
    const struct cfg_row *rows = config_rows;
    size_t nrows = NROWS(config_rows);
    void *base = p->cfg;

    /* TOML dotted keys at top level: est.base_path = ... */
    if (section[0] == '\0' && strchr(name, '.') != NULL) {
        const char *dot = strrchr(name, '.');
        snprintf(sect, sizeof(sect), "%.*s", (int)(dot - name), name);
        key = dot + 1;
    } else {
        snprintf(sect, sizeof(sect), "%s", section);
    }
    if (config_seen(p, sect, key)) {
        config_fail(p, "%s.%s is set twice", sect, key);
        return 0;
    }
    if (strncmp(sect, "label.", 6) == 0) {
        base = config_label_get(p, sect + 6);
        if (base == NULL)
            return 0;
        rows = label_rows;
        nrows = NROWS(label_rows);
        snprintf(sect, sizeof(sect), "label");
    }
    for (size_t i = 0; i < nrows; i++)
        if (strcmp(rows[i].section, sect) == 0 && strcmp(rows[i].key, key) == 0)
            return config_set(p, &rows[i], base, value);
    config_fail(p, "unknown key \"%s\" in [%s]", key, section[0] ? section : sect);
    return 0;
}

/* Relative paths are relative to the config file's directory. */
static void config_resolve(char **field, const char *dir)
{
    char *abs;
    if (*field == NULL || (*field)[0] == '\0' || (*field)[0] == '/')
        return;
    abs = fs_path_join(dir, *field);
    free(*field);
    *field = abs;
}

/* Rules that span keys (single values are checked where they are read). */
static const char *config_check(struct kp_config *cfg)
{
    if (cfg->tls_cert == NULL || cfg->tls_key == NULL)
        return "[tls] cert and key are required";
    if (strcmp(cfg->tls_min_version, cfg->tls_max_version) > 0)
        return "tls.min_version is above tls.max_version";
    if (cfg->nlabels == 0)
        return "no [label.NAME] section: at least one CA is needed";
    /* admin certificates chain to their own anchors, never to tls.client_ca
     * (which any enrolled device also chains to): docs/authorization.md */
    if (cfg->admin_client_subjects[0] != '\0' && cfg->admin_client_ca[0] == '\0')
        return "admin.client_subjects needs admin.client_ca, the trust anchors of admin client "
               "certificates (a CA of their own, not tls.client_ca)";
    for (size_t i = 0; i < cfg->nlabels; i++) {
        if (cfg->labels[i].ca_cert == NULL || cfg->labels[i].ca_key == NULL)
            return "every [label.NAME] needs ca_cert and ca_key";
        if (cfg->labels[i].serverkeygen_archive &&
            cfg->labels[i].serverkeygen_archive_key_file[0] == '\0')
            return "serverkeygen_archive = true needs serverkeygen_archive_key_file";
    }
    return NULL;
}

/* What libinih would silently cut: lines over CONFIG_MAX_LINE and section
 * names over its 50-byte section buffer. Returns the reason, *line its line. */
static const char *config_prescan(const char *text, int *line)
{
    int n = 1;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        const char *q = p + strspn(p, " \t");
        *line = n;
        if (len > CONFIG_MAX_LINE)
            return "line longer than 1000 characters";
        if (*q == '[' && strcspn(q, "]\n") > CONFIG_MAX_SECTION)
            return "section name too long (label names: at most 40 characters)";
        p += len;
        if (*p == '\n')
            p++;
        n++;
    }
    return NULL;
}

enum kp_err config_load(const char *path, struct kp_config **out, char **errmsg)
{
    enum kp_err rc = KP_ERR_CONFIG;
    struct kp_config *cfg = xcalloc(1, sizeof(*cfg));
    struct cfg_parse p = {.cfg = cfg};
    char *text = NULL, *slash;
    const char *why;
    int line = 0;

    cfg->path = xstrdup(path);
    cfg->dir = xstrdup(path);
    slash = strrchr(cfg->dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(cfg->dir, strlen(cfg->dir) + 1, ".");
    {
        /* make every resolved path absolute: the server may chdir, the CLI may not */
        char *abs = realpath(cfg->dir, NULL);
        if (abs != NULL) {
            free(cfg->dir);
            cfg->dir = xstrdup(abs);
            free(abs);
        }
    }

    if (fs_read_file(path, CONFIG_MAX_FILE, &text, NULL) != KP_OK) {
        *errmsg = xasprintf("%s: cannot read (missing, unreadable or over 1 MB)", path);
        goto out;
    }
    why = config_prescan(text, &line);
    if (why != NULL) {
        *errmsg = xasprintf("%s:%d: %s", path, line, why);
        goto out;
    }
    if (!config_apply_defaults(&p, config_rows, NROWS(config_rows), cfg))
        goto out;

    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_stop_on_first_error = true;
    ini_use_stack = false;
    ini_allow_realloc = true; /* the heap buffer starts at ini_initial_alloc */
    ini_initial_alloc = 256;
    ini_max_line = CONFIG_MAX_LINE + 3;
    line = ini_parse_string(text, config_handler, &p);
    if (line != 0) {
        *errmsg = xasprintf("%s:%d: %s", path, line, p.why ? p.why : "syntax error");
        goto out;
    }
    why = config_check(cfg);
    if (why != NULL) {
        *errmsg = xasprintf("%s: %s", path, why);
        goto out;
    }

    config_resolve(&cfg->tls_cert, cfg->dir);
    config_resolve(&cfg->tls_key, cfg->dir);
    config_resolve(&cfg->tls_client_ca, cfg->dir);
    config_resolve(&cfg->admin_client_ca, cfg->dir);
    config_resolve(&cfg->otp_key_file, cfg->dir);
    config_resolve(&cfg->coap_psk_file, cfg->dir);
    for (size_t i = 0; i < cfg->nlabels; i++) {
        config_resolve(&cfg->labels[i].ca_cert, cfg->dir);
        config_resolve(&cfg->labels[i].ca_chain, cfg->dir);
        config_resolve(&cfg->labels[i].ca_key, cfg->dir);
        config_resolve(&cfg->labels[i].serverkeygen_kek_file, cfg->dir);
        config_resolve(&cfg->labels[i].serverkeygen_archive_key_file, cfg->dir);
    }
    if (strncmp(cfg->store_url, "sqlite:", 7) == 0 && cfg->store_url[7] != '/') {
        char *abs = fs_path_join(cfg->dir, cfg->store_url + 7);
        free(cfg->store_url);
        cfg->store_url = xasprintf("sqlite:%s", abs);
        free(abs);
    }
    *out = cfg;
    cfg = NULL; /* steal */
    rc = KP_OK;
out:
    for (size_t i = 0; i < p.nseen; i++)
        free(p.seen[i]);
    free(p.seen);
    free(p.why);
    free(text);
    config_free(cfg);
    return rc;
}

static void config_free_strings(const struct cfg_row *rows, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].type == T_STRING || rows[i].type == T_PATH)
            free(*(char **)((char *)base + rows[i].offset));
}

void config_free(struct kp_config *cfg)
{
    if (cfg == NULL)
        return;
    config_free_strings(config_rows, NROWS(config_rows), cfg);
    for (size_t i = 0; i < cfg->nlabels; i++) {
        config_free_strings(label_rows, NROWS(label_rows), &cfg->labels[i]);
        free(cfg->labels[i].name);
    }
    free(cfg->labels);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

const struct label_cfg *config_label(const struct kp_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlabels; i++)
        if (strcmp(cfg->labels[i].name, name) == 0)
            return &cfg->labels[i];
    return NULL;
}
