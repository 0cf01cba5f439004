/* config_load on files written into a temporary directory: defaults, TOML
 * dotted keys, path resolution, and "FILE:LINE: reason" for every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/xalloc.h"

#define MINIMAL_TLS "[tls]\ncert = \"tls.crt\"\nkey = \"tls.key\"\n"
#define MINIMAL_LABEL "[label.x]\nca_cert = \"ca.crt\"\nca_key = \"ca.key\"\n"
#define MINIMAL MINIMAL_TLS "\n" MINIMAL_LABEL

/* Group state. What a test allocates is parked here and freed by fx_reset
 * after every test, so a failing assertion leaks nothing. */
struct fixture {
    char dir[64];
    char path[128];
    struct kp_config *cfg; /* the last config load_ok returned */
    void *keep[16];
    size_t nkeep;
};

static void *keep(struct fixture *fx, void *p)
{
    assert_true(fx->nkeep < sizeof(fx->keep) / sizeof(fx->keep[0]));
    fx->keep[fx->nkeep++] = p;
    return p;
}

static int fx_reset(void **state)
{
    struct fixture *fx = *state;
    config_free(fx->cfg);
    fx->cfg = NULL;
    while (fx->nkeep > 0)
        free(fx->keep[--fx->nkeep]);
    return 0;
}

static int fx_setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kp-test-config-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/kipuka.toml", fx->dir);
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int fx_teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Failure messages are copied here so that nothing leaks when a test fails. */
static char failbuf[2048];

static struct kp_config *load_ok(struct fixture *fx, const char *text)
{
    struct kp_config *cfg = NULL;
    char *err = NULL;
    enum kp_err rc;

    write_text(fx->path, text);
    rc = config_load(fx->path, &cfg, &err);
    if (rc != KP_OK) {
        snprintf(failbuf, sizeof(failbuf), "config_load: rc %d: %s", (int)rc,
                 err ? err : "(no message)");
        free(err);
        config_free(cfg);
        fail_msg("%s", failbuf);
    }
    assert_null(err);
    assert_non_null(cfg);
    config_free(fx->cfg);
    fx->cfg = cfg;
    return cfg;
}

/* Load text, expect refusal; the message must be "PATH:LINE: ..." (line > 0)
 * or "PATH: ..." when line is 0, and contain reason. */
static void load_err(struct fixture *fx, const char *text, int line, const char *reason)
{
    struct kp_config *cfg = NULL;
    char *err = NULL;
    char prefix[256];
    enum kp_err rc;

    write_text(fx->path, text);
    rc = config_load(fx->path, &cfg, &err);
    if (rc != KP_ERR_CONFIG || cfg != NULL || err == NULL) {
        snprintf(failbuf, sizeof(failbuf),
                 "config_load: rc %d, cfg %s, message %s (want a "
                 "refusal saying \"%s\")",
                 (int)rc, cfg ? "set" : "NULL", err ? err : "NULL", reason);
        config_free(cfg);
        free(err);
        fail_msg("%s", failbuf);
    }
    if (line > 0)
        snprintf(prefix, sizeof(prefix), "%s:%d: ", fx->path, line);
    else
        snprintf(prefix, sizeof(prefix), "%s: ", fx->path);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, reason) == NULL) {
        snprintf(failbuf, sizeof(failbuf),
                 "message \"%s\" does not start with \"%s\" and "
                 "say \"%s\"",
                 err, prefix, reason);
        free(err);
        fail_msg("%s", failbuf);
    }
    free(err);
}

static char *in_dir(struct fixture *fx, const char *name)
{
    return keep(fx, xasprintf("%s/%s", fx->dir, name));
}

static void assert_path(const struct fixture *fx, const char *got, const char *name)
{
    char want[256];
    snprintf(want, sizeof(want), "%s/%s", fx->dir, name);
    assert_non_null(got);
    assert_string_equal(got, want);
}

/* ---- what loads ---- */

