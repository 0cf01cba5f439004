/* The admin side as the HTTP transport drives it: admin_owns, then
 * admin_handle and http_admin_reply against a real deployment (CA, OTP key, config with an admin
 * token, SQLite store with a certificate, an OTP and a revocation) built once
 * per process in a scratch directory.
 *
 * Input: four lines, each ended by "\n", then the body (every byte left).
 *   1 method         GET, POST, DELETE, ...
 *   2 path           e.g. /admin/certs/SERIAL/revoke, /metrics, /crl/default.crl
 *   3 query          without the "?"; an empty line means none
 *   4 Authorization  "token" stands for the right bearer token; else as is
 * Lines past the end of the input are empty; a NUL ends a line.
 *
 * Checked: admin_owns said yes; the status is one the API answers with; a
 * body and content type always; JSON bodies parse and errors carry "error"
 * and "message"; WWW-Authenticate (Bearer) exactly on 401; without the token
 * nothing but 401 or the public CRL/404 comes back; a 200 CRL parses and
 * verifies under its CA. */
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "auth/otp.h"
#include "ca/ca.h"
#include "core/config.h"
#include "core/xalloc.h"
#include "est/est.h"
#include "http/reply.h"
#include "store/store.h"
#include "deployment.h"
#include "support.h"

#define NLINES 4
#define TOKEN "fuzz-admin-token"

struct deployment {
    struct fuzz_deployment *d;
    struct admin_server *admin;
};

static struct deployment *dep;

static void deployment_free(void)
{
    if (dep == NULL)
        return;
    admin_server_free(dep->admin);
    fuzz_deployment_free(dep->d);
    free(dep);
    dep = NULL;
}

/* A certificate row and its revocation, so list, show and the CRL have data. */
static void seed_store(void)
{
    unsigned char der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    struct store_cert c = {.serial = "0a1b2c",
                           .label = "default",
                           .subject = "CN=seed.example",
                           .sans = "DNS:seed.example",
                           .not_before = 1,
                           .not_after = 2000000000,
                           .issued_at = 10,
                           .requester = "seed",
                           .auth_method = "otp",
                           .status = "valid",
                           .der = der,
                           .der_len = sizeof(der)};
    struct store_audit ev = {.event = "fuzz", .outcome = "ok"};
    struct store_otp o = {.entity_id = "dev",
                          .created_at = 1,
                          .expires_at = 2000000000,
                          .uses_left = 5,
                          .uses_total = 5};
    unsigned char hash[STORE_OTP_HASH_LEN] = {1};
    int64_t id;

    FUZZ_CHECK(store_issue(dep->d->store, &c, 0, &ev) == KP_OK);
    c.serial = "0d0e0f";
    FUZZ_CHECK(store_issue(dep->d->store, &c, 0, &ev) == KP_OK);
    FUZZ_CHECK(store_cert_revoke(dep->d->store, "0d0e0f", "keyCompromise", 100, &ev) == KP_OK);
    FUZZ_CHECK(store_otp_insert(dep->d->store, hash, &o, &id) == KP_OK);
}

static void deployment_new(void)
{
    unsigned char md[32];
    char hex[65], *text;

    fuzz_quiet();
    dep = xcalloc(1, sizeof(*dep));
    FUZZ_CHECK(EVP_Digest(TOKEN, strlen(TOKEN), md, NULL, EVP_sha256(), NULL) == 1);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    text = xasprintf("[tls]\ncert = \"tls.crt\"\nkey = \"tls.key\"\n"
                     "[store]\nurl = \"sqlite:admin.db\"\n"
                     "[otp]\nkey_file = \"otp.key\"\n"
                     "[admin]\ntoken_sha256 = \"%s\"\nclient_subjects = \"CN=ops\"\n"
                     "client_ca = \"ca.crt\"\nclient_ca_may_issue = true\n"
                     "[label.default]\nca_cert = \"ca.crt\"\nca_key = \"ca.key\"\n"
                     "[label.iot]\nca_cert = \"ca.crt\"\nca_key = \"ca.key\"\n",
                     hex);
    dep->d = fuzz_deployment_new("Fuzz Admin CA", text);
    free(text);
    dep->admin = admin_server_new(dep->d->cfg, dep->d->est);
    seed_store();
    /* after fuzz_scratch_dir's handler, so it runs first: close, then delete */
    atexit(deployment_free);
}

