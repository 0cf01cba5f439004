/* The EST core as the HTTP transport drives it (RFC 7030 4): http_route_est,
 * the headers and body through http_est_input_fill, est_handle against a real
 * deployment (CA, OTP key, config, SQLite store)
 * built once per process in a scratch directory.
 *
 * Input: seven lines, each ended by "\n", then the body (every byte left).
 *   1 operation      cacerts, simpleenroll, simplereenroll, csrattrs, ...
 *   2 label          an empty line is the default label
 *   3 method         GET, HEAD, POST; anything else is another method
 *   4 Content-Type   an empty line means the header is absent
 *   5 Accept         likewise
 *   6 Authorization  likewise
 *   7 TLS            words separated by spaces: "mtls" presents a client
 *                    certificate issued by the label CA and verified;
 *                    "untrusted" presents it with a failed verification;
 *                    "cb" sets a channel binding of 32 bytes 0xcb
 * Lines past the end of the input are empty; a NUL ends a line, as it would
 * end a header. Unless http_route_est accepts "/.well-known/est[/label]/op" the
 * input is dropped: the transport answers such paths itself.
 *
 * Credentials the seeds use: Basic device-001:fuzz-otp-any (any label, 2^40
 * uses), device-002:fuzz-otp-iot (label iot only), device-003:fuzz-otp-expired
 * (expired). The client certificate has the subject and SANs of
 * tests/data/csr/ec-p256.der: CN=ec-p256.example, DNS:ec-p256.example,
 * IP:192.0.2.1.
 *
 * est.serverkeygen is on; the label "held" has approval = "manual".
 *
 * Checked: the status is one EST answers with (429 and 202 only with
 * Retry-After, though the limits are off here) and matches resp.err; every
 * answer has a body and a content type; WWW-Authenticate exactly on 401; a
 * 401 or 5xx tells nothing beyond the default message; a 200 carries valid
 * base64 of the right object (for serverkeygen: a multipart body whose
 * PKCS#8 key matches its certificate); and a certificate is stored exactly
 * when an enrollment answers 200 (store_cert_count before and after). */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/otp.h"
#include "ca/ca.h"
#include "core/base64.h"
#include "core/config.h"
#include "core/xalloc.h"
#include "est/est.h"
#include "http/est_input.h"
#include "http/reply.h"
#include "http/route.h"
#include "pki/csrattrs.h"
#include "store/store.h"
#include "deployment.h"
#include "support.h"

#define NLINES 7
#define CB_LEN 32
#define PEER_NAME "ec-p256.example"
#define PEER_SANS "DNS:ec-p256.example,IP:192.0.2.1"

/* No failed-authentication limit: a fuzzer that guesses wrong credentials
 * ten times would otherwise get nothing but 429 for the next minute. */
static const char config_text[] = "[server]\n"
                                  "auth_fail_limit = 0\n"
                                  "auth_fail_limit_addr = 0\n"
                                  "[est]\n"
                                  "serverkeygen = true\n"
                                  "[tls]\n"
                                  "cert = \"tls.crt\"\n"
                                  "key = \"tls.key\"\n"
                                  "[store]\n"
                                  "url = \"sqlite:est.db\"\n"
                                  "[otp]\n"
                                  "key_file = \"otp.key\"\n"
                                  "[label.default]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  /* the harness's client certificate is not in the store */
                                  "mtls_accept_external = true\n"
                                  "[label.iot]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "key_types = \"ec:P-256\"\n"
                                  "max_sans = 2\n"
                                  "csrattrs_extra = \"1.3.6.1.1.1.1.22, 2.5.4.5\"\n"
                                  "[label.held]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "approval = \"manual\"\n"
                                  "[label.nootp]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "allow_otp = false\n"
                                  "[label.bound]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "channel_binding = \"required\"\n"
                                  "[label.nomtls]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "allow_mtls = false\n"
                                  "[label.open]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "mtls_subject_match = false\n"
                                  "reenroll_allow_change = true\n"
                                  "eku = \"clientAuth, serverAuth\"\n"
                                  "max_validity_days = 30\n"
                                  "[label.nosan]\n"
                                  "ca_cert = \"ca.crt\"\n"
                                  "ca_key = \"ca.key\"\n"
                                  "key_types = \"ec:P-384, rsa:2048\"\n"
                                  "max_sans = 0\n";

/* The deployment every input is sent to. */
struct deployment {
    struct fuzz_deployment *d;
    EVP_PKEY *peer_key;
    X509 *peer_cert; /* what "mtls" presents */
    unsigned char binding[CB_LEN];
    uint64_t next_id;
};

static struct deployment *dep;

