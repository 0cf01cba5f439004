/* The EST core as HTTP drives it: http_route_est on paths, and requests
 * built here as HTTP gives them (header strings, raw body) through
 * http_est_input_fill, est_handle and http_est_reply; and est_handle's
 * answers themselves (outcomes and DER parts). Against against a real deployment made by hand in a
 * temporary directory (CA, OTP key, config file, SQLite store). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth/otp.h"
#include "ca/ca.h"
#include "core/base64.h"
#include "core/config.h"
#include "core/xalloc.h"
#include "est/approval.h"
#include "est/est.h"
#include "http/est_input.h"
#include "http/reply.h"
#include "http/route.h"
#include "pki/csr.h"
#include "store/store.h"

#define CT_CERTS "application/pkcs7-mime; smime-type=certs-only"
#define WK "/.well-known/est"

/* The labels the dispatcher tests use take CSRs named otherwise than their
 * OTP's entity (otp_subject = "any"); [label.named] keeps the default. */
static const char config_text[] = "[tls]\n"
                                  "cert = \"tls.crt\"\n"
                                  "key = \"tls.key\"\n"
                                  "[store]\n"
                                  "url = \"sqlite:t.db\"\n"
                                  "[otp]\n"
                                  "key_file = \"otp.key\"\n"
                                  "[label.default]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "otp_subject = \"any\"\n"
                                  "[label.iot]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "key_types = \"ec:P-256\"\n"
                                  "otp_subject = \"any\"\n"
                                  "[label.nootp]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "allow_otp = false\n"
                                  "[label.bound]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "channel_binding = \"required\"\n"
                                  "otp_subject = \"any\"\n"
                                  "[label.nomtls]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "allow_mtls = false\n"
                                  "otp_subject = \"any\"\n"
                                  "[label.held]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "approval = \"manual\"\n"
                                  "otp_subject = \"any\"\n"
                                  "[label.heldcb]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "approval = \"manual\"\n"
                                  "channel_binding = \"required\"\n"
                                  "otp_subject = \"any\"\n"
                                  "[label.named]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "[label.psk]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "allow_psk = true\n"
                                  "[coap]\n"
                                  "psk_file = \"coap-psk\"\n";

/* DTLS PSK credentials: [label.named] does not allow PSKs (the default). */
static const char psk_text[] = "# IDENTITY LABEL HEXKEY\n"
                               "sensor-01 psk 000102030405060708090a0b0c0d0e0f\n"
                               "sensor-02 named 101112131415161718191a1b1c1d1e1f\n";

/* Things a test allocates, released after it whatever its outcome. */
struct deferred {
    void (*fn)(void *);
    void *p;
};

struct fixture {
    char dir[64];
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    unsigned char otp_key[OTP_KEY_LEN];
    struct kp_config *cfg;
    struct store *store;
    struct est_services *svc;
    struct est_server *srv;
    EVP_PKEY *dev_key; /* P-256, the device's key in most requests */
    struct http_answer resp;
    struct deferred later[64];
    size_t nlater;
};

/* An OTP made for a test: the Authorization header and the stored hash. */
struct cred {
    char header[128];
    char otp[OTP_LEN + 1];
    unsigned char hash[STORE_OTP_HASH_LEN];
    int64_t id;
};

/* ---- fixture ---- */

static void *defer(struct fixture *fx, void (*fn)(void *), void *p)
{
    assert_true(fx->nlater < sizeof(fx->later) / sizeof(fx->later[0]));
    fx->later[fx->nlater].fn = fn;
    fx->later[fx->nlater].p = p;
    fx->nlater++;
    return p;
}

static void free_x509(void *p)
{
    X509_free(p);
}

static void free_pkey(void *p)
{
    EVP_PKEY_free(p);
}

static void free_json(void *p)
{
    json_decref(p);
}

static char *keep(struct fixture *fx, char *s)
{
    return defer(fx, free, s);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    free(path);
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert != NULL)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    if (key != NULL)
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    if (key != NULL)
        assert_int_equal(chmod(path, 0600), 0); /* a key file others may read is refused */
    free(path);
}