static void test_minimal_config_loads_with_defaults(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, MINIMAL);
    const struct label_cfg *l;
    char *url;

    assert_string_equal(cfg->path, fx->path);
    assert_string_equal(cfg->dir, fx->dir);
    assert_string_equal(cfg->listen, "0.0.0.0");
    assert_int_equal(cfg->port, 9443);
    assert_int_equal(cfg->threads, 0);
    assert_int_equal(cfg->max_body_bytes, 65536);
    assert_int_equal(cfg->max_header_bytes, 16384);
    assert_int_equal(cfg->max_url_bytes, 2048);
    assert_int_equal(cfg->max_header_count, 64);
    assert_int_equal(cfg->read_timeout, 10);
    assert_int_equal(cfg->idle_timeout, 60);
    assert_int_equal(cfg->max_connections, 10000);
    assert_string_equal(cfg->tls_min_version, "1.2");
    assert_string_equal(cfg->tls_max_version, "1.3");
    assert_string_equal(cfg->tls_client_ca, "");
    assert_false(cfg->tls_allow_cbc);
    assert_string_equal(cfg->est_base_path, "/.well-known/est");
    assert_int_equal(cfg->est_retry_after, 30);
    assert_false(cfg->est_fullcmc);
    assert_false(cfg->est_serverkeygen);
    assert_int_equal(cfg->otp_default_ttl, 86400);
    assert_int_equal(cfg->otp_default_uses, 1);
    assert_path(fx, cfg->otp_key_file, "otp.key");
    url = keep(fx, xasprintf("sqlite:%s/kipuka.db", fx->dir));
    assert_string_equal(cfg->store_url, url);
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->log_format, "text");

    assert_int_equal(cfg->nlabels, 1);
    l = config_label(cfg, "x");
    assert_non_null(l);
    assert_ptr_equal(l, &cfg->labels[0]);
    assert_string_equal(l->name, "x");
    assert_true(l->allow_otp);
    assert_string_equal(l->otp_subject, "entity"); /* the safe default */
    assert_true(l->allow_mtls);
    assert_int_equal(l->key_types, (1u << KEY_EC_P256) | (1u << KEY_EC_P384) |
                                       (1u << KEY_RSA_2048) | (1u << KEY_RSA_3072) |
                                       (1u << KEY_RSA_4096));
    assert_int_equal(l->max_validity_days, 398);
    assert_int_equal(l->ekus, 1u << EKU_CLIENT_AUTH);
    assert_int_equal(l->channel_binding, CB_OPTIONAL);
    assert_true(l->mtls_subject_match);
    assert_false(l->reenroll_allow_change);
    assert_int_equal(l->max_sans, 20);
    assert_string_equal(l->ca_chain, "");
    assert_string_equal(l->csrattrs_extra, "");
    assert_string_equal(l->approval, "auto");
    assert_int_equal(l->approval_ttl, 7 * 86400);
    assert_string_equal(l->serverkeygen_kek_file, "");
    assert_null(config_label(cfg, "y"));
    assert_null(config_label(cfg, ""));
}

static void test_every_key_is_read(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, "# a comment\n"
                                        "[server]\n"
                                        "listen = \"127.0.0.1\"\n"
                                        "port = 8443\n"
                                        "threads = 4\n"
                                        "max_body_bytes = 2048\n"
                                        "max_url_bytes = 512\n"
                                        "max_header_count = 20\n"
                                        "read_timeout = \"90s\"\n"
                                        "idle_timeout = \"30m\"\n"
                                        "[tls]\n"
                                        "cert = \"/etc/kp/tls.crt\"\n"
                                        "key = \"tls.key\"\n"
                                        "client_ca = \"clients.pem\"\n"
                                        "min_version = \"1.3\"\n"
                                        "allow_cbc = true\n"
                                        "[est]\n"
                                        "base_path = \"/est\"\n"
                                        "[otp]\n"
                                        "default_ttl = \"7d\"\n"
                                        "default_uses = 3\n"
                                        "[log]\n"
                                        "level = \"debug\"\n"
                                        "format = \"json\"\n"
                                        "[label.iot-devices_v2.0]\n"
                                        "ca_cert = \"ca.crt\"\n"
                                        "ca_key = \"ca.key\"\n"
                                        "key_types = \"ec:P-256,rsa:4096\"\n"
                                        "eku = \"clientAuth, serverAuth\"\n"
                                        "allow_otp = false\n"
                                        "otp_subject = \"any\"\n"
                                        "channel_binding = \"required\"\n"
                                        "max_validity_days = 90\n"
                                        "max_sans = 0\n"
                                        "csrattrs_extra = \"1.2.3.4\"\n"
                                        "[label.second]\n"
                                        "ca_cert = \"b/ca.crt\"\n"
                                        "ca_key = \"b/ca.key\"\n");
    const struct label_cfg *l;

    assert_string_equal(cfg->listen, "127.0.0.1");
    assert_int_equal(cfg->port, 8443);
    assert_int_equal(cfg->threads, 4);
    assert_int_equal(cfg->max_body_bytes, 2048);
    assert_int_equal(cfg->max_url_bytes, 512);
    assert_int_equal(cfg->max_header_count, 20);
    assert_int_equal(cfg->read_timeout, 90);
    assert_int_equal(cfg->idle_timeout, 1800);
    assert_string_equal(cfg->tls_cert, "/etc/kp/tls.crt");
    assert_path(fx, cfg->tls_key, "tls.key");
    assert_path(fx, cfg->tls_client_ca, "clients.pem");
    assert_string_equal(cfg->tls_min_version, "1.3");
    assert_true(cfg->tls_allow_cbc);
    assert_string_equal(cfg->est_base_path, "/est");
    assert_int_equal(cfg->otp_default_ttl, 7 * 86400);
    assert_int_equal(cfg->otp_default_uses, 3);
    assert_string_equal(cfg->log_level, "debug");
    assert_string_equal(cfg->log_format, "json");
    assert_int_equal(cfg->nlabels, 2);

    l = config_label(cfg, "iot-devices_v2.0");
    assert_non_null(l);
    assert_int_equal(l->key_types, (1u << KEY_EC_P256) | (1u << KEY_RSA_4096));
    assert_int_equal(l->ekus, (1u << EKU_CLIENT_AUTH) | (1u << EKU_SERVER_AUTH));
    assert_false(l->allow_otp);
    assert_string_equal(l->otp_subject, "any");
    assert_int_equal(l->channel_binding, CB_REQUIRED);
    assert_int_equal(l->max_validity_days, 90);
    assert_int_equal(l->max_sans, 0);
    assert_string_equal(l->csrattrs_extra, "1.2.3.4");

    l = config_label(cfg, "second");
    assert_non_null(l);
    assert_path(fx, l->ca_cert, "b/ca.crt");
    assert_path(fx, l->ca_key, "b/ca.key");
    assert_true(l->allow_otp); /* defaults are per label */
    assert_string_equal(l->otp_subject, "entity");
}

