/* Routing and authentication of the admin API. */
#include "admin/admin.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"

#define ADMIN_PREFIX "/admin"
#define ADMIN_BODY_MAX (64 * 1024)

struct admin_server *admin_server_new(const struct kp_config *cfg, struct est_server *est)
{
    struct admin_server *a = xcalloc(1, sizeof(*a));

    a->cfg = cfg;
    a->est = est;
    a->store = est_server_store(est);
    pthread_mutex_init(&a->crl_lock, NULL);
    a->crls = xcalloc(est_server_label_count(est) + 1, sizeof(*a->crls));
    a->crl_owner = xcalloc(est_server_label_count(est) + 1, sizeof(*a->crl_owner));
    admin_crl_group(a);
    return a;
}

void admin_server_free(struct admin_server *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < est_server_label_count(a->est); i++)
        OPENSSL_free(a->crls[i].der);
    free(a->crls);
    free(a->crl_owner);
    pthread_mutex_destroy(&a->crl_lock);
    free(a);
}

static bool has_prefix_dir(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool admin_owns(const struct admin_server *a, const char *path)
{
    return has_prefix_dir(path, ADMIN_PREFIX) || strcmp(path, "/metrics") == 0 ||
           has_prefix_dir(path, a->cfg->crl_path);
}

/* ---- answers ---- */

static void admin_response_body_free(struct admin_response *resp)
{
    if (resp->body != NULL && resp->body_secret)
        OPENSSL_cleanse(resp->body, resp->body_len);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->body_secret = false;
}

void admin_response_cleanup(struct admin_response *resp)
{
    admin_response_body_free(resp);
}

void admin_json(struct admin_call *x, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);

    json_decref(body);
    if (text == NULL) {
        log_error("admin: cannot encode JSON");
        status = 500;
        text = xstrdup("{\"error\":\"internal_error\",\"message\":\"internal error\"}");
    }
    admin_response_body_free(x->resp);
    x->resp->status = status;
    x->resp->est_error = false;
    x->resp->content_type = "application/json";
    x->resp->body_len = strlen(text);
    x->resp->body = xmalloc(x->resp->body_len + 2);
    memcpy(x->resp->body, text, x->resp->body_len);
    x->resp->body[x->resp->body_len++] = '\n';
    x->resp->body[x->resp->body_len] = '\0';
    free(text);
}

/* The error whose machine code is code, for answers in the EST style. */
static enum kp_err admin_err_by_code(const char *code)
{
    for (int e = 0; e < KP_ERR__MAX; e++)
        if (strcmp(kp_err_code((enum kp_err)e), code) == 0)
            return (enum kp_err)e;
    return KP_ERR_INTERNAL;
}

void admin_error(struct admin_call *x, int status, const char *code, const char *message)
{
    if (x->est_style) {
        /* text/plain, or JSON when Accept asks for it, as every EST error */
        admin_response_body_free(x->resp);
        x->resp->est_error = true;
        x->resp->err = admin_err_by_code(code);
        snprintf(x->resp->detail, sizeof(x->resp->detail), "%s", status >= 500 ? "" : message);
        x->resp->status = status;
        return;
    }
    admin_json(x, status, json_pack("{s:s, s:s}", "error", code, "message", message));
}

void admin_store_error(struct admin_call *x, enum kp_err rc)
{
    metrics_store_error();
    if (rc == KP_ERR_UNAVAILABLE) {
        x->resp->retry_after = x->a->cfg->est_retry_after;
        admin_error(x, 503, kp_err_code(rc), kp_err_message(rc));
    } else {
        admin_error(x, 500, kp_err_code(rc), kp_err_message(rc));
    }
}

/* ---- request pieces ---- */