static int fx_setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    X509_NAME *subj = X509_NAME_new();
    char *path, *err = NULL, *url;
    enum kp_err rc;

    *state = fx;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kp-test-est-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;

    /* the CA, by hand */
    fx->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx->dev_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(fx->ca_key);
    assert_non_null(fx->dev_key);
    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)"Test EST CA", -1,
                               -1, 0);
    assert_int_equal(ca_create_root(fx->ca_key, subj, 3650, &fx->ca_cert), KP_OK);
    X509_NAME_free(subj);
    write_pem(fx->dir, "ca.crt", fx->ca_cert, NULL);
    write_pem(fx->dir, "ca.key", NULL, fx->ca_key);

    /* the OTP key */
    path = xasprintf("%s/otp.key", fx->dir);
    assert_int_equal(otp_key_create(path), KP_OK);
    assert_int_equal(otp_key_load(path, fx->otp_key), KP_OK);
    free(path);

    /* the PSK file, mode 0600 as est_server_new wants it */
    write_file(fx->dir, "coap-psk", psk_text);
    path = xasprintf("%s/coap-psk", fx->dir);
    assert_int_equal(chmod(path, 0600), 0);
    free(path);

    /* the config, the store, the server */
    write_file(fx->dir, "kipuka.toml", config_text);
    path = xasprintf("%s/kipuka.toml", fx->dir);
    rc = config_load(path, &fx->cfg, &err);
    free(path);
    if (rc != KP_OK) {
        print_error("config_load: %s\n", err);
        free(err);
        return -1;
    }
    url = xasprintf("sqlite:%s/t.db", fx->dir);
    assert_string_equal(fx->cfg->store_url, url);
    rc = store_open(url, &fx->store);
    free(url);
    if (rc != KP_OK)
        return -1;
    fx->svc = est_services_new(fx->store, fx->cfg->auth_fail_window);
    rc = est_server_new(fx->cfg, fx->svc, &fx->srv, &err);
    if (rc != KP_OK) {
        print_error("est_server_new: %s\n", err);
        free(err);
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int fx_reset(void **state)
{
    struct fixture *fx = *state;
    http_answer_cleanup(&fx->resp);
    memset(&fx->resp, 0, sizeof(fx->resp));
    fx->cfg->est_serverkeygen = false; /* some tests turn it on */
    while (fx->nlater > 0) {
        fx->nlater--;
        fx->later[fx->nlater].fn(fx->later[fx->nlater].p);
    }
    return 0;
}

static int fx_teardown(void **state)
{
    struct fixture *fx = *state;
    int rc;

    fx_reset(state);
    est_server_free(fx->srv);
    est_services_free(fx->svc);
    store_close(fx->store);
    config_free(fx->cfg);
    X509_free(fx->ca_cert);
    EVP_PKEY_free(fx->ca_key);
    EVP_PKEY_free(fx->dev_key);
    rc = fx->dir[0] ? nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) : 0;
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ---- building requests ---- */

/* HEAD: HTTP hands the core a GET and leaves the body out. */
#define T_HEAD 100

/* A request as HTTP sees it: header strings (NULL: absent) and the body
 * as sent; handle() turns it into an est_request as http/server.c does. */
struct treq {
    enum est_op op;
    char label[EST_LABEL_MAX + 1];
    int method; /* enum est_method, or T_HEAD */
    const char *content_type;
    const char *accept;
    const char *authorization;
    const unsigned char *body;
    size_t body_len;
    X509 *peer_cert;
    STACK_OF(X509) * peer_chain;
    long peer_verify;
    const char *psk_identity; /* what a DTLS transport sets after a PSK handshake */
    const unsigned char *channel_binding;
    size_t channel_binding_len;
    const char *peer_addr;
    uint64_t id;
};

static void req_init(struct treq *r, enum est_op op, const char *label, enum est_method method)
{
    memset(r, 0, sizeof(*r));
    r->op = op;
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->method = method;
    r->peer_verify = X509_V_ERR_UNSPECIFIED;
    r->peer_addr = "192.0.2.10";
    r->id = 1;
}

static struct http_answer *handle(struct fixture *fx, const struct treq *t)
{
    struct est_request r;
    struct http_est_input in;
    struct est_answer ans;

    http_answer_cleanup(&fx->resp);
    memset(&fx->resp, 0, sizeof(fx->resp));
    memset(&r, 0, sizeof(r));
    r.op = t->op;
    memcpy(r.label, t->label, sizeof(r.label));
    r.method = t->method == T_HEAD ? EST_GET : (enum est_method)t->method;
    http_est_input_fill(&r, &in, t->content_type, t->accept, t->authorization, t->body,
                        t->body_len);
    r.cred.cert = t->peer_cert;
    r.cred.chain = t->peer_chain;
    r.cred.cert_verify = t->peer_verify;
    r.cred.psk_identity = t->psk_identity;
    r.channel_binding = t->channel_binding;
    r.channel_binding_len = t->channel_binding_len;
    r.transport = "https";
    r.peer_addr = t->peer_addr;
    r.id = t->id;
    est_handle(fx->srv, &r, &ans);
    http_est_input_cleanup(&in);
    http_est_reply(&fx->resp, r.op, &ans, t->accept, NULL);
    est_answer_cleanup(&ans);
    return &fx->resp;
}

static void expect_status(struct fixture *fx, const struct treq *r, int status, enum kp_err err)
{
    struct http_answer *resp = handle(fx, r);
    if (resp->status != status || resp->err != err)
        fail_msg("%s label \"%s\": status %d err %s, want %d %s; body: %.*s", est_op_name(r->op),
                 r->label, resp->status, kp_err_code(resp->err), status, kp_err_code(err),
                 (int)resp->body_len, resp->body ? resp->body : "");
}

/* An OTP bound to a subject and SANs (canonical forms, NULL: none). */
static void cred_new_bound(struct fixture *fx, struct cred *c, const char *entity,
                           const char *label, int64_t uses, int64_t ttl, const char *subject,
                           const char *sans)
{
    time_t now = time(NULL);
    struct store_otp o = {.entity_id = (char *)entity,
                          .label = (char *)label,
                          .created_at = now,
                          .expires_at = now + ttl,
                          .uses_left = uses,
                          .uses_total = uses,
                          .subject = (char *)subject,
                          .sans = (char *)sans};
    char *userpass, *b64;

    assert_int_equal(otp_generate(c->otp), KP_OK);
    otp_hash(fx->otp_key, c->otp, strlen(c->otp), c->hash);
    assert_int_equal(store_otp_insert(fx->store, c->hash, &o, &c->id), KP_OK);
    userpass = xasprintf("%s:%s", entity, c->otp);
    b64 = base64_encode((const unsigned char *)userpass, strlen(userpass), NULL);
    b64[strcspn(b64, "\n")] = '\0';
    snprintf(c->header, sizeof(c->header), "Basic %s", b64);
    free(b64);
    free(userpass);
}

/* A new OTP for entity (label NULL: any) with uses and ttl seconds to live. */
static void cred_new(struct fixture *fx, struct cred *c, const char *entity, const char *label,
                     int64_t uses, int64_t ttl)
{
    cred_new_bound(fx, c, entity, label, uses, ttl, NULL, NULL);
}

static int64_t cred_uses_left(struct fixture *fx, const struct cred *c)
{
    struct store_otp *o = NULL;
    int64_t n;
    assert_int_equal(store_otp_find(fx->store, c->hash, &o), KP_OK);
    n = o->uses_left;
    store_otp_free(o);
    return n;
}

static int64_t cert_count(struct fixture *fx)
{
    int64_t n = -1;
    assert_int_equal(store_cert_count(fx->store, &n), KP_OK);
    return n;
}

/* A signed PKCS#10 request as DER (kept by fx). challenge may be NULL. */
static unsigned char *csr_der(struct fixture *fx, EVP_PKEY *key, const char *cn, const char *san,
                              const char *challenge, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL, *copy;
    int n;

    assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
    if (cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (san != NULL) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        assert_non_null(ext);
        sk_X509_EXTENSION_push(exts, ext);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (challenge != NULL)
        assert_int_equal(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                                   (const unsigned char *)challenge, -1),
                         1);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    copy = xmalloc((size_t)n);
    memcpy(copy, der, (size_t)n);
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_REQ_free(req);
    *len = (size_t)n;
    return (unsigned char *)keep(fx, (char *)copy);
}

/* The same request as an EST body: base64 with line breaks (kept by fx). */
static const char *csr_b64(struct fixture *fx, EVP_PKEY *key, const char *cn, const char *san,
                           const char *challenge)
{
    size_t len;
    unsigned char *der = csr_der(fx, key, cn, san, challenge, &len);
    return keep(fx, base64_encode(der, len, NULL));
}

static void set_body(struct treq *r, const char *text)
{
    r->body = (const unsigned char *)text;
    r->body_len = strlen(text);
}

/* The one certificate of a certs-only answer (kept by fx). */
static X509 *resp_cert(struct fixture *fx, const struct http_answer *resp, int want_count)
{
    unsigned char *der = NULL;
    size_t len = 0;
    const unsigned char *p;
    PKCS7 *p7;
    X509 *cert;

    assert_string_equal(resp->content_type, CT_CERTS);
    assert_true(resp->base64_cte);
    assert_int_equal(strlen(resp->body), resp->body_len);
    assert_int_equal(base64_decode(resp->body, resp->body_len, &der, &len), KP_OK);
    p = der;
    p7 = d2i_PKCS7(NULL, &p, (long)len);
    assert_non_null(p7);
    assert_ptr_equal(p, der + len);
    assert_true(PKCS7_type_is_signed(p7));
    assert_int_equal(sk_X509_num(p7->d.sign->cert), want_count);
    cert = X509_dup(sk_X509_value(p7->d.sign->cert, 0));
    PKCS7_free(p7);
    free(der);
    return defer(fx, free_x509, cert);
}

/* Enroll key/cn/san with a fresh OTP on label; returns the certificate. */
static X509 *enroll_with_otp(struct fixture *fx, const char *label, EVP_PKEY *key, const char *cn,
                             const char *san)
{
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-001", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, label, EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, key, cn, san, NULL));
    expect_status(fx, &r, 200, KP_OK);
    return resp_cert(fx, &fx->resp, 1);
}

static EVP_PKEY *new_key(struct fixture *fx, const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(k);
    return defer(fx, free_pkey, k);
}

static json_t *resp_json(struct fixture *fx, const struct http_answer *resp)
{
    json_error_t jerr;
    json_t *j;

    assert_string_equal(resp->content_type, "application/json");
    assert_false(resp->base64_cte);
    j = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", jerr.text, (int)resp->body_len, resp->body);
    defer(fx, free_json, j);
    assert_true(json_is_object(j));
    return j;
}

/* ---- http_route_est ---- */

static void expect_route(const char *base, const char *path, enum kp_err want, enum est_op op,
                         const char *label)
{
    struct est_request r;
    enum kp_err rc;

    memset(&r, 0, sizeof(r));
    r.op = EST_OP__MAX;
    memset(r.label, 'Z', EST_LABEL_MAX);
    rc = http_route_est(base, path, &r);
    if (rc != want)
        fail_msg("\"%s\": %s, want %s", path, kp_err_code(rc), kp_err_code(want));
    if (want == KP_OK) {
        assert_int_equal(r.op, op);
        assert_string_equal(r.label, label);
    }
}

static void test_route_finds_every_operation_without_a_label(void **state)
{
    (void)state;
    expect_route(WK, WK "/cacerts", KP_OK, EST_OP_CACERTS, "");
    expect_route(WK, WK "/simpleenroll", KP_OK, EST_OP_SIMPLEENROLL, "");
    expect_route(WK, WK "/simplereenroll", KP_OK, EST_OP_SIMPLEREENROLL, "");
    expect_route(WK, WK "/csrattrs", KP_OK, EST_OP_CSRATTRS, "");
    expect_route(WK, WK "/serverkeygen", KP_OK, EST_OP_SERVERKEYGEN, "");
    expect_route(WK, WK "/fullcmc", KP_OK, EST_OP_FULLCMC, "");
}

static void test_route_takes_the_label_segment(void **state)
{
    char path[128], label[EST_LABEL_MAX + 1];
    (void)state;

    expect_route(WK, WK "/iot/simpleenroll", KP_OK, EST_OP_SIMPLEENROLL, "iot");
    expect_route(WK, WK "/A-b_c.9/cacerts", KP_OK, EST_OP_CACERTS, "A-b_c.9");
    memset(label, 'l', EST_LABEL_MAX);
    label[EST_LABEL_MAX] = '\0';
    snprintf(path, sizeof(path), WK "/%s/csrattrs", label);
    expect_route(WK, path, KP_OK, EST_OP_CSRATTRS, label);
}

static void test_route_honours_the_configured_base_path(void **state)
{
    (void)state;
    expect_route("/est", "/est/cacerts", KP_OK, EST_OP_CACERTS, "");
    expect_route("/est", "/est/x/cacerts", KP_OK, EST_OP_CACERTS, "x");
    expect_route("/est", WK "/cacerts", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route("/a/b/c", "/a/b/c/simpleenroll", KP_OK, EST_OP_SIMPLEENROLL, "");
}

static void test_route_outside_the_base_path_is_not_found(void **state)
{
    (void)state;
    expect_route(WK, "/.well-known/estx/cacerts", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, "/.well-known/es/cacerts", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, "/well-known/est/cacerts", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, "/cacerts", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK, KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, "", KP_ERR_NOT_FOUND, 0, NULL);
}

static void test_route_unknown_operation_is_not_found(void **state)
{
    (void)state;
    expect_route(WK, WK "/foo", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/iot/foo", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/CACERTS", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/cacertsx", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/cacert", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/iot/", KP_ERR_NOT_FOUND, 0, NULL);
}

static void test_route_bad_label_is_unknown_label(void **state)
{
    char path[160], label[EST_LABEL_MAX + 2];
    (void)state;

    expect_route(WK, WK "/a b/cacerts", KP_ERR_UNKNOWN_LABEL, 0, NULL);
    expect_route(WK, WK "/a%2Fb/cacerts", KP_ERR_UNKNOWN_LABEL, 0, NULL);
    expect_route(WK, WK "/caf\xc3\xa9/cacerts", KP_ERR_UNKNOWN_LABEL, 0, NULL);
    expect_route(WK, WK "/a:b/cacerts", KP_ERR_UNKNOWN_LABEL, 0, NULL);
    expect_route(WK, WK "//cacerts", KP_ERR_UNKNOWN_LABEL, 0, NULL);
    memset(label, 'l', EST_LABEL_MAX + 1);
    label[EST_LABEL_MAX + 1] = '\0';
    snprintf(path, sizeof(path), WK "/%s/cacerts", label);
    expect_route(WK, path, KP_ERR_UNKNOWN_LABEL, 0, NULL);
}

static void test_route_extra_segments_are_not_found(void **state)
{
    (void)state;
    expect_route(WK, WK "/a/b/cacerts", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/iot/cacerts/x", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/iot/cacerts/", KP_ERR_NOT_FOUND, 0, NULL);
}

static void test_route_trailing_slash_is_not_found(void **state)
{
    (void)state;
    expect_route(WK, WK "/cacerts/", KP_ERR_NOT_FOUND, 0, NULL);
    expect_route(WK, WK "/simpleenroll/", KP_ERR_NOT_FOUND, 0, NULL);
}

/* ---- est_handle: cacerts, csrattrs, methods ---- */

static void test_get_cacerts_answers_the_ca_as_certs_only(void **state)
{
    struct fixture *fx = *state;
    static const char *const labels[] = {"", "default", "iot"};
    struct treq r;

    for (size_t i = 0; i < 3; i++) {
        X509 *cert;
        req_init(&r, EST_OP_CACERTS, labels[i], EST_GET);
        expect_status(fx, &r, 200, KP_OK);
        assert_null(fx->resp.www_authenticate);
        assert_int_equal(fx->resp.body[fx->resp.body_len - 1], '\n');
        cert = resp_cert(fx, &fx->resp, 1);
        assert_int_equal(X509_cmp(cert, fx->ca_cert), 0);
    }
    /* no credentials needed, and Accept does not change a success */
    r.accept = "application/json";
    expect_status(fx, &r, 200, KP_OK);
    assert_string_equal(fx->resp.content_type, CT_CERTS);
}

static void test_get_csrattrs_answers_application_csrattrs(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    unsigned char *der = NULL;
    size_t len = 0;

    req_init(&r, EST_OP_CSRATTRS, "", EST_GET);
    expect_status(fx, &r, 200, KP_OK);
    assert_string_equal(fx->resp.content_type, "application/csrattrs");
    assert_true(fx->resp.base64_cte);
    assert_int_equal(base64_decode(fx->resp.body, fx->resp.body_len, &der, &len), KP_OK);
    assert_int_equal(der[0], 0x30);
    free(der);
}

static void test_wrong_method_is_405(void **state)
{
    struct fixture *fx = *state;
    struct treq r;

    req_init(&r, EST_OP_CACERTS, "", EST_POST);
    expect_status(fx, &r, 405, KP_ERR_METHOD);
    assert_string_equal(fx->resp.allow, "GET, HEAD");
    req_init(&r, EST_OP_CSRATTRS, "iot", EST_OTHER);
    expect_status(fx, &r, 405, KP_ERR_METHOD);
    assert_string_equal(fx->resp.allow, "GET, HEAD");
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_GET);
    expect_status(fx, &r, 405, KP_ERR_METHOD);
    assert_string_equal(fx->resp.allow, "POST");
    req_init(&r, EST_OP_SIMPLEREENROLL, "", T_HEAD);
    expect_status(fx, &r, 405, KP_ERR_METHOD);
    assert_string_equal(fx->resp.allow, "POST");
}

static void test_head_answers_as_get(void **state)
{
    struct fixture *fx = *state;
    static const enum est_op ops[] = {EST_OP_CACERTS, EST_OP_CSRATTRS};
    struct treq r;

    for (size_t i = 0; i < 2; i++) {
        char *get_body;
        size_t get_len;
        const char *get_ct;
        req_init(&r, ops[i], "iot", EST_GET);
        expect_status(fx, &r, 200, KP_OK);
        get_body = xstrndup(fx->resp.body, fx->resp.body_len); /* base64 text */
        get_len = fx->resp.body_len;
        get_ct = fx->resp.content_type;
        /* the transport sends the head only; the core answers as for GET */
        req_init(&r, ops[i], "iot", T_HEAD);
        expect_status(fx, &r, 200, KP_OK);
        assert_null(fx->resp.allow);
        assert_string_equal(fx->resp.content_type, get_ct);
        assert_true(fx->resp.base64_cte);
        assert_int_equal(fx->resp.body_len, get_len);
        assert_memory_equal(fx->resp.body, get_body, get_len);
        free(get_body);
    }
}

static void test_unknown_label_is_404(void **state)
{
    struct fixture *fx = *state;
    struct treq r;

    req_init(&r, EST_OP_CACERTS, "nosuch", EST_GET);
    expect_status(fx, &r, 404, KP_ERR_UNKNOWN_LABEL);
    req_init(&r, EST_OP_SIMPLEENROLL, "Default", EST_POST);
    expect_status(fx, &r, 404, KP_ERR_UNKNOWN_LABEL);
}

static void test_serverkeygen_and_fullcmc_are_404_by_default(void **state)
{
    struct fixture *fx = *state;
    struct treq r;

    req_init(&r, EST_OP_SERVERKEYGEN, "", EST_POST);
    expect_status(fx, &r, 404, KP_ERR_NOT_FOUND);
    req_init(&r, EST_OP_FULLCMC, "iot", EST_POST);
    expect_status(fx, &r, 404, KP_ERR_NOT_FOUND);
}

/* ---- simpleenroll with an OTP ---- */

static void test_simpleenroll_without_credentials_is_401_with_challenge(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    int64_t before = cert_count(fx);

    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-1.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_string_equal(fx->resp.www_authenticate, HTTP_BASIC_CHALLENGE);
    assert_false(fx->resp.base64_cte);
    assert_int_equal(cert_count(fx), before);
}

static void test_simpleenroll_with_valid_otp_issues_and_records(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    struct store_cert *row = NULL;
    int64_t before = cert_count(fx);
    X509 *cert;
    char *serial;

    cred_new(fx, &c, "device-001", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-1.example", "DNS:dev-1.example", NULL));
    expect_status(fx, &r, 200, KP_OK);
    assert_null(fx->resp.www_authenticate);
    assert_string_equal(fx->resp.auth_subject, "device-001");
    cert = resp_cert(fx, &fx->resp, 1);

    assert_int_equal(X509_verify(cert, fx->ca_key), 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->dev_key), 1);
    assert_int_equal(cert_count(fx), before + 1);
    assert_int_equal(cred_uses_left(fx, &c), 0);

    serial = ca_serial_hex(cert);
    assert_int_equal(store_cert_get(fx->store, serial, &row), KP_OK);
    assert_string_equal(row->label, "default");
    assert_string_equal(row->auth_method, "otp");
    assert_string_equal(row->requester, "device-001");
    assert_string_equal(row->subject, "CN=dev-1.example");
    assert_string_equal(row->sans, "DNS:dev-1.example");
    assert_string_equal(row->status, "valid");
    store_cert_free(row);
    free(serial);
}

static void test_reused_otp_is_rejected(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    int64_t before;

    cred_new(fx, &c, "device-001", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-1.example", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
    before = cert_count(fx);

    set_body(&r, csr_b64(fx, new_key(fx, "P-256"), "dev-1.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_string_equal(fx->resp.www_authenticate, HTTP_BASIC_CHALLENGE);
    assert_int_equal(cert_count(fx), before);
}

static void test_otp_with_two_uses_enrolls_twice(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-002", NULL, 2, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "iot", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-2.example", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cred_uses_left(fx, &c), 1);
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cred_uses_left(fx, &c), 0);
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
}

static void test_wrong_or_foreign_otp_is_401(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c, expired;
    char header[128], *b64, *first_body;
    const char *csr = csr_b64(fx, fx->dev_key, "dev-1.example", NULL, NULL);

    cred_new(fx, &c, "device-001", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.content_type = "application/pkcs10";
    set_body(&r, csr);

    /* right entity, wrong password */
    r.authorization = "Basic ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=";
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    first_body = keep(fx, xstrdup(fx->resp.body));

    /* the right OTP claimed by another entity */
    b64 = keep(fx, xasprintf("device-999:%s", c.otp));
    b64 = keep(fx, base64_encode((const unsigned char *)b64, strlen(b64), NULL));
    b64[strcspn(b64, "\n")] = '\0';
    snprintf(header, sizeof(header), "Basic %s", b64);
    r.authorization = header;
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    /* 401 bodies say nothing about why */
    assert_string_equal(fx->resp.body, first_body);

    /* malformed credentials */
    r.authorization = "Bearer abc";
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_string_equal(fx->resp.www_authenticate, HTTP_BASIC_CHALLENGE);

    /* an expired OTP */
    cred_new(fx, &expired, "device-001", NULL, 1, -10);
    r.authorization = expired.header;
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_string_equal(fx->resp.body, first_body);

    /* none of this spent the valid OTP */
    assert_int_equal(cred_uses_left(fx, &c), 1);
    r.authorization = c.header;
    expect_status(fx, &r, 200, KP_OK);
}

static void test_otp_bound_to_another_label_is_403(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-003", "iot", 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "default", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-3.example", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cred_uses_left(fx, &c), 1);
    snprintf(r.label, sizeof(r.label), "iot");
    expect_status(fx, &r, 200, KP_OK);
}

static void test_otp_certifies_only_its_entity_names_by_default(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    int64_t before = cert_count(fx);

    cred_new(fx, &c, "device-001", NULL, 2, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "named", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "device-002.example", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cert_count(fx), before);
    assert_int_equal(cred_uses_left(fx, &c), 2);
    set_body(&r, csr_b64(fx, fx->dev_key, "device-001.example", "IP:192.0.2.1", NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cred_uses_left(fx, &c), 2);
    set_body(&r, csr_b64(fx, fx->dev_key, "device-001.example", "DNS:device-001.example", NULL));
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cert_count(fx), before + 1);
    assert_int_equal(cred_uses_left(fx, &c), 1);
}

static void test_subject_bound_to_the_otp_binds_on_any_label(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    int64_t before = cert_count(fx);

    cred_new_bound(fx, &c, "device-001", NULL, 1, 3600, "/CN=printer.example", NULL);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-1.example", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_non_null(strstr(fx->resp.body, "bound to the OTP"));
    assert_int_equal(cred_uses_left(fx, &c), 1);
    set_body(&r, csr_b64(fx, fx->dev_key, "printer.example", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cert_count(fx), before + 1);
}

static void test_label_without_otp_refuses_otp(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-004", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "nootp", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-4.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_int_equal(cred_uses_left(fx, &c), 1);
}

static void test_wrong_content_type_is_415(void **state)
{
    struct fixture *fx = *state;
    static const char *const types[] = {"application/json", "text/plain", "application/pkcs10x",
                                        "application/pkcs7-mime"};
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-005", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-5.example", NULL, NULL));
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        r.content_type = types[i];
        expect_status(fx, &r, 415, KP_ERR_MEDIA_TYPE);
    }
    assert_int_equal(cred_uses_left(fx, &c), 1);

    /* parameters, case and spaces around the type do not matter */
    r.content_type = " Application/PKCS10 ; charset=binary";
    expect_status(fx, &r, 200, KP_OK);
}

static void test_missing_content_type_is_400(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-006", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-6.example", NULL, NULL));
    expect_status(fx, &r, 400, KP_ERR_NO_CONTENT_TYPE);
    assert_int_equal(cred_uses_left(fx, &c), 1);
}