static void test_quoted_strings_take_toml_escapes(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, MINIMAL "csrattrs_extra = \"a\\\"b\\\\c\\td\"\n");
    assert_string_equal(cfg->labels[0].csrattrs_extra, "a\"b\\c\td");
}

static void test_top_level_dotted_keys_set_section_values(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, "est.retry_after = 60\n"
                                        "server.port = 10443\n"
                                        "label.x.max_validity_days = 30\n" MINIMAL);
    assert_int_equal(cfg->est_retry_after, 60);
    assert_int_equal(cfg->port, 10443);
    assert_int_equal(cfg->nlabels, 1);
    assert_int_equal(cfg->labels[0].max_validity_days, 30);
    assert_path(fx, cfg->labels[0].ca_cert, "ca.crt");
}

static void test_a_label_can_be_defined_by_dotted_keys_alone(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, "label.d.ca_cert = \"d.crt\"\n"
                                        "label.d.ca_key = \"d.key\"\n" MINIMAL_TLS);
    assert_int_equal(cfg->nlabels, 1);
    assert_string_equal(cfg->labels[0].name, "d");
    assert_path(fx, cfg->labels[0].ca_key, "d.key");
}

static void test_relative_paths_are_resolved_against_the_config_dir(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg =
        load_ok(fx, "[tls]\n"
                    "cert = \"certs/tls.crt\"\n"
                    "key = \"/abs/tls.key\"\n"
                    "[otp]\n"
                    "key_file = \"secret/otp.key\"\n" MINIMAL_LABEL "ca_chain = \"chain.pem\"\n");
    assert_path(fx, cfg->tls_cert, "certs/tls.crt");
    assert_string_equal(cfg->tls_key, "/abs/tls.key");
    assert_path(fx, cfg->otp_key_file, "secret/otp.key");
    assert_path(fx, cfg->labels[0].ca_cert, "ca.crt");
    assert_path(fx, cfg->labels[0].ca_chain, "chain.pem");
}

static void test_sqlite_store_url_is_made_absolute(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, MINIMAL "[store]\nurl = \"sqlite:db/est.db\"\n");
    char *want = keep(fx, xasprintf("sqlite:%s/db/est.db", fx->dir));
    assert_string_equal(cfg->store_url, want);

    cfg = load_ok(fx, MINIMAL "[store]\nurl = \"sqlite:/var/lib/kipuka/k.db\"\n");
    assert_string_equal(cfg->store_url, "sqlite:/var/lib/kipuka/k.db");

    cfg = load_ok(fx, "store.url = \"sqlite:k.db\"\n" MINIMAL);
    want = keep(fx, xasprintf("sqlite:%s/k.db", fx->dir));
    assert_string_equal(cfg->store_url, want);
}

