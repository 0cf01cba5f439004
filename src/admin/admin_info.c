/* Read-only routes: health, CAs, audit trail, metrics. */
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_internal.h"
#include "ca/ca.h"
#include "core/metrics.h"
#include "core/utf8.h"
#include "core/xalloc.h"

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 10000

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* Why the CA cannot issue now, or NULL. */
static const char *ca_problem(struct ca *ca)
{
    time_t now = time(NULL);
    if (X509_cmp_time(X509_get0_notAfter(ca->cert), &now) <= 0)
        return "CA certificate expired";
    if (X509_cmp_time(X509_get0_notBefore(ca->cert), &now) > 0)
        return "CA certificate not yet valid";
    if (X509_check_private_key(ca->cert, signer_public_key(ca->signer)) != 1)
        return "CA key does not match its certificate";
    return NULL;
}

void admin_route_health(struct admin_call *x, const char *rest)
{
    size_t n = est_server_label_count(x->a->est);

    if (!admin_method_is(x, "GET"))
        return;
    if (*rest == '\0') {
        admin_json(x, 200,
                   json_pack("{s:s, s:s, s:I}", "status", "healthy", "version", KIPUKA_VERSION,
                             "ca_count", (json_int_t)n));
    } else if (strcmp(rest, "/db") == 0) {
        int64_t count = 0;
        enum kp_err rc = store_cert_count(x->a->store, &count);
        if (rc == KP_OK)
            admin_json(
                x, 200,
                json_pack("{s:s, s:I}", "status", "healthy", "certificates", (json_int_t)count));
        else
            admin_json(
                x, 503,
                json_pack("{s:s, s:s}", "status", "unhealthy", "reason", kp_err_message(rc)));
    } else if (strcmp(rest, "/ca") == 0) {
        for (size_t i = 0; i < n; i++) {
            const char *why = ca_problem(est_server_label_ca(x->a->est, i));
            if (why != NULL) {
                admin_json(x, 503,
                           json_pack("{s:s, s:s, s:s}", "status", "unhealthy", "label",
                                     est_server_label_name(x->a->est, i), "reason", why));
                return;
            }
        }
        admin_json(x, 200, json_pack("{s:s, s:I}", "status", "healthy", "ca_count", (json_int_t)n));
    } else {
        admin_error(x, 404, "not_found", "no such admin route");
    }
}

static json_t *ca_json(const char *label, struct ca *ca)
{
    char *subject = admin_name(X509_get_subject_name(ca->cert));
    char *issuer = admin_name(X509_get_issuer_name(ca->cert));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca->cert), NULL);
    char *serial = bn != NULL ? BN_bn2hex(bn) : NULL;
    EVP_PKEY *key = signer_public_key(ca->signer);
    const char *why = ca_problem(ca);
    json_t *j;

    for (char *p = serial; p != NULL && *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    j = json_pack("{s:s, s:s?, s:s?, s:s?, s:I, s:I, s:s, s:i, s:i, s:s}", "label", label,
                  "subject", subject, "issuer", issuer, "serial", serial, "not_before",
                  (json_int_t)asn1_time_unix(X509_get0_notBefore(ca->cert)), "not_after",
                  (json_int_t)asn1_time_unix(X509_get0_notAfter(ca->cert)), "key_type",
                  EVP_PKEY_get0_type_name(key), "key_bits", EVP_PKEY_get_bits(key), "chain_length",
                  sk_X509_num(ca->chain), "status", why == NULL ? "ok" : why);
    free(subject);
    free(issuer);
    OPENSSL_free(serial);
    BN_free(bn);
    return j;
}

void admin_route_cas(struct admin_call *x, const char *rest)
{
    struct est_server *est = x->a->est;
    json_t *list;
    long i;

    if (!admin_method_is(x, "GET"))
        return;
    if (*rest == '\0') {
        list = json_array();
        for (size_t k = 0; k < est_server_label_count(est); k++)
            json_array_append_new(
                list, ca_json(est_server_label_name(est, k), est_server_label_ca(est, k)));
        admin_json(x, 200, json_pack("{s:o}", "cas", list));
        return;
    }
    i = rest[0] == '/' ? est_server_label_index(est, rest + 1) : -1;
    if (i < 0) {
        admin_error(x, 404, "unknown_label", "unknown label");
        return;
    }
    admin_json(x, 200,
               ca_json(est_server_label_name(est, (size_t)i), est_server_label_ca(est, (size_t)i)));
}

struct audit_walk {
    json_t *events;
    int64_t limit;
};

/* A stored field as a JSON string, null when absent. Audit fields carry
 * client bytes (a Basic user id, a certificate subject) that need not be
 * UTF-8, which JSON cannot hold: each byte outside well-formed UTF-8 is shown
 * as the text \xNN (docs/audit.md), so the event is listed, never dropped. */
static json_t *audit_str(const char *s)
{
    char *clean;
    json_t *j;

    if (s == NULL)
        return json_null();
    clean = utf8_sanitize(s);
    j = json_string(clean);
    free(clean);
    return j != NULL ? j : json_string("?"); /* an embedded NUL cannot come from C strings */
}

static void audit_one(int64_t at, const struct store_audit *ev, void *arg)
{
    struct audit_walk *w = arg;

    if ((int64_t)json_array_size(w->events) >= w->limit)
        return;
    json_array_append_new(
        w->events, json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "at", (json_int_t)at, "event",
                             audit_str(ev->event), "outcome", audit_str(ev->outcome), "label",
                             audit_str(ev->label), "subject", audit_str(ev->subject), "peer",
                             audit_str(ev->peer), "detail", audit_str(ev->detail)));
}

void admin_route_audit(struct admin_call *x)
{
    struct audit_walk w = {.events = json_array()};
    int64_t since;
    enum kp_err rc;

    if (!admin_method_is(x, "GET") || !admin_query_int(x, "since", 0, INT64_MAX, &since) ||
        !admin_query_int(x, "limit", AUDIT_LIMIT_DEFAULT, AUDIT_LIMIT_MAX, &w.limit)) {
        json_decref(w.events);
        return;
    }
    rc = store_audit_list(x->a->store, since, audit_one, &w);
    if (rc != KP_OK) {
        json_decref(w.events);
        admin_store_error(x, rc);
        return;
    }
    admin_json(x, 200, json_pack("{s:o}", "events", w.events));
}

void admin_serve_metrics(struct admin_call *x)
{
    char *text, *gauges;
    size_t len;

    if (!admin_method_is(x, "GET"))
        return;
    gauges = admin_pending_gauge(x->a);
    metrics_render(gauges, &text, &len);
    free(gauges);
    free(x->resp->body);
    x->resp->status = 200;
    x->resp->est_error = false;
    x->resp->content_type = "text/plain; version=0.0.4";
    x->resp->body = text;
    x->resp->body_len = len;
}