static void test_junk_body_is_400_and_keeps_the_otp(void **state)
{
    struct fixture *fx = *state;
    static const char *const junk[] = {"not base64 at all!", "AAAA", "MIIB", ""};
    static const enum kp_err errs[] = {KP_ERR_BASE64, KP_ERR_CSR, KP_ERR_CSR, KP_ERR_CSR};
    struct treq r;
    struct cred c;
    int64_t before = cert_count(fx);

    cred_new(fx, &c, "device-007", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        set_body(&r, junk[i]);
        expect_status(fx, &r, 400, errs[i]);
    }
    assert_int_equal(cred_uses_left(fx, &c), 1);
    assert_int_equal(cert_count(fx), before);

    /* the OTP still has its use */
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-7.example", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cred_uses_left(fx, &c), 0);
}

static void test_csr_with_bad_signature_is_400(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    size_t len;
    unsigned char *der = csr_der(fx, fx->dev_key, "dev-8.example", NULL, NULL, &len);
    char *b64;

    der[len - 1] ^= 0x01; /* last byte of the signature */
    b64 = keep(fx, base64_encode(der, len, NULL));
    cred_new(fx, &c, "device-008", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, b64);
    expect_status(fx, &r, 400, KP_ERR_CSR_SIGNATURE);
    assert_int_equal(cred_uses_left(fx, &c), 1);
}