/* config.h: "Relative paths in the result are made absolute", also when the
 * config file itself was named by a relative path. */
static void test_paths_are_absolute_when_the_config_path_is_relative(void **state)
{
    struct fixture *fx = *state;
    char *err = NULL, *sub = in_dir(fx, "rel"), *file = in_dir(fx, "rel/kipuka.toml");
    char cwd[PATH_MAX];
    enum kp_err rc;

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(mkdir(sub, 0700), 0);
    write_text(file, MINIMAL);
    assert_int_equal(chdir(fx->dir), 0);
    rc = config_load("rel/kipuka.toml", &fx->cfg, &err);
    assert_int_equal(chdir(cwd), 0);
    if (rc != KP_OK) {
        snprintf(failbuf, sizeof(failbuf), "config_load: %s", err);
        free(err);
        fail_msg("%s", failbuf);
    }
    if (fx->cfg->tls_cert[0] != '/' || fx->cfg->labels[0].ca_cert[0] != '/' ||
        strncmp(fx->cfg->store_url, "sqlite:/", 8) != 0)
        fail_msg("relative results: tls.cert=%s ca_cert=%s store.url=%s", fx->cfg->tls_cert,
                 fx->cfg->labels[0].ca_cert, fx->cfg->store_url);
    assert_path(fx, fx->cfg->tls_cert, "rel/tls.crt");
}

/* CONFIG_MAX_LINE is 1000: a 1000-character line is still a line. */
static void test_a_line_of_exactly_1000_characters_is_accepted(void **state)
{
    struct fixture *fx = *state;
    char *value = keep(fx, xmalloc(1001));
    char *text;
    struct kp_config *cfg;

    /* csrattrs_extra = "xxx...x" padded to exactly 1000 characters */
    memset(value, 'x', 1000);
    memcpy(value, "csrattrs_extra = \"", 18);
    value[999] = '"';
    value[1000] = '\0';
    text = keep(fx, xasprintf(MINIMAL "%s\n", value));
    cfg = load_ok(fx, text);
    assert_int_equal(strlen(cfg->labels[0].csrattrs_extra), 1000 - 19);
}

/* A long comment is one line: it loads, and nothing in it is read as a key. */
static void test_text_late_in_a_long_comment_is_not_read_as_a_key(void **state)
{
    struct fixture *fx = *state;
    size_t injected = 0, refused = 0;
    char *why = NULL;

    for (size_t at = 150; at <= 300; at++) {
        struct kp_config *cfg = NULL;
        char *err = NULL, *comment = xmalloc(at + 9), *text;

        memset(comment, 'a', at);
        comment[0] = '#';
        memcpy(comment + at, "port = 1", 9);
        text = xasprintf(MINIMAL "[server]\n%s\n", comment);
        write_text(fx->path, text);
        if (config_load(fx->path, &cfg, &err) != KP_OK) {
            if (refused++ == 0)
                why = xasprintf("%zu-character comment refused: %s", at + 8, err);
        } else if (cfg->port != 9443 && injected == 0) {
            injected = at;
        }
        config_free(cfg);
        free(err);
        free(text);
        free(comment);
    }
    if (injected > 0)
        snprintf(failbuf, sizeof(failbuf),
                 "\"port = 1\" at column %zu of a comment set the port (and %zu of 151 "
                 "comments were refused, first: %s)",
                 injected, refused, why ? why : "-");
    else if (refused > 0)
        snprintf(failbuf, sizeof(failbuf), "%s", why);
    free(why);
    if (injected > 0 || refused > 0)
        fail_msg("%s", failbuf);
}

/* ---- what is refused, and where ---- */

static void test_unknown_key_is_rejected_with_its_line(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL_TLS "colour = \"blue\"\n" MINIMAL_LABEL, 4, "unknown key \"colour\"");
    load_err(fx, MINIMAL "\nallow_everything = true\n", 9, "allow_everything");
    load_err(fx, "port = 1\n" MINIMAL, 1, "unknown key \"port\"");
}

static void test_unknown_section_is_rejected_with_its_line(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL "[tsl]\ncert = \"x\"\n", 9, "[tsl]");
    load_err(fx, "bogus.key = 1\n" MINIMAL, 1, "[bogus]");
    load_err(fx, MINIMAL "[label]\nca_cert = \"x\"\n", 9, "[label]");
}