/* A client certificate from the CA, as an earlier enrollment would give. */
static X509 *peer_cert_new(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *key)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509_EXTENSION *ext;
    X509V3_CTX ctx;

    FUZZ_CHECK(cert != NULL && name != NULL);
    FUZZ_CHECK(X509_set_version(cert, X509_VERSION_3) == 1);
    FUZZ_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(cert), 0x5eed) == 1);
    FUZZ_CHECK(X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) == 1);
    FUZZ_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                          (const unsigned char *)PEER_NAME, -1, -1, 0) == 1);
    FUZZ_CHECK(X509_set_subject_name(cert, name) == 1);
    FUZZ_CHECK(X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL);
    FUZZ_CHECK(X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 86400) != NULL);
    FUZZ_CHECK(X509_set_pubkey(cert, key) == 1);
    X509V3_set_ctx(&ctx, ca_cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, PEER_SANS);
    FUZZ_CHECK(ext != NULL && X509_add_ext(cert, ext, -1) == 1);
    FUZZ_CHECK(X509_sign(cert, ca_key, EVP_sha256()) > 0);
    X509_EXTENSION_free(ext);
    X509_NAME_free(name);
    return cert;
}

static void otp_add(const unsigned char key[OTP_KEY_LEN], const char *entity, const char *otp,
                    const char *label, int64_t ttl, int64_t uses)
{
    time_t now = time(NULL);
    struct store_otp o = {.entity_id = (char *)entity,
                          .label = (char *)label,
                          .created_at = now - 7200,
                          .expires_at = now + ttl,
                          .uses_left = uses,
                          .uses_total = uses};
    unsigned char hash[STORE_OTP_HASH_LEN];
    int64_t id = 0;

    otp_hash(key, otp, strlen(otp), hash);
    FUZZ_CHECK(store_otp_insert(dep->d->store, hash, &o, &id) == KP_OK);
}

static void deployment_free(void)
{
    if (dep == NULL)
        return;
    fuzz_deployment_free(dep->d);
    X509_free(dep->peer_cert);
    EVP_PKEY_free(dep->peer_key);
    free(dep);
    dep = NULL;
}

static void deployment_new(void)
{
    fuzz_quiet();
    dep = xcalloc(1, sizeof(*dep));
    memset(dep->binding, 0xcb, sizeof(dep->binding));
    dep->d = fuzz_deployment_new("Fuzz EST CA", config_text);
    dep->peer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FUZZ_CHECK(dep->peer_key != NULL);
    dep->peer_cert = peer_cert_new(dep->d->ca_cert, dep->d->ca_key, dep->peer_key);
    otp_add(dep->d->otp_key, "device-001", "fuzz-otp-any", NULL, 365L * 86400, (int64_t)1 << 40);
    otp_add(dep->d->otp_key, "device-002", "fuzz-otp-iot", "iot", 365L * 86400, (int64_t)1 << 40);
    otp_add(dep->d->otp_key, "device-003", "fuzz-otp-expired", NULL, -3600, 1);
    /* after fuzz_scratch_dir's handler, so it runs first: close, then delete */
    atexit(deployment_free);
}

/* 1 when word is one of the space-separated words of s. */
static int has_word(const char *s, const char *word)
{
    size_t n = strlen(word);

    while (*s != '\0') {
        size_t len;
        s += strspn(s, " ");
        len = strcspn(s, " ");
        if (len == n && memcmp(s, word, n) == 0)
            return 1;
        s += len;
    }
    return 0;
}

static int64_t cert_count(void)
{
    int64_t n = -1;

    FUZZ_CHECK(store_cert_count(dep->d->store, &n) == KP_OK && n >= 0);
    return n;
}

/* A 401 says nothing about why (no OTP state oracle), a 5xx nothing internal. */
static void check_default_message(const struct http_answer *resp)
{
    char *want;

    if (strcmp(resp->content_type, "application/json") == 0)
        want = xasprintf("{\"error\":\"%s\",\"message\":\"%s\"}", kp_err_code(resp->err),
                         kp_err_message(resp->err));
    else
        want = xasprintf("%s\n", kp_err_message(resp->err));
    FUZZ_CHECK(strcmp(resp->body, want) == 0);
    free(want);
}

/* The certificates of a certs-only PKCS#7 (RFC 7030 4.1.3, 4.2.3). */
static int certs_only_count(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
    int n;

    FUZZ_CHECK(p7 != NULL && p == der + len && PKCS7_type_is_signed(p7));
    n = sk_X509_num(p7->d.sign->cert);
    PKCS7_free(p7);
    return n;
}

/* The base64 body of the part with this Content-Type, decoded (caller frees). */
static unsigned char *part_der(const char *body, const char *ctype, size_t *len)
{
    char *hdr = xasprintf("Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", ctype);
    const char *start = strstr(body, hdr), *end;
    unsigned char *der = NULL;

    FUZZ_CHECK(start != NULL);
    start += strlen(hdr);
    end = strstr(start, "\r\n--");
    FUZZ_CHECK(end != NULL);
    FUZZ_CHECK(base64_decode(start, (size_t)(end - start), &der, len) == KP_OK);
    free(hdr);
    return der;
}