static void test_raw_der_body_is_accepted(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    size_t len;
    unsigned char *der = csr_der(fx, fx->dev_key, "dev-9.example", NULL, NULL, &len);

    cred_new(fx, &c, "device-009", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    r.body = der;
    r.body_len = len;
    expect_status(fx, &r, 200, KP_OK);
}

static void test_profile_refusal_is_400_with_the_reason(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-010", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "iot", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, new_key(fx, "P-384"), "dev-10.example", NULL, NULL));
    expect_status(fx, &r, 400, KP_ERR_KEY_TYPE);
    assert_non_null(strstr(fx->resp.body, "not allowed"));

    set_body(&r, csr_b64(fx, fx->dev_key, "dev-10.example", "DNS:a..b", NULL));
    expect_status(fx, &r, 400, KP_ERR_POLICY);
    assert_non_null(strstr(fx->resp.body, "dNSName"));
    assert_int_equal(cred_uses_left(fx, &c), 1);
}

/* ---- error bodies ---- */

static void test_accept_json_gives_a_json_error_body(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    json_t *j;

    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.accept = "application/json";
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-11.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    j = resp_json(fx, &fx->resp);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "unauthorized");
    assert_non_null(json_string_value(json_object_get(j, "message")));
    assert_true(strlen(json_string_value(json_object_get(j, "message"))) > 0);
    assert_int_equal(json_object_size(j), 2);

    /* among other media ranges, with parameters */
    cred_new(fx, &c, "device-011", NULL, 1, 3600);
    r.authorization = c.header;
    r.content_type = "text/plain";
    r.accept = "text/html, application/json;q=0.9";
    expect_status(fx, &r, 415, KP_ERR_MEDIA_TYPE);
    j = resp_json(fx, &fx->resp);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "unsupported_media_type");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "the media type must be application/pkcs10");

    req_init(&r, EST_OP_CACERTS, "nosuch", EST_GET);
    r.accept = "application/json";
    expect_status(fx, &r, 404, KP_ERR_UNKNOWN_LABEL);
    j = resp_json(fx, &fx->resp);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "unknown_label");
}

static void test_error_body_is_text_without_accept_json(void **state)
{
    struct fixture *fx = *state;
    struct treq r;

    req_init(&r, EST_OP_CACERTS, "nosuch", EST_GET);
    expect_status(fx, &r, 404, KP_ERR_UNKNOWN_LABEL);
    assert_string_equal(fx->resp.content_type, "text/plain; charset=utf-8");
    assert_int_equal(fx->resp.body[fx->resp.body_len - 1], '\n');
    r.accept = "text/html, application/jsonx";
    expect_status(fx, &r, 404, KP_ERR_UNKNOWN_LABEL);
    assert_string_equal(fx->resp.content_type, "text/plain; charset=utf-8");
}

static void test_json_error_escapes_the_detail(void **state)
{
    struct fixture *fx = *state;
    json_t *j;

    http_est_error(&fx->resp, KP_ERR_POLICY, "application/json", "say \"hi\"\n\\ \x01");
    assert_int_equal(fx->resp.status, 400);
    j = resp_json(fx, &fx->resp);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "policy_violation");
    assert_string_equal(json_string_value(json_object_get(j, "message")), "say \"hi\"\n\\ \x01");
}

/* ---- certificate authentication ---- */

static void test_simplereenroll_without_peer_certificate_is_401(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-012", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEREENROLL, "", EST_POST);
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-12.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    /* an OTP does not stand in for the certificate being renewed */
    r.authorization = c.header;
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_int_equal(cred_uses_left(fx, &c), 1);
}

static void test_simplereenroll_with_same_subject_is_200(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct store_cert *row = NULL;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "re-1.example", "DNS:re-1.example");
    EVP_PKEY *rekey = new_key(fx, "P-256");
    X509 *renewed;
    char *serial;

    req_init(&r, EST_OP_SIMPLEREENROLL, "", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, rekey, "re-1.example", "DNS:re-1.example", NULL));
    expect_status(fx, &r, 200, KP_OK);
    renewed = resp_cert(fx, &fx->resp, 1);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(renewed), X509_get_subject_name(old)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(renewed), rekey), 1);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(renewed), X509_get0_serialNumber(old)), 0);
    assert_string_equal(fx->resp.auth_subject, "CN=re-1.example");

    serial = ca_serial_hex(renewed);
    assert_int_equal(store_cert_get(fx->store, serial, &row), KP_OK);
    assert_string_equal(row->auth_method, "mtls");
    assert_string_equal(row->requester, "CN=re-1.example");
    store_cert_free(row);
    free(serial);
}