static void test_admin_client_subjects_need_admin_client_ca(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg;

    load_err(fx, MINIMAL "[admin]\nclient_subjects = \"CN=ops\"\n", 0,
             "admin.client_subjects needs admin.client_ca");
    cfg =
        load_ok(fx, MINIMAL "[admin]\nclient_subjects = \"CN=ops\"\nclient_ca = \"admins.pem\"\n");
    assert_non_null(strstr(cfg->admin_client_ca, "/admins.pem"));
    assert_false(cfg->admin_client_ca_may_issue);
    assert_false(cfg->labels[0].mtls_accept_external);
}

static void test_unquoted_string_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL "[server]\nlisten = 0.0.0.0\n", 9, "quoted string");
    load_err(fx, "[tls]\ncert = tls.crt\n", 2, "quoted string");
    load_err(fx, MINIMAL "[log]\nlevel = \"info\n", 9, "quoted string");
    load_err(fx, MINIMAL "[log]\nlevel = \"in\"fo\"\n", 9, "quoted string");
    load_err(fx, MINIMAL "[log]\nlevel = \"in\\qfo\"\n", 9, "quoted string");
}

static void test_bad_bool_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL "allow_otp = yes\n", 8, "expected true or false");
    load_err(fx, MINIMAL "allow_mtls = \"true\"\n", 8, "expected true or false");
    load_err(fx, MINIMAL "allow_mtls = 1\n", 8, "expected true or false");
    load_err(fx, "est.fullcmc = TRUE\n" MINIMAL, 1, "expected true or false");
}

static void test_int_out_of_range_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, "[server]\nport = 65536\n" MINIMAL, 2, "port: expected a value in 0..65535");
    load_err(fx, "[server]\nport = -1\n" MINIMAL, 2, "0..65535");
    load_err(fx, "[server]\nport = 9443x\n" MINIMAL, 2, "0..65535");
    load_err(fx, "[server]\nport = \"9443\"\n" MINIMAL, 2, "0..65535");
    load_err(fx, "[server]\nport = 99999999999999999999999\n" MINIMAL, 2, "0..65535");
    load_err(fx, MINIMAL "max_validity_days = 0\n", 8, "1..3650");
    load_err(fx, MINIMAL "max_validity_days = 3651\n", 8, "1..3650");
    load_err(fx, "est.retry_after = 0\n" MINIMAL, 1, "retry_after");
    load_err(fx, "[otp]\ndefault_ttl = \"59s\"\n" MINIMAL, 2, "default_ttl");
    load_err(fx, "[server]\nread_timeout = \"2h\"\n" MINIMAL, 2, "read_timeout");
    load_err(fx, "[server]\nread_timeout = \"soon\"\n" MINIMAL, 2, "read_timeout");
    load_err(fx, "[server]\nmax_url_bytes = 255\n" MINIMAL, 2, "256..65536");
    load_err(fx, "[server]\nmax_header_count = 1001\n" MINIMAL, 2, "8..1000");
}

static void test_bounds_themselves_are_accepted(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, "[server]\nport = 65535\n[otp]\ndefault_ttl = 60\n" MINIMAL
                                        "max_validity_days = 3650\n");
    assert_int_equal(cfg->port, 65535);
    assert_int_equal(cfg->otp_default_ttl, 60);
    assert_int_equal(cfg->labels[0].max_validity_days, 3650);
}

static void test_duplicate_key_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, "[tls]\ncert = \"a\"\ncert = \"b\"\n", 3, "tls.cert is set twice");
    load_err(fx, "est.retry_after = 5\n[est]\nretry_after = 6\n" MINIMAL, 3, "set twice");
    load_err(fx, MINIMAL "[server]\nport = 1\n[label.x]\nca_key = \"k2\"\n", 11,
             "label.x.ca_key is set twice");
}

static void test_bad_label_name_is_rejected(void **state)
{
    struct fixture *fx = *state;

    load_err(fx, MINIMAL_TLS "[label.a/b]\nca_cert = \"c\"\n", 5, "label name \"a/b\"");
    load_err(fx, MINIMAL_TLS "[label.a b]\nca_cert = \"c\"\n", 5, "label name \"a b\"");
    load_err(fx, MINIMAL_TLS "[label.]\nca_cert = \"c\"\n", 5, "label name \"\"");
    load_err(fx, MINIMAL_TLS "[label.cacerts]\nca_cert = \"c\"\n", 5, "label name \"cacerts\"");
    load_err(fx, MINIMAL_TLS "[label.simpleenroll]\nca_cert = \"c\"\n", 5, "label name");
    load_err(fx, MINIMAL_TLS "[label.caf\xc3\xa9]\nca_cert = \"c\"\n", 5, "label name");
    load_err(fx, "label.a/b.ca_cert = \"c\"\n" MINIMAL, 1, "label name \"a/b\"");
}