static bool is_json_error(const struct http_answer *resp)
{
    json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
    bool ok = j != NULL && json_is_string(json_object_get(j, "error")) &&
              json_is_string(json_object_get(j, "message"));
    json_decref(j);
    return ok;
}

static void check_crl(const struct http_answer *resp)
{
    const unsigned char *p = (const unsigned char *)resp->body;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)resp->body_len);

    FUZZ_CHECK(crl != NULL && p == (const unsigned char *)resp->body + resp->body_len);
    FUZZ_CHECK(X509_CRL_verify(crl, dep->d->ca_key) == 1);
    X509_CRL_free(crl);
}

static void check_response(const struct admin_request *req, const struct http_answer *resp,
                           bool authorized)
{
    static const int statuses[] = {200, 201, 400, 401, 404, 405, 409, 413, 500, 503};
    bool known = false;
    /* the CRL directory itself ("/crl") is the CRL handler's too */
    bool crl = strncmp(req->path, "/crl", 4) == 0 && (req->path[4] == '/' || req->path[4] == '\0');

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        known |= resp->status == statuses[i];
    FUZZ_CHECK(known);
    FUZZ_CHECK(resp->body != NULL && resp->content_type != NULL && resp->body_len > 0);
    FUZZ_CHECK((resp->status == 401) == (resp->www_authenticate != NULL));
    FUZZ_CHECK((resp->status == 405) == (resp->allow != NULL));
    FUZZ_CHECK(resp->www_authenticate == NULL ||
               strncmp(resp->www_authenticate, "Bearer ", 7) == 0);
    if (!authorized && !crl)
        FUZZ_CHECK(resp->status == 401 || resp->status == 405 ||
                   (resp->status == 404 && strcmp(req->path, "/metrics") != 0));
    if (crl && resp->status == 200)
        check_crl(resp);
    else if (strcmp(resp->content_type, "application/json") == 0) {
        json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
        FUZZ_CHECK(j != NULL);
        json_decref(j);
        if (resp->status >= 400)
            FUZZ_CHECK(is_json_error(resp));
    } else if (crl) {
        /* the CRLs are public, next to EST: their errors are EST's text */
        FUZZ_CHECK(resp->status >= 400 &&
                   strcmp(resp->content_type, "text/plain; charset=utf-8") == 0);
    } else {
        FUZZ_CHECK(strcmp(req->path, "/metrics") == 0 && resp->status == 200);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line[NLINES], *auth = NULL;
    size_t off = 0;
    struct admin_request req = {0};
    struct admin_response aresp;
    struct http_answer resp = {0};
    bool authorized;

    if (dep == NULL)
        deployment_new();
    for (size_t i = 0; i < NLINES; i++) {
        const uint8_t *nl = off < size ? memchr(data + off, '\n', size - off) : NULL;
        size_t end = nl != NULL ? (size_t)(nl - data) : size;
        line[i] = fuzz_cstring(data + off, end - off);
        off = nl != NULL ? end + 1 : size;
    }
    if (line[1][0] != '/' || !admin_owns(dep->admin, line[1]))
        goto out;
    authorized = strcmp(line[3], "token") == 0;
    if (authorized)
        auth = xstrdup("Bearer " TOKEN);
    else if (line[3][0] != '\0')
        auth = xstrdup(line[3]);
    req.method = line[0];
    req.path = line[1];
    req.query = line[2][0] != '\0' ? line[2] : NULL;
    req.body = data + off;
    req.body_len = size - off;
    req.authorization = auth;
    req.peer_verify = -1;
    req.peer_addr = "192.0.2.20";
    admin_handle(dep->admin, &req, &aresp);
    http_admin_reply(&resp, &aresp, NULL);
    admin_response_cleanup(&aresp);
    check_response(&req, &resp, authorized);
    http_answer_cleanup(&resp);
    ERR_clear_error();
out:
    free(auth);
    for (size_t i = 0; i < NLINES; i++)
        free(line[i]);
    return 0;
}