static void test_simplereenroll_with_different_subject_is_403(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "re-2.example", "DNS:re-2.example");
    int64_t before = cert_count(fx);

    req_init(&r, EST_OP_SIMPLEREENROLL, "", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "someone-else.example", "DNS:re-2.example", NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    /* same subject, other SAN */
    set_body(&r, csr_b64(fx, fx->dev_key, "re-2.example", "DNS:other.example", NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    /* same subject, SAN dropped */
    set_body(&r, csr_b64(fx, fx->dev_key, "re-2.example", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cert_count(fx), before);
}

static void test_unverified_peer_certificate_is_401(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "re-3.example", NULL);

    req_init(&r, EST_OP_SIMPLEREENROLL, "", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_ERR_CERT_HAS_EXPIRED;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "re-3.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    r.peer_verify = X509_V_OK;
    expect_status(fx, &r, 200, KP_OK);
}

static void test_simpleenroll_with_client_certificate_must_keep_the_subject(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "mtls-1.example", NULL);

    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "mtls-2.example", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    /* RFC 7030 4.2.2: identical, so no case folding */
    set_body(&r, csr_b64(fx, fx->dev_key, "MTLS-1.example", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    /* the SANs are bound too: none may be added */
    set_body(&r, csr_b64(fx, fx->dev_key, "mtls-1.example", "DNS:mtls-1.example", NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    set_body(&r, csr_b64(fx, fx->dev_key, "mtls-1.example", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
}

static void test_label_without_mtls_refuses_client_certificates(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "mtls-3.example", NULL);

    req_init(&r, EST_OP_SIMPLEENROLL, "nomtls", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "mtls-3.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    r.op = EST_OP_SIMPLEREENROLL;
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
}

static void test_client_certificate_stays_under_its_label(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "scoped.example", NULL);
    int64_t before = cert_count(fx);

    req_init(&r, EST_OP_SIMPLEENROLL, "iot", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "scoped.example", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    r.op = EST_OP_SIMPLEREENROLL;
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cert_count(fx), before);
    /* control: the label that issued it */
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "scoped.example", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
}

static void test_simplereenroll_compares_subjects_exactly(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "device-001", NULL);

    req_init(&r, EST_OP_SIMPLEREENROLL, "", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "DEVICE-001", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    set_body(&r, csr_b64(fx, fx->dev_key, "device-001", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
}

static void test_csr_with_a_ca_subject_is_403_and_keeps_the_otp(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    int64_t before = cert_count(fx);

    cred_new(fx, &c, "device-ca", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    /* the CA is "CN=Test EST CA": X509_NAME_cmp folds case */
    set_body(&r, csr_b64(fx, fx->dev_key, "test est ca", NULL, NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cred_uses_left(fx, &c), 1);
    assert_int_equal(cert_count(fx), before);
}

/* Mark a certificate revoked the way an operator's revocation would. */
static void revoke_in_db(struct fixture *fx, X509 *cert)
{
    char *path = xasprintf("%s/t.db", fx->dir);
    char *serial = ca_serial_hex(cert);
    char *sql = xasprintf("UPDATE certificates SET status = 'revoked', revoked_at = %lld"
                          " WHERE serial = '%s'",
                          (long long)time(NULL), serial);
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    free(sql);
    free(serial);
    free(path);
}

static void test_revoked_client_certificate_is_401(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    X509 *old = enroll_with_otp(fx, "", fx->dev_key, "revoked.example", NULL);

    req_init(&r, EST_OP_SIMPLEREENROLL, "", EST_POST);
    r.peer_cert = old;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "revoked.example", NULL, NULL));
    revoke_in_db(fx, old);
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    r.op = EST_OP_SIMPLEENROLL;
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
}

static void test_revoked_otp_is_401(void **state)
{
    struct fixture *fx = *state;
    struct store_audit ev = {.event = "otp.revoke", .outcome = "ok", .detail = "test"};
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-014", NULL, 3, 3600);
    assert_int_equal(store_otp_revoke(fx->store, c.id, &ev), KP_OK);
    req_init(&r, EST_OP_SIMPLEENROLL, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-14.example", NULL, NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
}

struct audit_last {
    char event[64];
    char outcome[64];
    char label[64];
    char subject[64];
    char peer[64];
    char detail[160];
    int n;
};

static void audit_keep_last(int64_t at, const struct store_audit *a, void *arg)
{
    struct audit_last *l = arg;
    (void)at;
    snprintf(l->event, sizeof(l->event), "%s", a->event ? a->event : "");
    snprintf(l->outcome, sizeof(l->outcome), "%s", a->outcome ? a->outcome : "");
    snprintf(l->label, sizeof(l->label), "%s", a->label ? a->label : "");
    snprintf(l->subject, sizeof(l->subject), "%s", a->subject ? a->subject : "");
    snprintf(l->peer, sizeof(l->peer), "%s", a->peer ? a->peer : "");
    snprintf(l->detail, sizeof(l->detail), "%s", a->detail ? a->detail : "");
    l->n++;
}

static void test_refusals_and_issues_are_audited(void **state)
{
    struct fixture *fx = *state;
    struct audit_last last;
    struct treq r;
    struct cred c;

    cred_new(fx, &c, "device-015", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "iot", EST_POST);
    r.authorization = c.header;
    r.content_type = "text/plain";
    set_body(&r, csr_b64(fx, fx->dev_key, "dev-15.example", NULL, NULL));
    expect_status(fx, &r, 415, KP_ERR_MEDIA_TYPE);
    memset(&last, 0, sizeof(last));
    assert_int_equal(store_audit_list(fx->store, 0, audit_keep_last, &last), KP_OK);
    assert_string_equal(last.event, "simpleenroll");
    assert_string_equal(last.outcome, "unsupported_media_type");
    assert_string_equal(last.label, "iot");
    assert_string_equal(last.subject, "device-015");
    assert_string_equal(last.peer, "192.0.2.10");

    r.content_type = "application/pkcs10";
    expect_status(fx, &r, 200, KP_OK);
    memset(&last, 0, sizeof(last));
    assert_int_equal(store_audit_list(fx->store, 0, audit_keep_last, &last), KP_OK);
    assert_string_equal(last.event, "simpleenroll");
    assert_string_equal(last.outcome, "ok");
    assert_string_equal(last.subject, "device-015");
}

/* ---- channel binding ---- */

static void test_required_channel_binding_is_checked(void **state)
{
    struct fixture *fx = *state;
    unsigned char binding[32];
    struct treq r;
    struct cred c;
    char *b64;

    for (size_t i = 0; i < sizeof(binding); i++)
        binding[i] = (unsigned char)(i * 11 + 5);
    b64 = keep(fx, base64_encode(binding, sizeof(binding), NULL));
    b64[strcspn(b64, "\n")] = '\0';

    cred_new(fx, &c, "device-013", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "bound", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    r.channel_binding = binding;
    r.channel_binding_len = sizeof(binding);

    set_body(&r, csr_b64(fx, fx->dev_key, "cb.example", NULL, NULL));
    expect_status(fx, &r, 400, KP_ERR_CHANNEL_BINDING);
    set_body(&r, csr_b64(fx, fx->dev_key, "cb.example", NULL, "a-plain-password"));
    expect_status(fx, &r, 400, KP_ERR_CHANNEL_BINDING);
    binding[0] ^= 1; /* another connection */
    set_body(&r, csr_b64(fx, fx->dev_key, "cb.example", NULL, b64));
    expect_status(fx, &r, 400, KP_ERR_CHANNEL_BINDING);
    assert_int_equal(cred_uses_left(fx, &c), 1);
    binding[0] ^= 1;
    expect_status(fx, &r, 200, KP_OK);
}

/* ---- server construction ---- */

static void test_server_refuses_a_missing_otp_key(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = NULL;
    struct est_server *srv = NULL;
    char *err = NULL, *path;

    write_file(fx->dir, "nokey.toml",
               "[tls]\ncert = \"c\"\nkey = \"k\"\n[otp]\nkey_file = \"missing.key\"\n"
               "[label.default]\nca_cert = \"ca.crt\"\nca_key = \"ca.key\"\n");
    path = keep(fx, xasprintf("%s/nokey.toml", fx->dir));
    assert_int_equal(config_load(path, &cfg, &err), KP_OK);
    assert_int_not_equal(est_server_new(cfg, fx->svc, &srv, &err), KP_OK);
    assert_null(srv);
    assert_non_null(err);
    assert_non_null(strstr(err, "missing.key"));
    free(err);
    config_free(cfg);
}

static void test_server_refuses_fullcmc(void **state)
{
    struct fixture *fx = *state;
    struct kp_config *cfg = NULL;
    struct est_server *srv = NULL;
    char *err = NULL, *path;

    write_file(fx->dir, "cmc.toml",
               "est.fullcmc = true\n[tls]\ncert = \"c\"\nkey = \"k\"\n"
               "[label.default]\nca_cert = \"ca.crt\"\nca_key = \"ca.key\"\n");
    path = keep(fx, xasprintf("%s/cmc.toml", fx->dir));
    assert_int_equal(config_load(path, &cfg, &err), KP_OK);
    assert_int_equal(est_server_new(cfg, fx->svc, &srv, &err), KP_ERR_CONFIG);
    assert_null(srv);
    assert_non_null(strstr(err, "fullcmc"));
    free(err);
    config_free(cfg);
}

/* A detail that is not UTF-8 cannot go into JSON: the fixed message does. */
static void test_json_error_with_non_utf8_detail_falls_back(void **state)
{
    struct http_answer resp = {0};
    json_error_t jerr;
    json_t *j;
    (void)state;

    http_est_error(&resp, KP_ERR_POLICY, "application/json", "bad \xff\xfe byte");
    assert_int_equal(resp.status, 400);
    assert_string_equal(resp.content_type, "application/json");
    j = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "policy_violation");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        kp_err_message(KP_ERR_POLICY));
    json_decref(j);
    http_answer_cleanup(&resp);
}

/* ---- serverkeygen (RFC 7030 4.4) ---- */

/* The body of the part whose Content-Type is ctype, base64-decoded (kept by fx). */
static unsigned char *part_der(struct fixture *fx, const struct http_answer *resp,
                               const char *ctype, size_t *len)
{
    char *hdr = xasprintf("Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", ctype);
    const char *start = strstr(resp->body, hdr), *end;
    unsigned char *der = NULL;

    if (start == NULL)
        fail_msg("no part %s in: %s", ctype, resp->body);
    start += strlen(hdr);
    end = strstr(start, "\r\n--");
    assert_non_null(end);
    assert_int_equal(base64_decode(start, (size_t)(end - start), &der, len), KP_OK);
    free(hdr);
    return (unsigned char *)keep(fx, (char *)der);
}

static void test_serverkeygen_answers_the_key_then_its_certificate(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    unsigned char *der;
    const unsigned char *p;
    size_t len = 0;
    PKCS8_PRIV_KEY_INFO *p8;
    PKCS7 *p7;
    EVP_PKEY *key;
    X509 *cert;
    const char *key_part, *cert_part;

    fx->cfg->est_serverkeygen = true;
    cred_new(fx, &c, "device-skg", NULL, 1, 3600);
    req_init(&r, EST_OP_SERVERKEYGEN, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "skg.example", NULL, NULL));
    expect_status(fx, &r, 200, KP_OK);
    assert_non_null(strstr(fx->resp.content_type, "multipart/mixed; boundary="));
    assert_false(fx->resp.base64_cte);
    assert_true(fx->resp.body_secret);
    key_part = strstr(fx->resp.body, "Content-Type: application/pkcs8\r\n");
    cert_part = strstr(fx->resp.body, "Content-Type: " CT_CERTS "\r\n");
    assert_non_null(key_part);
    assert_non_null(cert_part);
    assert_true(key_part < cert_part); /* RFC 7030 4.4.2: key first */

    der = part_der(fx, &fx->resp, "application/pkcs8", &len);
    p = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    assert_non_null(p8);
    key = defer(fx, free_pkey, EVP_PKCS82PKEY(p8));
    PKCS8_PRIV_KEY_INFO_free(p8);
    der = part_der(fx, &fx->resp, CT_CERTS, &len);
    p = der;
    p7 = d2i_PKCS7(NULL, &p, (long)len);
    assert_non_null(p7);
    cert = defer(fx, free_x509, X509_dup(sk_X509_value(p7->d.sign->cert, 0)));
    PKCS7_free(p7);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->dev_key), 0);
    assert_int_equal(X509_verify(cert, fx->ca_key), 1);
    assert_int_equal(cred_uses_left(fx, &c), 0);
}

static void test_serverkeygen_refuses_protection_it_cannot_give(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    int64_t before = cert_count(fx);

    fx->cfg->est_serverkeygen = true;
    cred_new(fx, &c, "device-skg", NULL, 1, 3600);
    req_init(&r, EST_OP_SERVERKEYGEN, "", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    /* no serverkeygen_kek_file for this label: no key id can be known */
    {
        X509_REQ *req = X509_REQ_new();
        unsigned char *der = NULL;
        int n;
        assert_int_equal(X509_REQ_set_pubkey(req, fx->dev_key), 1);
        assert_int_equal(X509_REQ_add1_attr_by_txt(req, "1.2.840.113549.1.9.16.2.37",
                                                   V_ASN1_OCTET_STRING, (const unsigned char *)"k1",
                                                   2),
                         1);
        assert_true(X509_REQ_sign(req, fx->dev_key, EVP_sha256()) > 0);
        n = i2d_X509_REQ(req, &der);
        assert_true(n > 0);
        r.body = (const unsigned char *)keep(fx, (char *)der);
        r.body_len = (size_t)n;
        X509_REQ_free(req);
    }
    expect_status(fx, &r, 400, KP_ERR_POLICY);
    assert_int_equal(cert_count(fx), before);
    assert_int_equal(cred_uses_left(fx, &c), 1);
}

/* ---- manual approval (RFC 7030 4.2.3) ---- */

static int64_t last_pending_id(struct fixture *fx)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *path = xasprintf("%s/t.db", fx->dir);
    int64_t id = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT max(id) FROM pending_requests", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return id;
}

static void test_manual_label_holds_then_issues_after_approval(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    int64_t before = cert_count(fx), id;
    X509 *cert;

    cred_new(fx, &c, "device-held", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "held", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "held.example", NULL, NULL));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    assert_int_equal(fx->resp.retry_after, fx->cfg->est_retry_after);
    assert_null(fx->resp.www_authenticate);
    assert_int_equal(cert_count(fx), before);
    assert_int_equal(cred_uses_left(fx, &c), 0);
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    id = last_pending_id(fx);

    assert_int_equal(approval_decide(fx->store, id, true, "test", "unit"), KP_OK);
    expect_status(fx, &r, 200, KP_OK);
    cert = resp_cert(fx, &fx->resp, 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->dev_key), 1);
    assert_int_equal(cert_count(fx), before + 1);
    /* served: the used OTP authenticates nothing more */
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_int_equal(approval_decide(fx->store, id, true, "test", "unit"), KP_ERR_NOT_FOUND);
}

static void test_manual_label_rejection_is_403_and_otp_is_tied_to_its_request(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;
    int64_t before = cert_count(fx), id;

    cred_new(fx, &c, "device-held2", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "held", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "held2.example", "DNS:a.example, IP:192.0.2.7", NULL));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    id = last_pending_id(fx);
    /* the used OTP does not start a second request with another key, another
     * subject or other SANs */
    set_body(&r, csr_b64(fx, new_key(fx, "P-256"), "held2.example", "DNS:a.example, IP:192.0.2.7",
                         NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    set_body(&r, csr_b64(fx, fx->dev_key, "held3.example", "DNS:a.example, IP:192.0.2.7", NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    set_body(&r, csr_b64(fx, fx->dev_key, "held2.example", "DNS:a.example", NULL));
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    /* the same key, subject and SANs signed again (other bytes; SANs in
     * another order) is the same request */
    set_body(&r, csr_b64(fx, fx->dev_key, "held2.example", "IP:192.0.2.7, DNS:a.example", NULL));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    assert_int_equal(last_pending_id(fx), id);
    assert_int_equal(approval_decide(fx->store, id, false, "test", "unit"), KP_OK);
    set_body(&r, csr_b64(fx, fx->dev_key, "held2.example", "DNS:a.example, IP:192.0.2.7", NULL));
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cert_count(fx), before);
}

/* RFC 7030 4.2.3 with a client that signs its CSR again on every retry, as
 * libest's estclient does: OTP, then mTLS. */
static void test_manual_label_retry_signed_again_is_picked_up(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct store_pending *p = NULL;
    struct cred c;
    int64_t before = cert_count(fx), id;
    X509 *cert;
    size_t l1, l2;
    unsigned char *d1, *d2;

    cred_new(fx, &c, "device-resign", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "held", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    d1 = csr_der(fx, fx->dev_key, "resign.example", "DNS:resign.example", NULL, &l1);
    d2 = csr_der(fx, fx->dev_key, "resign.example", "DNS:resign.example", NULL, &l2);
    assert_false(l1 == l2 && memcmp(d1, d2, l1) == 0); /* ECDSA: new signature */
    r.body = d1;
    r.body_len = l1;
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    id = last_pending_id(fx);
    assert_int_equal(store_pending_get(fx->store, id, &p), KP_OK);
    assert_string_equal(p->sans, "DNS:resign.example");
    assert_string_equal(p->key_type, "ec:P-256");
    assert_string_equal(p->ekus, "clientAuth");
    assert_string_equal(p->requester, "device-resign");
    assert_string_equal(p->auth_method, "otp");
    assert_int_equal(strlen(p->fingerprint), 64);
    store_pending_free(p);
    r.body = d2;
    r.body_len = l2;
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    assert_int_equal(last_pending_id(fx), id);
    assert_int_equal(approval_decide(fx->store, id, true, "test", "unit"), KP_OK);
    set_body(&r, csr_b64(fx, fx->dev_key, "resign.example", "DNS:resign.example", NULL));
    expect_status(fx, &r, 200, KP_OK);
    cert = resp_cert(fx, &fx->resp, 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->dev_key), 1);
    assert_int_equal(cert_count(fx), before + 1);

    /* mTLS with that certificate (its subject and SAN: mtls_subject_match):
     * each retry its own signature, one row */
    req_init(&r, EST_OP_SIMPLEENROLL, "held", EST_POST);
    r.peer_cert = cert;
    r.peer_verify = X509_V_OK;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "resign.example", "DNS:resign.example", NULL));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    id = last_pending_id(fx);
    set_body(&r, csr_b64(fx, fx->dev_key, "resign.example", "DNS:resign.example", NULL));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    assert_int_equal(last_pending_id(fx), id);
    /* another key is another request */
    set_body(&r, csr_b64(fx, new_key(fx, "P-256"), "resign.example", "DNS:resign.example", NULL));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    assert_int_equal(last_pending_id(fx), id + 1);
    assert_int_equal(approval_decide(fx->store, id, true, "test", "unit"), KP_OK);
    set_body(&r, csr_b64(fx, fx->dev_key, "resign.example", "DNS:resign.example", NULL));
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cert_count(fx), before + 2);
}

/* The binding of a retry is checked against the retry's own connection; a
 * CSR bound to the connection that submitted it does not pass on another. */
static void test_manual_label_retry_binds_to_its_own_connection(void **state)
{
    struct fixture *fx = *state;
    unsigned char b1[32], b2[32];
    struct treq r;
    struct cred c;
    int64_t id, before = cert_count(fx);
    const char *csr1;
    char *cb1, *cb2;

    for (size_t i = 0; i < sizeof(b1); i++) {
        b1[i] = (unsigned char)(i * 7 + 1);
        b2[i] = (unsigned char)(i * 13 + 3);
    }
    cb1 = keep(fx, base64_encode(b1, sizeof(b1), NULL));
    cb1[strcspn(cb1, "\n")] = '\0';
    cb2 = keep(fx, base64_encode(b2, sizeof(b2), NULL));
    cb2[strcspn(cb2, "\n")] = '\0';

    cred_new(fx, &c, "device-cb", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "heldcb", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    r.channel_binding = b1;
    r.channel_binding_len = sizeof(b1);
    csr1 = csr_b64(fx, fx->dev_key, "cb-held.example", NULL, cb1);
    set_body(&r, csr1);
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    id = last_pending_id(fx);
    /* a new connection: the first CSR replayed, or one without a binding */
    r.channel_binding = b2;
    expect_status(fx, &r, 400, KP_ERR_CHANNEL_BINDING);
    set_body(&r, csr_b64(fx, fx->dev_key, "cb-held.example", NULL, NULL));
    expect_status(fx, &r, 400, KP_ERR_CHANNEL_BINDING);
    /* signed again for this connection */
    set_body(&r, csr_b64(fx, fx->dev_key, "cb-held.example", NULL, cb2));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    assert_int_equal(last_pending_id(fx), id);
    assert_int_equal(approval_decide(fx->store, id, true, "test", "unit"), KP_OK);
    set_body(&r, csr1);
    expect_status(fx, &r, 400, KP_ERR_CHANNEL_BINDING);
    assert_int_equal(cert_count(fx), before);
    set_body(&r, csr_b64(fx, fx->dev_key, "cb-held.example", NULL, cb2));
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cert_count(fx), before + 1);
}

/* What was approved is what is issued: if the label's EKUs changed since the
 * operator saw the request, the approved request is refused. */
static void test_manual_label_refuses_what_was_not_approved(void **state)
{
    struct fixture *fx = *state;
    struct label_cfg *held = (struct label_cfg *)config_label(fx->cfg, "held");
    unsigned saved = held->ekus;
    struct treq r;
    struct cred c;
    int64_t id, before = cert_count(fx);

    cred_new(fx, &c, "device-eku", NULL, 1, 3600);
    req_init(&r, EST_OP_SIMPLEENROLL, "held", EST_POST);
    r.authorization = c.header;
    r.content_type = "application/pkcs10";
    set_body(&r, csr_b64(fx, fx->dev_key, "eku.example", NULL, NULL));
    expect_status(fx, &r, 202, KP_ERR_PENDING);
    id = last_pending_id(fx);
    assert_int_equal(approval_decide(fx->store, id, true, "test", "unit"), KP_OK);
    held->ekus |= 1u << EKU_SERVER_AUTH;
    handle(fx, &r);
    held->ekus = saved;
    assert_int_equal(fx->resp.status, 403);
    assert_int_equal(cert_count(fx), before);
    /* back as it was approved */
    expect_status(fx, &r, 200, KP_OK);
    assert_int_equal(cert_count(fx), before + 1);
}

/* ---- DTLS pre-shared keys (docs/coap.md) ---- */

/* A simpleenroll as the CoAP transport makes it after a PSK handshake. */
static void psk_req(struct fixture *fx, struct treq *r, enum est_op op, const char *label,
                    const char *identity, const char *cn, const char *san)
{
    req_init(r, op, label, EST_POST);
    r->psk_identity = identity;
    r->content_type = "application/pkcs10";
    set_body(r, csr_b64(fx, fx->dev_key, cn, san, NULL));
}

static struct audit_last audit_last_row(struct fixture *fx)
{
    struct audit_last last;
    memset(&last, 0, sizeof(last));
    assert_int_equal(store_audit_list(fx->store, 0, audit_keep_last, &last), KP_OK);
    return last;
}

static void test_psk_enrolls_its_identity_and_is_audited(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct audit_last last;
    struct store_cert *row = NULL;
    int64_t before = cert_count(fx);
    X509 *cert;
    char *serial;

    assert_non_null(est_server_psk(fx->srv));
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-01", "sensor-01.example.com",
            "DNS:sensor-01.example.com");
    expect_status(fx, &r, 200, KP_OK);
    cert = resp_cert(fx, &fx->resp, 1);
    assert_int_equal(X509_verify(cert, fx->ca_key), 1);
    assert_string_equal(fx->resp.auth_subject, "sensor-01");
    assert_int_equal(cert_count(fx), before + 1);
    serial = keep(fx, ca_serial_hex(cert));
    assert_int_equal(store_cert_get(fx->store, serial, &row), KP_OK);
    assert_string_equal(row->auth_method, "psk");
    assert_string_equal(row->requester, "sensor-01");
    assert_string_equal(row->label, "psk");
    store_cert_free(row);
    last = audit_last_row(fx);
    assert_string_equal(last.event, "simpleenroll");
    assert_string_equal(last.outcome, "ok");
    assert_string_equal(last.label, "psk");
    assert_string_equal(last.subject, "sensor-01");
    assert_string_equal(last.detail, serial);

    /* a PSK is not used up: the same identity enrolls again */
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-01", "sensor-01", NULL);
    expect_status(fx, &r, 200, KP_OK);
}

static void test_psk_serverkeygen_is_accepted(void **state)
{
    struct fixture *fx = *state;
    struct treq r;

    fx->cfg->est_serverkeygen = true;
    psk_req(fx, &r, EST_OP_SERVERKEYGEN, "psk", "sensor-01", "sensor-01", NULL);
    expect_status(fx, &r, 200, KP_OK);
    assert_true(fx->resp.body_secret);
    assert_string_equal(fx->resp.auth_subject, "sensor-01");
}

static void test_unknown_psk_identity_is_401_and_counted(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct audit_last last;
    int status = 0, n;

    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-99", "sensor-99", NULL);
    r.peer_addr = "192.0.2.99";
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    assert_non_null(fx->resp.www_authenticate);
    last = audit_last_row(fx);
    assert_string_equal(last.outcome, "unauthorized");
    assert_string_equal(last.subject, "sensor-99");
    assert_string_equal(last.detail, "unknown PSK identity");
    /* a prefix or an extension of a known identity is no identity */
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-0", "sensor-0", NULL);
    r.peer_addr = "192.0.2.98";
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-011", "sensor-011", NULL);
    r.peer_addr = "192.0.2.98";
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
    /* guessing identities is cut off as guessing OTPs is (auth_fail_limit 10) */
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-99", "sensor-99", NULL);
    r.peer_addr = "192.0.2.99";
    for (n = 0; n < 12 && status != 429; n++) {
        status = handle(fx, &r)->status;
        assert_true(status == 401 || status == 429);
    }
    assert_int_equal(status, 429);
    assert_int_equal(fx->resp.err, KP_ERR_RATE_LIMITED);
}

static void test_psk_on_another_label_is_403(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct audit_last last;
    int64_t before = cert_count(fx);

    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "", "sensor-01", "sensor-01", NULL);
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_non_null(strstr(fx->resp.body, "PSK is bound to another label"));
    last = audit_last_row(fx);
    assert_string_equal(last.outcome, "forbidden");
    assert_string_equal(last.label, "default");
    assert_string_equal(last.subject, "sensor-01");
    assert_int_equal(cert_count(fx), before);
}

static void test_label_without_allow_psk_refuses_its_psk(void **state)
{
    struct fixture *fx = *state;
    struct treq r;

    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "named", "sensor-02", "sensor-02", NULL);
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_non_null(strstr(fx->resp.body, "allow_psk"));
}