static char *label_of_length(size_t n)
{
    char *name = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        name[i] = (char)('a' + i % 26);
    name[n] = '\0';
    return name;
}

/* kipuka.toml.example: label names are 1-40 of [A-Za-z0-9._-]; all 40 are kept. */
static void test_label_name_of_40_characters_is_kept_whole(void **state)
{
    struct fixture *fx = *state;
    char *name = keep(fx, label_of_length(40));
    char *text =
        keep(fx, xasprintf(MINIMAL_TLS "[label.%s]\nca_cert = \"c\"\nca_key = \"k\"\n", name));
    struct kp_config *cfg = load_ok(fx, text);

    assert_int_equal(cfg->nlabels, 1);
    assert_string_equal(cfg->labels[0].name, name);
    assert_non_null(config_label(cfg, name));

    /* the same label through top-level dotted keys */
    text = keep(fx, xasprintf("label.%s.ca_cert = \"c\"\nlabel.%s.ca_key = \"k\"\n" MINIMAL_TLS,
                              name, name));
    cfg = load_ok(fx, text);
    assert_int_equal(cfg->nlabels, 1);
    assert_string_equal(cfg->labels[0].name, name);
}

/* A longer name is refused, never cut to a shorter label. */
static void test_label_name_of_41_characters_is_rejected(void **state)
{
    struct fixture *fx = *state;
    char *name = keep(fx, label_of_length(41));
    char *text =
        keep(fx, xasprintf(MINIMAL_TLS "[label.%s]\nca_cert = \"c\"\nca_key = \"k\"\n", name));

    load_err(fx, text, 4, "40");
    text = keep(fx, xasprintf("label.%s.ca_cert = \"c\"\nlabel.%s.ca_key = \"k\"\n" MINIMAL_TLS,
                              name, name));
    load_err(fx, text, 1, "label name");
    /* much longer: far past libinih's 50-byte section buffer */
    name = keep(fx, label_of_length(80));
    text = keep(fx, xasprintf(MINIMAL_TLS "[label.%s]\nca_cert = \"c\"\nca_key = \"k\"\n", name));
    load_err(fx, text, 4, "40");
}

static void test_unknown_key_type_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL "key_types = \"ec:P-256, ed25519\"\n", 8, "key_types");
    load_err(fx, MINIMAL "key_types = \"ec:P-521\"\n", 8, "key_types");
    load_err(fx, MINIMAL "key_types = \"rsa:1024\"\n", 8, "key_types");
    load_err(fx, MINIMAL "key_types = \"EC:P-256\"\n", 8, "key_types");
    load_err(fx, MINIMAL "key_types = \"\"\n", 8, "key_types");
    load_err(fx, MINIMAL "key_types = ec:P-256\n", 8, "key_types");
    load_err(fx, MINIMAL "eku = \"clientAuth, anyExtendedKeyUsage\"\n", 8, "eku");
    load_err(fx, MINIMAL "channel_binding = \"maybe\"\n", 8, "channel_binding");
}

static void test_line_over_1000_characters_is_rejected_with_its_line(void **state)
{
    struct fixture *fx = *state;
    char *comment = keep(fx, xmalloc(1002));
    char *text;

    memset(comment, 'c', 1001);
    comment[0] = '#';
    comment[1001] = '\0';
    /* line 9: after the 7 lines of MINIMAL and one short line */
    text = keep(fx, xasprintf(MINIMAL "# short\n%s\nport = 1\n", comment));
    load_err(fx, text, 9, "line longer than 1000 characters");

    /* a long value on line 2, not a comment */
    memset(comment, 'v', 1001);
    memcpy(comment, "cert = \"", 8);
    comment[1000] = '"';
    text = keep(fx, xasprintf("[tls]\n%s\n", comment));
    load_err(fx, text, 2, "line longer than 1000 characters");
}

static void test_tls_min_version_1_1_is_rejected_with_its_line(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL_TLS "min_version = \"1.1\"\n" MINIMAL_LABEL, 4, "min_version");
    load_err(fx, MINIMAL_TLS "min_version = \"1.0\"\n" MINIMAL_LABEL, 4, "min_version");
    load_err(fx, MINIMAL_TLS "max_version = \"1.4\"\n" MINIMAL_LABEL, 4, "max_version");
    load_err(fx, "tls.min_version = \"\"\n" MINIMAL, 1, "min_version");
    /* a rule across two keys has no single line */
    load_err(fx, MINIMAL_TLS "min_version = \"1.3\"\nmax_version = \"1.2\"\n" MINIMAL_LABEL, 0,
             "above tls.max_version");
}