char *admin_query(const struct admin_call *x, const char *name)
{
    const char *q = x->req->query;
    size_t n = strlen(name);

    while (q != NULL && *q != '\0') {
        size_t len = strcspn(q, "&");
        if (len > n && strncmp(q, name, n) == 0 && q[n] == '=') {
            const char *v = q + n + 1, *end = q + len;
            char *out = xmalloc((size_t)(end - v) + 1), *o = out;
            while (v < end) {
                if (*v == '%' && end - v >= 3 && OPENSSL_hexchar2int((unsigned char)(v[1])) >= 0 &&
                    OPENSSL_hexchar2int((unsigned char)(v[2])) >= 0) {
                    *o++ = (char)(OPENSSL_hexchar2int((unsigned char)(v[1])) * 16 +
                                  OPENSSL_hexchar2int((unsigned char)(v[2])));
                    v += 3;
                } else {
                    *o++ = *v == '+' ? ' ' : *v;
                    v++;
                }
            }
            *o = '\0';
            if (strlen(out) != (size_t)(o - out)) { /* a NUL inside */
                free(out);
                return NULL;
            }
            return out;
        }
        q += len + (q[len] == '&');
    }
    return NULL;
}

json_t *admin_body(struct admin_call *x)
{
    json_error_t err;
    json_t *j;

    if (x->req->body_len > ADMIN_BODY_MAX) {
        admin_error(x, 413, "too_large", "request body too large");
        return NULL;
    }
    if (x->req->body_len == 0)
        return json_object();
    j = json_loadb((const char *)x->req->body, x->req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        admin_error(x, 400, "bad_request", "body must be a JSON object");
        return NULL;
    }
    return j;
}

bool admin_method_is(struct admin_call *x, const char *m)
{
    bool get = strcmp(m, "GET") == 0;

    /* HEAD answers as GET; the transport leaves the body out (RFC 9110 9.3.2) */
    if (strcmp(x->req->method, m) == 0 || (get && strcmp(x->req->method, "HEAD") == 0))
        return true;
    admin_error(x, 405, "method_not_allowed", "method not allowed");
    x->resp->allow = get ? "GET, HEAD" : m;
    return false;
}

/* A non-negative integer query parameter; false after answering 400. */
bool admin_query_int(struct admin_call *x, const char *name, int64_t def, int64_t max, int64_t *out)
{
    char *v = admin_query(x, name), *end = NULL;
    long long n;

    *out = def;
    if (v == NULL || *v == '\0') {
        free(v);
        return true;
    }
    n = strtoll(v, &end, 10);
    if (*end != '\0' || n < 0 || n > max) {
        free(v);
        admin_error(x, 400, "bad_request", "query parameter out of range");
        return false;
    }
    free(v);
    *out = n;
    return true;
}

char *admin_name(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL, *data;
    long len;

    if (bio != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        len = BIO_get_mem_data(bio, &data);
        out = xmalloc((size_t)len + 1);
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
    }
    BIO_free(bio);
    return out;
}

/* ---- authentication ---- */

/* A bearer token whose SHA-256 is configured; compared in constant time. */
static bool token_ok(const struct admin_server *a, const char *token, size_t len)
{
    unsigned char md[32];
    char hex[65];
    const char *p = a->cfg->admin_token_sha256;
    bool ok = false;

    if (len == 0 || EVP_Digest(token, len, md, NULL, EVP_sha256(), NULL) != 1)
        return false;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    while (p != NULL && *p != '\0') {
        p += strspn(p, " ,");
        if (strlen(p) >= 64 && CRYPTO_memcmp(p, hex, 64) == 0)
            ok = true;
        p += strcspn(p, ",");
    }
    OPENSSL_cleanse(md, sizeof(md));
    return ok;
}

/* Whether subject is one of admin.client_subjects (exact strings). */
static bool subject_listed(const char *list, const char *subject)
{
    bool ok = false;

    for (const char *p = list; *p != '\0';) {
        size_t len;
        p += strspn(p, " ;");
        len = strcspn(p, ";");
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len > 0 && strlen(subject) == len && strncmp(subject, p, len) == 0)
            ok = true;
        p += len;
        p += strcspn(p, ";");
    }
    return ok;
}

/* A client certificate that chains to admin.client_ca (peer_verify), whose
 * subject is listed and which, when kipuka issued it, is not revoked. A
 * refused certificate is audited; the answer says nothing of why. */