static void test_psk_certifies_only_its_identity(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    int64_t before = cert_count(fx);

    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-01", "sensor-02", NULL);
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_non_null(strstr(fx->resp.body, "PSK identity"));
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-01", "sensor-01.example.com",
            "DNS:sensor-02.example.com");
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-01", "sensor-01",
            "email:sensor-01@example.com");
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-01", NULL, NULL);
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "psk", "sensor-01", "Test EST CA", NULL);
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_int_equal(cert_count(fx), before);
}

static void test_psk_cannot_reenroll(void **state)
{
    struct fixture *fx = *state;
    struct treq r;

    psk_req(fx, &r, EST_OP_SIMPLEREENROLL, "psk", "sensor-01", "sensor-01", NULL);
    expect_status(fx, &r, 403, KP_ERR_FORBIDDEN);
    assert_non_null(strstr(fx->resp.body, "simplereenroll"));
    /* an unknown identity learns nothing more than 401 */
    psk_req(fx, &r, EST_OP_SIMPLEREENROLL, "psk", "sensor-98", "sensor-98", NULL);
    r.peer_addr = "192.0.2.97";
    expect_status(fx, &r, 401, KP_ERR_UNAUTHORIZED);
}

static void test_basic_or_a_certificate_takes_precedence_over_a_psk(void **state)
{
    struct fixture *fx = *state;
    struct treq r;
    struct cred c;

    /* a request with HTTP Basic is an OTP request, whatever psk_identity says */
    cred_new(fx, &c, "device-psk", NULL, 1, 3600);
    psk_req(fx, &r, EST_OP_SIMPLEENROLL, "default", "sensor-01", "sensor-01", NULL);
    r.authorization = c.header;
    expect_status(fx, &r, 200, KP_OK);
    assert_string_equal(fx->resp.auth_subject, "device-psk");
    assert_int_equal(cred_uses_left(fx, &c), 0);

    /* with a client certificate it is an mTLS request: the certificate's
     * subject is what may be certified, and the method is mtls */
    {
        X509 *old = enroll_with_otp(fx, "", fx->dev_key, "mtls-psk.example", NULL);
        psk_req(fx, &r, EST_OP_SIMPLEENROLL, "", "sensor-01", "mtls-psk.example", NULL);
        r.peer_cert = old;
        r.peer_verify = X509_V_OK;
        expect_status(fx, &r, 200, KP_OK);
        assert_string_equal(fx->resp.auth_subject, "CN=mtls-psk.example");
        /* and so is simplereenroll */
        psk_req(fx, &r, EST_OP_SIMPLEREENROLL, "", "sensor-01", "mtls-psk.example", NULL);
        r.peer_cert = old;
        r.peer_verify = X509_V_OK;
        expect_status(fx, &r, 200, KP_OK);
    }
}