static void test_bad_string_values_are_rejected_with_their_line(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL "[est]\nbase_path = \"/est/\"\n", 9, "base_path");
    load_err(fx, MINIMAL "[est]\nbase_path = \"est\"\n", 9, "base_path");
    load_err(fx, MINIMAL "[est]\nbase_path = \"/\"\n", 9, "base_path");
    load_err(fx, MINIMAL "[log]\nlevel = \"loud\"\n", 9, "level");
    load_err(fx, MINIMAL "[log]\nformat = \"xml\"\n", 9, "format");
    load_err(fx, MINIMAL "[store]\nurl = \"mysql://x\"\n", 9, "url");
    load_err(fx, MINIMAL "[store]\nurl = \"sqlite:\"\n", 9, "url");
    load_err(fx, "[tls]\ncert = \"\"\n", 2, "cert");
    load_err(fx, MINIMAL_TLS "[label.x]\nca_cert = \"\"\n", 5, "ca_cert");
    load_err(fx, MINIMAL "[label.x]\napproval = \"later\"\n", 9, "approval");
    load_err(fx, MINIMAL "[label.x]\notp_subject = \"cn\"\n", 9, "otp_subject");
    load_err(fx, MINIMAL "[label.x]\notp_subject = \"\"\n", 9, "otp_subject");
    load_err(fx, MINIMAL "[label.x]\napproval_ttl = \"0s\"\n", 9, "approval_ttl");
    load_err(fx, MINIMAL "[label.x]\nserverkeygen_archive = true\n", 0,
             "serverkeygen_archive_key_file");
}

static void test_approval_and_serverkeygen_keys_are_read(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, MINIMAL "[est]\nserverkeygen = true\n"
                                                "[label.x]\napproval = \"manual\"\n"
                                                "approval_ttl = \"12h\"\n"
                                                "serverkeygen_kek_file = \"kek.keys\"\n");

    assert_true(cfg->est_serverkeygen);
    assert_string_equal(cfg->labels[0].approval, "manual");
    assert_int_equal(cfg->labels[0].approval_ttl, 12 * 3600);
    assert_path(fx, cfg->labels[0].serverkeygen_kek_file, "kek.keys");
}

static void test_coap_psk_file_and_allow_psk_are_read(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = load_ok(fx, MINIMAL);

    assert_string_equal(cfg->coap_psk_file, ""); /* none by default */
    assert_false(cfg->labels[0].allow_psk);      /* a label opts in */
    cfg = load_ok(fx, MINIMAL "[coap]\npsk_file = \"coap-psk\"\n[label.x]\nallow_psk = true\n");
    assert_path(fx, cfg->coap_psk_file, "coap-psk");
    assert_true(cfg->labels[0].allow_psk);
    cfg = load_ok(fx, MINIMAL "[coap]\npsk_file = \"/etc/kipuka/psk\"\n");
    assert_string_equal(cfg->coap_psk_file, "/etc/kipuka/psk");
    load_err(fx, MINIMAL "[coap]\npsk_file = coap-psk\n", 9, "coap.psk_file");
    load_err(fx, MINIMAL "[label.x]\nallow_psk = yes\n", 9, "allow_psk");
}

static void test_label_without_ca_key_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL_TLS "[label.x]\nca_cert = \"c\"\n", 0, "ca_cert and ca_key");
    load_err(fx, MINIMAL_TLS "[label.x]\nca_key = \"k\"\n", 0, "ca_cert and ca_key");
}

static void test_missing_tls_cert_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, "[tls]\nkey = \"tls.key\"\n" MINIMAL_LABEL, 0, "[tls] cert and key are required");
    load_err(fx, "[tls]\ncert = \"tls.crt\"\n" MINIMAL_LABEL, 0, "[tls] cert and key");
    load_err(fx, MINIMAL_LABEL, 0, "[tls] cert and key");
}

static void test_config_without_a_label_is_rejected(void **state)
{
    struct fixture *fx = *state;
    load_err(fx, MINIMAL_TLS, 0, "no [label.NAME] section");
    load_err(fx, "", 0, "[tls] cert and key");
}

static void test_missing_file_is_reported(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = NULL;
    char *err = NULL, *path = in_dir(fx, "nope.toml");

    assert_int_equal(config_load(path, &cfg, &err), KP_ERR_CONFIG);
    assert_null(cfg);
    assert_non_null(err);
    keep(fx, err);
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
}

/* ---- helpers exported with the loader ---- */