/* RFC 7030 4.4.2: the key part (plain PKCS#8 or an EnvelopedData), then a
 * certs-only part with one certificate; a plain key matches it. */
static void check_serverkeygen(const struct http_answer *resp)
{
    const char *key_ct = strstr(resp->body, "Content-Type: application/pkcs8\r\n")
                             ? "application/pkcs8"
                             : "application/pkcs7-mime; smime-type=server-generated-key";
    const char *certs_ct = "application/pkcs7-mime; smime-type=certs-only";
    unsigned char *kder, *cder;
    const unsigned char *p;
    size_t klen = 0, clen = 0;
    PKCS7 *p7;

    FUZZ_CHECK(!resp->base64_cte && resp->body_secret);
    FUZZ_CHECK(strncmp(resp->content_type, "multipart/mixed; boundary=", 26) == 0);
    FUZZ_CHECK(strstr(resp->body, key_ct) < strstr(resp->body, certs_ct));
    kder = part_der(resp->body, key_ct, &klen);
    cder = part_der(resp->body, certs_ct, &clen);
    p = cder;
    p7 = d2i_PKCS7(NULL, &p, (long)clen);
    FUZZ_CHECK(p7 != NULL && p == cder + clen && PKCS7_type_is_signed(p7));
    FUZZ_CHECK(sk_X509_num(p7->d.sign->cert) == 1);
    if (strcmp(key_ct, "application/pkcs8") == 0) {
        PKCS8_PRIV_KEY_INFO *p8;
        EVP_PKEY *key;
        p = kder;
        p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)klen);
        FUZZ_CHECK(p8 != NULL && p == kder + klen);
        key = EVP_PKCS82PKEY(p8);
        FUZZ_CHECK(key != NULL);
        FUZZ_CHECK(EVP_PKEY_eq(key, X509_get0_pubkey(sk_X509_value(p7->d.sign->cert, 0))) == 1);
        EVP_PKEY_free(key);
        PKCS8_PRIV_KEY_INFO_free(p8);
    }
    PKCS7_free(p7);
    OPENSSL_clear_free(kder, klen);
    free(cder);
}

static void check_ok(const struct est_request *req, const struct http_answer *resp, int64_t issued)
{
    unsigned char *der = NULL;
    size_t der_len = 0, count = 0;

    if (req->op == EST_OP_SERVERKEYGEN) {
        FUZZ_CHECK(issued == 1 && resp->err == KP_OK && resp->auth_subject[0] != '\0');
        check_serverkeygen(resp);
        return;
    }
    FUZZ_CHECK(resp->err == KP_OK && resp->base64_cte);
    FUZZ_CHECK(base64_decode(resp->body, resp->body_len, &der, &der_len) == KP_OK);
    switch (req->op) {
    case EST_OP_CACERTS:
        FUZZ_CHECK(issued == 0);
        FUZZ_CHECK(strcmp(resp->content_type, "application/pkcs7-mime; smime-type=certs-only") ==
                   0);
        FUZZ_CHECK(certs_only_count(der, der_len) >= 1);
        break;
    case EST_OP_CSRATTRS:
        FUZZ_CHECK(issued == 0);
        FUZZ_CHECK(strcmp(resp->content_type, "application/csrattrs") == 0);
        FUZZ_CHECK(csrattrs_check(der, der_len, &count) == KP_OK);
        break;
    case EST_OP_SIMPLEENROLL:
    case EST_OP_SIMPLEREENROLL:
        FUZZ_CHECK(issued == 1);
        FUZZ_CHECK(strcmp(resp->content_type, "application/pkcs7-mime; smime-type=certs-only") ==
                   0);
        FUZZ_CHECK(certs_only_count(der, der_len) == 1);
        FUZZ_CHECK(resp->auth_subject[0] != '\0');
        break;
    default:
        FUZZ_CHECK(!"200 for an operation that is not offered");
    }
    free(der);
}