/* ---- est_handle's answer itself (no HTTP) ---- */

static void core_req(struct est_request *r, enum est_op op, const char *label,
                     enum est_method method)
{
    memset(r, 0, sizeof(*r));
    r->op = op;
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->method = method;
    r->cred.cert_verify = X509_V_ERR_UNSPECIFIED;
    r->transport = "coaps";
    r->peer_addr = "192.0.2.11";
    r->id = 2;
}

/* A POSTed CSR as DER with the password of c. */
static void core_enroll_req(struct fixture *fx, struct est_request *r, enum est_op op,
                            const char *label, const struct cred *c, const char *entity,
                            const char *cn)
{
    core_req(r, op, label, EST_POST);
    r->content_type = EST_MEDIA_PKCS10;
    r->body = csr_der(fx, fx->dev_key, cn, NULL, NULL, &r->body_len);
    r->cred.user = entity;
    r->cred.password = c->otp;
}

static X509 *part_x509(struct fixture *fx, const struct est_part *part)
{
    const unsigned char *p = part->der;
    X509 *cert = d2i_X509(NULL, &p, (long)part->len);

    assert_non_null(cert);
    assert_ptr_equal(p, part->der + part->len);
    return defer(fx, free_x509, cert);
}

static void test_ops_table_names_every_operation(void **state)
{
    static const char *const coap[][2] = {
        {"crts", "cacerts"}, {"sen", "simpleenroll"}, {"sren", "simplereenroll"},
        {"att", "csrattrs"}, {"skg", "serverkeygen"},
    };
    (void)state;

    for (int op = 0; op < EST_OP__MAX; op++) {
        const struct est_op_info *i = est_op_info((enum est_op)op);
        assert_int_equal(i->op, op);
        assert_ptr_equal(est_op_by_name(i->name, strlen(i->name)), i);
        assert_string_equal(est_op_name((enum est_op)op), i->name);
    }
    for (size_t k = 0; k < sizeof(coap) / sizeof(coap[0]); k++) {
        const struct est_op_info *i = est_op_by_coap_name(coap[k][0], strlen(coap[k][0]));
        assert_non_null(i);
        assert_string_equal(i->name, coap[k][1]);
        assert_int_equal(strncmp(i->coap_rt, "ace.est.", 8), 0);
        assert_string_equal(i->coap_rt + 8, coap[k][0]);
    }
    assert_null(est_op_by_name("simpleenrollx", 13));
    assert_null(est_op_by_name("sen", 3));
    assert_null(est_op_by_coap_name("simpleenroll", 12));
    assert_null(est_op_info(EST_OP__MAX));
    assert_true(est_op_info(EST_OP_SIMPLEENROLL)->post &&
                est_op_info(EST_OP_SIMPLEENROLL)->enrolls);
    assert_false(est_op_info(EST_OP_CACERTS)->post || est_op_info(EST_OP_CACERTS)->enrolls);
    assert_true(est_label_valid("iot-fleet_2.a", 13));
    assert_false(est_label_valid("", 0));
    assert_false(est_label_valid("a/b", 3));
    assert_false(est_label_valid("a b", 3));
    assert_false(est_label_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", EST_LABEL_MAX + 1));
}

static void test_core_cacerts_is_one_certs_only_part_or_the_ca_alone(void **state)
{
    struct fixture *fx = *state;
    struct est_request r;
    struct est_answer ans;
    const unsigned char *p;
    PKCS7 *p7;

    core_req(&r, EST_OP_CACERTS, "iot", EST_GET);
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_DONE);
    assert_int_equal(ans.err, KP_OK);
    assert_int_equal(ans.nparts, 1);
    assert_int_equal(ans.parts[0].media, EST_MEDIA_CERTS);
    assert_false(ans.parts[0].secret);
    p = ans.parts[0].der;
    p7 = d2i_PKCS7(NULL, &p, (long)ans.parts[0].len);
    assert_non_null(p7);
    assert_int_equal(X509_cmp(sk_X509_value(p7->d.sign->cert, 0), fx->ca_cert), 0);
    PKCS7_free(p7);
    est_answer_cleanup(&ans);

    /* RFC 9148 5.3: application/pkix-cert is the CA certificate alone */
    r.accept = EST_MEDIA_PKIX_CERT;
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_DONE);
    assert_int_equal(ans.nparts, 1);
    assert_int_equal(ans.parts[0].media, EST_MEDIA_PKIX_CERT);
    assert_int_equal(X509_cmp(part_x509(fx, &ans.parts[0]), fx->ca_cert), 0);
    est_answer_cleanup(&ans);

    core_req(&r, EST_OP_CSRATTRS, "", EST_GET);
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_DONE);
    assert_int_equal(ans.parts[0].media, EST_MEDIA_CSRATTRS);
    assert_int_equal(ans.parts[0].der[0], 0x30);
    est_answer_cleanup(&ans);
}

