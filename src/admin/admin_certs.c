/* Certificates: list, show, revoke; and the CRLs that publish revocations. */
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_internal.h"
#include "ca/crl.h"
#include "core/log.h"
#include "core/xalloc.h"

#define CERTS_LIMIT_DEFAULT 100
#define CERTS_LIMIT_MAX 1000
#define SERIAL_MAX 64

static json_t *cert_json(const struct store_cert *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:I}", "serial", c->serial,
                     "label", c->label, "subject", c->subject, "sans", c->sans ? c->sans : "",
                     "not_before", (json_int_t)c->not_before, "not_after", (json_int_t)c->not_after,
                     "issued_at", (json_int_t)c->issued_at, "requester", c->requester,
                     "auth_method", c->auth_method, "status", c->status, "revoked_at",
                     (json_int_t)c->revoked_at);
}

static void cert_list_one(const struct store_cert *c, void *arg)
{
    json_array_append_new(arg, cert_json(c));
}

/* A serial as the store keeps it: lowercase hex, at most SERIAL_MAX digits. */
static bool serial_ok(const char *s, size_t len)
{
    if (len == 0 || len > SERIAL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void certs_list(struct admin_call *x)
{
    struct store_cert_query q = {0};
    char *label = admin_query(x, "label"), *status = admin_query(x, "status");
    char *subject = admin_query(x, "subject");
    json_t *list = json_array();
    int64_t total = 0;
    enum kp_err rc;

    if (!admin_query_int(x, "limit", CERTS_LIMIT_DEFAULT, CERTS_LIMIT_MAX, &q.limit) ||
        !admin_query_int(x, "offset", 0, INT64_MAX, &q.offset))
        goto out;
    /* the store reads 0 as "no limit": never let a client ask for that */
    if (q.limit < 1) {
        admin_error(x, 400, "bad_request", "limit must be from 1 to 1000");
        goto out;
    }
    if (status != NULL && strcmp(status, "valid") != 0 && strcmp(status, "revoked") != 0) {
        admin_error(x, 400, "bad_request", "status must be valid or revoked");
        goto out;
    }
    q.label = label != NULL && *label ? label : NULL;
    q.status = status != NULL && *status ? status : NULL;
    q.subject = subject != NULL && *subject ? subject : NULL;
    rc = store_cert_query(x->a->store, &q, cert_list_one, list, &total);
    if (rc != KP_OK) {
        admin_store_error(x, rc);
        goto out;
    }
    admin_json(x, 200, json_pack("{s:O, s:I}", "certificates", list, "total", (json_int_t)total));
out:
    json_decref(list);
    free(label);
    free(status);
    free(subject);
}

static char *cert_pem(const struct store_cert *c)
{
    const unsigned char *p = c->der;
    X509 *cert = d2i_X509(NULL, &p, (long)c->der_len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL, *data;
    long len;

    if (cert != NULL && bio != NULL && PEM_write_bio_X509(bio, cert) == 1) {
        len = BIO_get_mem_data(bio, &data);
        pem = xmalloc((size_t)len + 1);
        memcpy(pem, data, (size_t)len);
        pem[len] = '\0';
    }
    BIO_free(bio);
    X509_free(cert);
    return pem;
}

static void certs_show(struct admin_call *x, const char *serial)
{
    struct store_cert *c = NULL;
    enum kp_err rc = store_cert_get(x->a->store, serial, &c);
    json_t *j;
    char *pem;

    if (rc == KP_ERR_NOT_FOUND) {
        admin_error(x, 404, "not_found", "no certificate with this serial");
        return;
    }
    if (rc != KP_OK) {
        admin_store_error(x, rc);
        return;
    }
    j = cert_json(c);
    pem = cert_pem(c);
    json_object_set_new(j, "pem", pem != NULL ? json_string(pem) : json_null());
    free(pem);
    store_cert_free(c);
    admin_json(x, 200, j);
}

static void certs_revoke(struct admin_call *x, const char *serial)
{
    json_t *body = admin_body(x);
    const char *reason = "unspecified";
    struct store_cert *c = NULL;
    struct store_audit ev = {
        .event = "cert.revoke", .subject = x->who, .peer = x->req->peer_addr, .detail = serial};
    char outcome[32];
    int64_t now = (int64_t)time(NULL);
    enum kp_err rc;

    if (body == NULL)
        return;
    if (json_object_get(body, "reason") != NULL) {
        reason = json_string_value(json_object_get(body, "reason"));
        if (reason == NULL || crl_reason_code(reason) < 0) {
            admin_error(x, 400, "bad_request",
                        "reason must be an RFC 5280 CRLReason name such as keyCompromise");
            json_decref(body);
            return;
        }
    }
    rc = store_cert_get(x->a->store, serial, &c);
    if (rc == KP_OK) {
        snprintf(outcome, sizeof(outcome), "ok");
        ev.outcome = outcome;
        ev.label = c->label;
        rc = store_cert_revoke(x->a->store, serial, reason, now, &ev);
    }
    if (rc == KP_OK) {
        admin_crl_invalidate(x->a, c->label);
        log_info("admin: %s revoked certificate %s (%s)", x->who, serial, reason);
        admin_json(x, 200,
                   json_pack("{s:s, s:s, s:I, s:s}", "serial", serial, "status", "revoked",
                             "revoked_at", (json_int_t)now, "reason", reason));
    } else if (rc == KP_ERR_NOT_FOUND) {
        admin_error(x, 404, "not_found", "no certificate with this serial");
    } else if (rc == KP_ERR_CONFLICT) {
        admin_error(x, 409, "already_revoked", "the certificate is already revoked");
    } else {
        admin_store_error(x, rc);
    }
    store_cert_free(c);
    json_decref(body);
}

void admin_route_certs(struct admin_call *x, const char *rest)
{
    char serial[SERIAL_MAX + 1];
    size_t len;

    if (*rest == '\0') {
        if (admin_method_is(x, "GET"))
            certs_list(x);
        return;
    }
    rest++; /* '/' */
    len = strcspn(rest, "/");
    if (!serial_ok(rest, len)) {
        admin_error(x, 404, "not_found", "no certificate with this serial");
        return;
    }
    memcpy(serial, rest, len);
    serial[len] = '\0';
    rest += len;
    if (*rest == '\0') {
        if (admin_method_is(x, "GET"))
            certs_show(x, serial);
    } else if (strcmp(rest, "/revoke") == 0) {
        if (admin_method_is(x, "POST"))
            certs_revoke(x, serial);
    } else {
        admin_error(x, 404, "not_found", "no such admin route");
    }
}

/* ---- CRLs ---- */

struct revoked_walk {
    struct crl_entry *v;
    size_t n, cap;
};

static void revoked_one(const struct store_revoked *r, void *arg)
{
    struct revoked_walk *w = arg;

    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
    }
    w->v[w->n].serial = xstrdup(r->serial);
    w->v[w->n].revoked_at = r->revoked_at;
    w->v[w->n].reason = r->reason != NULL ? xstrdup(r->reason) : NULL;
    w->n++;
}

static void revoked_free(struct revoked_walk *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free((char *)w->v[i].serial);
        free((char *)w->v[i].reason);
    }
    free(w->v);
}

void admin_crl_group(struct admin_server *a)
{
    size_t n = est_server_label_count(a->est);

    /* X509_cmp is 0 only for the same DER encoding */
    for (size_t i = 0; i < n; i++) {
        X509 *ca = est_server_label_ca(a->est, i)->cert;
        a->crl_owner[i] = i;
        for (size_t j = 0; j < i; j++) {
            if (X509_cmp(ca, est_server_label_ca(a->est, j)->cert) == 0) {
                a->crl_owner[i] = a->crl_owner[j];
                break;
            }
        }
    }
}

/* crlNumber (RFC 5280 5.2.3) in milliseconds since the epoch: it grows with
 * time, so a CRL built later, on this node or another node sharing the
 * database (clocks in step), has a greater number; one built in the same
 * millisecond on this node gets the previous number plus one. Numbers from
 * before (seconds) are all smaller. */
static int64_t crl_next_number(const struct crl_cached *cc)
{
    struct timespec ts;
    int64_t ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return ms > cc->number ? ms : cc->number + 1;
}

/* Rebuild the CRL of label i's CA from the store when it is missing, older
 * than crl.refresh, or invalidated: one complete CRL per CA, listing the
 * revoked certificates of every label that issues under it (RFC 5280 5.2.5:
 * so no issuingDistributionPoint; a certificate revoked under one label is
 * revoked in the CRL every label of its CA serves). Called with crl_lock held;
 * the cache is the owner label's. */
static enum kp_err crl_refresh(struct admin_server *a, size_t i, int64_t now)
{
    size_t owner = a->crl_owner[i], n = est_server_label_count(a->est), nl = 0;
    struct crl_cached *cc = &a->crls[owner];
    struct revoked_walk w = {0};
    const char **labels = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    int64_t number;
    enum kp_err rc;

    if (cc->der != NULL && now - cc->built_at < a->cfg->crl_refresh)
        return KP_OK;
    labels = xcalloc(n, sizeof(*labels));
    for (size_t j = 0; j < n; j++)
        if (a->crl_owner[j] == owner)
            labels[nl++] = est_server_label_name(a->est, j);
    rc = store_revoked_list(a->store, labels, nl, revoked_one, &w);
    free(labels);
    number = crl_next_number(cc);
    if (rc == KP_OK)
        rc = crl_build(est_server_label_ca(a->est, owner), w.v, w.n, number, now,
                       now + a->cfg->crl_next_update, &der, &der_len);
    revoked_free(&w);
    if (rc != KP_OK)
        return rc;
    OPENSSL_free(cc->der);
    cc->der = der;
    cc->der_len = der_len;
    cc->built_at = now;
    cc->number = number;
    return KP_OK;
}

void admin_crl_invalidate(struct admin_server *a, const char *label)
{
    long i = est_server_label_index(a->est, label);

    if (i < 0)
        return;
    pthread_mutex_lock(&a->crl_lock);
    a->crls[a->crl_owner[i]].built_at = 0; /* rebuilt on the next fetch */
    pthread_mutex_unlock(&a->crl_lock);
}

void admin_serve_crl(struct admin_call *x, const char *file)
{
    char label[EST_LABEL_MAX + 1];
    size_t len;
    long i = -1;
    enum kp_err rc;

    if (!admin_method_is(x, "GET"))
        return;
    /* "/LABEL.crl" */
    len = strlen(file);
    if (file[0] == '/' && len > 5 && len - 5 <= EST_LABEL_MAX &&
        strcmp(file + len - 4, ".crl") == 0) {
        memcpy(label, file + 1, len - 5);
        label[len - 5] = '\0';
        i = est_server_label_index(x->a->est, label);
    }
    if (i < 0) {
        admin_error(x, 404, "unknown_label", "no CRL at this path");
        return;
    }
    pthread_mutex_lock(&x->a->crl_lock);
    rc = crl_refresh(x->a, (size_t)i, (int64_t)time(NULL));
    if (rc == KP_OK) {
        struct crl_cached *cc = &x->a->crls[x->a->crl_owner[i]];
        x->resp->status = 200;
        x->resp->est_error = false;
        x->resp->content_type = "application/pkix-crl";
        x->resp->body = xmalloc(cc->der_len + 1);
        memcpy(x->resp->body, cc->der, cc->der_len);
        x->resp->body[cc->der_len] = '\0';
        x->resp->body_len = cc->der_len;
    }
    pthread_mutex_unlock(&x->a->crl_lock);
    if (rc != KP_OK)
        admin_store_error(x, rc);
}