static bool cert_ok(struct admin_call *x, char *who, size_t cap)
{
    const struct admin_request *req = x->req;
    const char *list = x->a->cfg->admin_client_subjects;
    struct store_cert *row = NULL;
    char *subject = NULL;
    const char *why = NULL;
    enum kp_err rc;

    if (req->peer_cert == NULL || list == NULL || !*list)
        return false;
    subject = admin_name(X509_get_subject_name(req->peer_cert));
    if (subject == NULL)
        return false;
    if (req->peer_verify != X509_V_OK) {
        why = req->peer_verify == X509_V_ERR_CERT_UNTRUSTED && x->a->cfg->admin_client_ca[0] == '\0'
                  ? "admin.client_ca is not set"
                  : X509_verify_cert_error_string(req->peer_verify);
        goto out;
    }
    if (!subject_listed(list, subject)) {
        why = "subject not in admin.client_subjects";
        goto out;
    }
    rc = est_issued_cert_find(x->a->est, req->peer_cert, &row);
    if (rc == KP_OK && strcmp(row->status, "valid") != 0)
        why = "admin client certificate revoked";
    else if (rc != KP_OK && rc != KP_ERR_NOT_FOUND)
        why = "cannot check the certificate's revocation in the store";
out:
    if (why != NULL) {
        struct store_audit ev = {
            .event = "admin.auth",
            .outcome = kp_err_code(KP_ERR_UNAUTHORIZED),
            .subject = subject,
            .peer = req->peer_addr,
            .detail = why,
        };
        log_info("admin: client certificate \"%s\" from %s refused: %s", subject,
                 req->peer_addr ? req->peer_addr : "-", why);
        store_audit_add(x->a->store, &ev);
    } else {
        snprintf(who, cap, "admin cert %s", subject);
    }
    store_cert_free(row);
    free(subject);
    return why == NULL;
}

static bool admin_configured(const struct admin_server *a)
{
    return (a->cfg->admin_token_sha256 != NULL && a->cfg->admin_token_sha256[0] != '\0') ||
           (a->cfg->admin_client_subjects != NULL && a->cfg->admin_client_subjects[0] != '\0');
}

/* 401 with a Bearer challenge unless the request carries admin credentials. */
static bool authenticate(struct admin_call *x, char *who, size_t cap)
{
    const char *h = x->req->authorization;

    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        t += strspn(t, " ");
        if (token_ok(x->a, t, strcspn(t, " "))) {
            snprintf(who, cap, "admin token");
            return true;
        }
    } else if (h == NULL && cert_ok(x, who, cap)) {
        return true;
    }
    x->resp->www_authenticate = "Bearer realm=\"kipuka-admin\"";
    admin_error(x, 401, "unauthorized", "admin credentials required");
    return false;
}

void admin_handle(struct admin_server *a, const struct admin_request *req,
                  struct admin_response *resp)
{
    struct admin_call x = {.a = a, .req = req, .resp = resp};
    char who[EST_SUBJECT_MAX] = "";
    const char *path = req->path;

    memset(resp, 0, sizeof(*resp));
    if (has_prefix_dir(path, a->cfg->crl_path)) {
        x.est_style = true; /* public, next to EST: not the admin API's JSON */
        admin_serve_crl(&x, path + strlen(a->cfg->crl_path));
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        if (a->cfg->metrics_require_auth && !authenticate(&x, who, sizeof(who)))
            return;
        admin_serve_metrics(&x);
        return;
    }
    if (!admin_configured(a)) {
        admin_error(&x, 404, "not_found", "the admin API is not configured");
        return;
    }
    if (!authenticate(&x, who, sizeof(who)))
        return;
    snprintf(resp->auth_subject, sizeof(resp->auth_subject), "%s", who);
    x.who = resp->auth_subject;
    path += strlen(ADMIN_PREFIX);
    if (*path == '/')
        path++;
    if (has_prefix_dir(path, "health"))
        admin_route_health(&x, path + 6);
    else if (has_prefix_dir(path, "cas"))
        admin_route_cas(&x, path + 3);
    else if (has_prefix_dir(path, "certs"))
        admin_route_certs(&x, path + 5);
    else if (has_prefix_dir(path, "otp"))
        admin_route_otp(&x, path + 3);
    else if (has_prefix_dir(path, "requests"))
        admin_route_requests(&x, path + 8);
    else if (strcmp(path, "audit") == 0)
        admin_route_audit(&x);
    else
        admin_error(&x, 404, "not_found", "no such admin route");
}