static void test_core_failures_carry_the_error(void **state)
{
    struct fixture *fx = *state;
    struct est_request r;
    struct est_answer ans;

    core_req(&r, EST_OP_CACERTS, "nosuch", EST_POST);
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_FAILED);
    assert_int_equal(ans.err, KP_ERR_UNKNOWN_LABEL); /* the label before the method */
    assert_int_equal(ans.nparts, 0);
    core_req(&r, EST_OP_SERVERKEYGEN, "", EST_GET);
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.err, KP_ERR_NOT_FOUND); /* not enabled before the method */
    assert_string_equal(ans.detail, "operation not enabled");
    core_req(&r, EST_OP_SIMPLEENROLL, "", EST_GET);
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.err, KP_ERR_METHOD);
    assert_string_equal(ans.detail, "");
    est_answer_cleanup(&ans);
}

static void test_core_enroll_answers_der_and_pkix_cert_when_asked(void **state)
{
    struct fixture *fx = *state;
    struct est_request r;
    struct est_answer ans;
    struct cred c;
    X509 *cert;

    cred_new(fx, &c, "device-core", NULL, 2, 3600);
    core_enroll_req(fx, &r, EST_OP_SIMPLEENROLL, "", &c, "device-core", "core.example");
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_DONE);
    assert_int_equal(ans.nparts, 1);
    assert_int_equal(ans.parts[0].media, EST_MEDIA_CERTS);
    assert_string_equal(ans.auth_subject, "device-core");
    assert_string_equal(ans.auth_method, "otp");
    est_answer_cleanup(&ans);

    r.accept = EST_MEDIA_PKIX_CERT;
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_DONE);
    assert_int_equal(ans.parts[0].media, EST_MEDIA_PKIX_CERT);
    cert = part_x509(fx, &ans.parts[0]);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->dev_key), 1);
    assert_int_equal(X509_verify(cert, fx->ca_key), 1);
    est_answer_cleanup(&ans);
    assert_int_equal(cred_uses_left(fx, &c), 0);
}

/* The transport's decoding failure is refused where the body is read:
 * after authentication, without spending the OTP. */
static void test_core_body_error_is_400_after_authentication(void **state)
{
    struct fixture *fx = *state;
    struct est_request r;
    struct est_answer ans;
    struct cred c;

    cred_new(fx, &c, "device-body", NULL, 1, 3600);
    core_enroll_req(fx, &r, EST_OP_SIMPLEENROLL, "", &c, "device-body", "body.example");
    r.body = NULL;
    r.body_len = 0;
    r.body_error = "body is neither base64 nor DER";
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_FAILED);
    assert_int_equal(ans.err, KP_ERR_BASE64);
    assert_string_equal(ans.detail, "body is neither base64 nor DER");
    assert_int_equal(cred_uses_left(fx, &c), 1);
    r.cred.user = r.cred.password = NULL;
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.err, KP_ERR_UNAUTHORIZED);
    assert_null(ans.auth_method);
    est_answer_cleanup(&ans);
}

static void test_core_malformed_password_is_401(void **state)
{
    struct fixture *fx = *state;
    struct est_request r;
    struct est_answer ans;
    struct cred c;

    cred_new(fx, &c, "device-mal", NULL, 1, 3600);
    core_enroll_req(fx, &r, EST_OP_SIMPLEENROLL, "", &c, "device-mal", "mal.example");
    r.cred.user = r.cred.password = NULL;
    r.cred.password_malformed = true;
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_FAILED);
    assert_int_equal(ans.err, KP_ERR_UNAUTHORIZED);
    assert_string_equal(ans.detail, ""); /* a 401 tells nothing more */
    assert_string_equal(ans.auth_method, "otp");
    assert_int_equal(cred_uses_left(fx, &c), 1);
    est_answer_cleanup(&ans);
}

static void test_core_held_request_is_held_with_retry_after(void **state)
{
    struct fixture *fx = *state;
    struct est_request r;
    struct est_answer ans;
    struct cred c;

    cred_new(fx, &c, "device-hold", NULL, 1, 3600);
    core_enroll_req(fx, &r, EST_OP_SIMPLEENROLL, "held", &c, "device-hold", "hold.example");
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_HELD);
    assert_int_equal(ans.err, KP_OK);
    assert_int_equal(ans.nparts, 0);
    assert_int_equal(ans.retry_after, fx->cfg->est_retry_after);
    assert_non_null(strstr(ans.detail, "is waiting for approval"));
    est_answer_cleanup(&ans);
}

static void test_core_serverkeygen_answers_two_parts(void **state)
{
    struct fixture *fx = *state;
    struct est_request r;
    struct est_answer ans;
    struct cred c;
    const unsigned char *p;
    PKCS8_PRIV_KEY_INFO *p8;
    EVP_PKEY *key;
    X509 *cert;

    fx->cfg->est_serverkeygen = true;
    cred_new(fx, &c, "device-skg2", NULL, 1, 3600);
    core_enroll_req(fx, &r, EST_OP_SERVERKEYGEN, "", &c, "device-skg2", "skg2.example");
    r.accept = EST_MEDIA_PKIX_CERT;
    est_handle(fx->srv, &r, &ans);
    assert_int_equal(ans.outcome, EST_DONE);
    assert_int_equal(ans.nparts, 2);
    assert_int_equal(ans.parts[0].media, EST_MEDIA_PKCS8);
    assert_true(ans.parts[0].secret);
    assert_int_equal(ans.parts[1].media, EST_MEDIA_PKIX_CERT);
    assert_false(ans.parts[1].secret);
    p = ans.parts[0].der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)ans.parts[0].len);
    assert_non_null(p8);
    key = defer(fx, free_pkey, EVP_PKCS82PKEY(p8));
    PKCS8_PRIV_KEY_INFO_free(p8);
    cert = part_x509(fx, &ans.parts[1]);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
    est_answer_cleanup(&ans);
}

#define T(f) cmocka_unit_test_teardown(f, fx_reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_route_finds_every_operation_without_a_label),
        T(test_psk_enrolls_its_identity_and_is_audited),
        T(test_psk_serverkeygen_is_accepted),
        T(test_unknown_psk_identity_is_401_and_counted),
        T(test_psk_on_another_label_is_403),
        T(test_label_without_allow_psk_refuses_its_psk),
        T(test_psk_certifies_only_its_identity),
        T(test_psk_cannot_reenroll),
        T(test_basic_or_a_certificate_takes_precedence_over_a_psk),
        T(test_route_takes_the_label_segment),
        T(test_route_honours_the_configured_base_path),
        T(test_route_outside_the_base_path_is_not_found),
        T(test_route_unknown_operation_is_not_found),
        T(test_route_bad_label_is_unknown_label),
        T(test_route_extra_segments_are_not_found),
        T(test_route_trailing_slash_is_not_found),
        T(test_get_cacerts_answers_the_ca_as_certs_only),
        T(test_get_csrattrs_answers_application_csrattrs),
        T(test_wrong_method_is_405),
        T(test_head_answers_as_get),
        T(test_unknown_label_is_404),
        T(test_serverkeygen_and_fullcmc_are_404_by_default),
        T(test_simpleenroll_without_credentials_is_401_with_challenge),
        T(test_simpleenroll_with_valid_otp_issues_and_records),
        T(test_reused_otp_is_rejected),
        T(test_otp_with_two_uses_enrolls_twice),
        T(test_wrong_or_foreign_otp_is_401),
        T(test_otp_bound_to_another_label_is_403),
        T(test_otp_certifies_only_its_entity_names_by_default),
        T(test_subject_bound_to_the_otp_binds_on_any_label),
        T(test_label_without_otp_refuses_otp),
        T(test_wrong_content_type_is_415),
        T(test_missing_content_type_is_400),
        T(test_junk_body_is_400_and_keeps_the_otp),
        T(test_csr_with_bad_signature_is_400),
        T(test_raw_der_body_is_accepted),
        T(test_profile_refusal_is_400_with_the_reason),
        T(test_accept_json_gives_a_json_error_body),
        T(test_error_body_is_text_without_accept_json),
        T(test_json_error_escapes_the_detail),
        T(test_simplereenroll_without_peer_certificate_is_401),
        T(test_simplereenroll_with_same_subject_is_200),
        T(test_simplereenroll_with_different_subject_is_403),
        T(test_unverified_peer_certificate_is_401),
        T(test_simpleenroll_with_client_certificate_must_keep_the_subject),
        T(test_label_without_mtls_refuses_client_certificates),
        T(test_client_certificate_stays_under_its_label),
        T(test_simplereenroll_compares_subjects_exactly),
        T(test_csr_with_a_ca_subject_is_403_and_keeps_the_otp),
        T(test_revoked_client_certificate_is_401),
        T(test_revoked_otp_is_401),
        T(test_refusals_and_issues_are_audited),
        T(test_required_channel_binding_is_checked),
        T(test_server_refuses_a_missing_otp_key),
        T(test_server_refuses_fullcmc),
        T(test_json_error_with_non_utf8_detail_falls_back),
        T(test_serverkeygen_answers_the_key_then_its_certificate),
        T(test_serverkeygen_refuses_protection_it_cannot_give),
        T(test_manual_label_holds_then_issues_after_approval),
        T(test_manual_label_rejection_is_403_and_otp_is_tied_to_its_request),
        T(test_manual_label_retry_signed_again_is_picked_up),
        T(test_manual_label_retry_binds_to_its_own_connection),
        T(test_manual_label_refuses_what_was_not_approved),
        T(test_ops_table_names_every_operation),
        T(test_core_cacerts_is_one_certs_only_part_or_the_ca_alone),
        T(test_core_failures_carry_the_error),
        T(test_core_enroll_answers_der_and_pkix_cert_when_asked),
        T(test_core_body_error_is_400_after_authentication),
        T(test_core_malformed_password_is_401),
        T(test_core_held_request_is_held_with_retry_after),
        T(test_core_serverkeygen_answers_two_parts),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