static void check_response(const struct est_request *req, const struct http_answer *resp,
                           int64_t issued)
{
    static const int statuses[] = {200, 202, 400, 401, 403, 404, 405, 413, 415, 429, 500, 503};
    int known = 0;

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        known |= resp->status == statuses[i];
    FUZZ_CHECK(known);
    FUZZ_CHECK((unsigned)resp->err < KP_ERR__MAX);
    FUZZ_CHECK(resp->status == kp_err_http_status(resp->err));
    FUZZ_CHECK(resp->body != NULL && resp->content_type != NULL);
    FUZZ_CHECK(strlen(resp->body) == resp->body_len);
    FUZZ_CHECK(resp->www_authenticate == NULL
                   ? resp->status != 401
                   : resp->status == 401 &&
                         strcmp(resp->www_authenticate, HTTP_BASIC_CHALLENGE) == 0);
    FUZZ_CHECK(resp->status != 429 || resp->retry_after > 0);
    FUZZ_CHECK(resp->status != 202 || resp->retry_after == dep->d->cfg->est_retry_after);
    FUZZ_CHECK(memchr(resp->auth_subject, '\0', sizeof(resp->auth_subject)) != NULL);
    if (resp->status == 200) {
        check_ok(req, resp, issued);
        return;
    }
    FUZZ_CHECK(issued == 0);
    FUZZ_CHECK(!resp->base64_cte);
    if (resp->status == 401 || resp->status >= 500)
        check_default_message(resp);
}

/* The core's answer itself: parts only when done, of the media each
 * operation answers with; a refusal has its error; HTTP asks for no
 * pkix-cert, so none comes back. */
static void check_answer(const struct est_request *req, const struct est_answer *ans)
{
    FUZZ_CHECK(ans->nparts <= EST_PARTS_MAX);
    FUZZ_CHECK((ans->outcome == EST_DONE) == (ans->nparts > 0));
    FUZZ_CHECK((ans->outcome == EST_FAILED) == (ans->err != KP_OK));
    FUZZ_CHECK(ans->outcome != EST_HELD || ans->retry_after > 0);
    FUZZ_CHECK(memchr(ans->detail, '\0', sizeof(ans->detail)) != NULL);
    for (size_t i = 0; i < ans->nparts; i++) {
        FUZZ_CHECK(ans->parts[i].der != NULL && ans->parts[i].len > 0);
        FUZZ_CHECK(ans->parts[i].media != EST_MEDIA_PKIX_CERT);
    }
    if (ans->outcome == EST_DONE && req->op == EST_OP_SERVERKEYGEN)
        FUZZ_CHECK(ans->nparts == 2 && ans->parts[0].secret &&
                   ans->parts[1].media == EST_MEDIA_CERTS);
    else if (ans->outcome == EST_DONE)
        FUZZ_CHECK(ans->nparts == 1 && !ans->parts[0].secret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line[NLINES];
    size_t off = 0;
    struct est_request req;
    struct http_est_input in;
    struct est_answer ans;
    struct http_answer resp = {0};
    char *path;
    int64_t before;

    if (dep == NULL)
        deployment_new();
    for (size_t i = 0; i < NLINES; i++) {
        const uint8_t *nl = off < size ? memchr(data + off, '\n', size - off) : NULL;
        size_t end = nl != NULL ? (size_t)(nl - data) : size;
        line[i] = fuzz_cstring(data + off, end - off);
        off = nl != NULL ? end + 1 : size;
    }

    memset(&req, 0, sizeof(req));
    path =
        xasprintf("%s%s%s/%s", dep->d->cfg->est_base_path, line[1][0] ? "/" : "", line[1], line[0]);
    if (http_route_est(dep->d->cfg->est_base_path, path, &req) != KP_OK)
        goto out;
    req.method = strcmp(line[2], "GET") == 0 || strcmp(line[2], "HEAD") == 0 ? EST_GET
                 : strcmp(line[2], "POST") == 0                              ? EST_POST
                                                                             : EST_OTHER;
    http_est_input_fill(&req, &in, line[3][0] ? line[3] : NULL, line[4][0] ? line[4] : NULL,
                        line[5][0] ? line[5] : NULL, data + off, size - off);
    req.cred.cert_verify = X509_V_ERR_UNSPECIFIED;
    if (has_word(line[6], "mtls") || has_word(line[6], "untrusted")) {
        req.cred.cert = dep->peer_cert;
        req.cred.cert_verify = has_word(line[6], "mtls") ? X509_V_OK : X509_V_ERR_CERT_UNTRUSTED;
    }
    if (has_word(line[6], "cb")) {
        req.channel_binding = dep->binding;
        req.channel_binding_len = sizeof(dep->binding);
    }
    req.transport = "https";
    req.peer_addr = "192.0.2.10";
    req.id = ++dep->next_id;

    before = cert_count();
    est_handle(dep->d->est, &req, &ans);
    check_answer(&req, &ans);
    http_est_input_cleanup(&in);
    http_est_reply(&resp, req.op, &ans, line[4][0] ? line[4] : NULL, NULL);
    est_answer_cleanup(&ans);
    check_response(&req, &resp, cert_count() - before);
    http_answer_cleanup(&resp);
    FUZZ_CHECK(ERR_peek_error() == 0);
out:
    free(path);
    for (size_t i = 0; i < NLINES; i++)
        free(line[i]);
    return 0;
}