static void test_durations_parse_with_units(void **state)
{
    (void)state;
    assert_int_equal(config_parse_duration("90s"), 90);
    assert_int_equal(config_parse_duration("30m"), 1800);
    assert_int_equal(config_parse_duration("24h"), 86400);
    assert_int_equal(config_parse_duration("7d"), 604800);
    assert_int_equal(config_parse_duration("10"), 10);
    assert_int_equal(config_parse_duration("0"), 0);
}

static void test_malformed_durations_are_minus_one(void **state)
{
    (void)state;
    assert_int_equal(config_parse_duration("junk"), -1);
    assert_int_equal(config_parse_duration(""), -1);
    assert_int_equal(config_parse_duration("h"), -1);
    assert_int_equal(config_parse_duration("10x"), -1);
    assert_int_equal(config_parse_duration("10hh"), -1);
    assert_int_equal(config_parse_duration("10 h"), -1);
    assert_int_equal(config_parse_duration(" 10"), -1);
    assert_int_equal(config_parse_duration("-5"), -1);
    assert_int_equal(config_parse_duration("+5"), -1);
    assert_int_equal(config_parse_duration("1.5h"), -1);
    assert_int_equal(config_parse_duration("99999999999999999999"), -1);
    assert_int_equal(config_parse_duration("999999999999999999d"), -1);
}

static void test_key_type_names_round_trip(void **state)
{
    (void)state;
    for (int t = 0; t < KEY__MAX; t++)
        assert_int_equal(config_key_type_parse(config_key_type_name((enum key_type)t)), t);
    assert_string_equal(config_key_type_name(KEY_EC_P256), "ec:P-256");
    assert_string_equal(config_key_type_name(KEY_RSA_3072), "rsa:3072");
    assert_int_equal(config_key_type_parse("ec:P-521"), -1);
    assert_int_equal(config_key_type_parse(""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_minimal_config_loads_with_defaults, fx_reset),
        cmocka_unit_test_teardown(test_coap_psk_file_and_allow_psk_are_read, fx_reset),
        cmocka_unit_test_teardown(test_admin_client_subjects_need_admin_client_ca, fx_reset),
        cmocka_unit_test_teardown(test_every_key_is_read, fx_reset),
        cmocka_unit_test_teardown(test_quoted_strings_take_toml_escapes, fx_reset),
        cmocka_unit_test_teardown(test_top_level_dotted_keys_set_section_values, fx_reset),
        cmocka_unit_test_teardown(test_a_label_can_be_defined_by_dotted_keys_alone, fx_reset),
        cmocka_unit_test_teardown(test_relative_paths_are_resolved_against_the_config_dir,
                                  fx_reset),
        cmocka_unit_test_teardown(test_sqlite_store_url_is_made_absolute, fx_reset),
        cmocka_unit_test_teardown(test_paths_are_absolute_when_the_config_path_is_relative,
                                  fx_reset),
        cmocka_unit_test_teardown(test_a_line_of_exactly_1000_characters_is_accepted, fx_reset),
        cmocka_unit_test_teardown(test_text_late_in_a_long_comment_is_not_read_as_a_key, fx_reset),
        cmocka_unit_test_teardown(test_unknown_key_is_rejected_with_its_line, fx_reset),
        cmocka_unit_test_teardown(test_unknown_section_is_rejected_with_its_line, fx_reset),
        cmocka_unit_test_teardown(test_unquoted_string_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_bad_bool_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_int_out_of_range_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_bounds_themselves_are_accepted, fx_reset),
        cmocka_unit_test_teardown(test_duplicate_key_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_bad_label_name_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_label_name_of_40_characters_is_kept_whole, fx_reset),
        cmocka_unit_test_teardown(test_label_name_of_41_characters_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_unknown_key_type_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_line_over_1000_characters_is_rejected_with_its_line,
                                  fx_reset),
        cmocka_unit_test_teardown(test_tls_min_version_1_1_is_rejected_with_its_line, fx_reset),
        cmocka_unit_test_teardown(test_bad_string_values_are_rejected_with_their_line, fx_reset),
        cmocka_unit_test_teardown(test_approval_and_serverkeygen_keys_are_read, fx_reset),
        cmocka_unit_test_teardown(test_label_without_ca_key_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_missing_tls_cert_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_config_without_a_label_is_rejected, fx_reset),
        cmocka_unit_test_teardown(test_missing_file_is_reported, fx_reset),
        cmocka_unit_test_teardown(test_durations_parse_with_units, fx_reset),
        cmocka_unit_test_teardown(test_malformed_durations_are_minus_one, fx_reset),
        cmocka_unit_test_teardown(test_key_type_names_round_trip, fx_reset),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
