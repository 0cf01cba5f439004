/* RFC 7030 4.2 simpleenroll / simplereenroll: authenticate, check the CSR
 * (proof of possession 3.4, identity linking 3.5), apply the label's profile,
 * sign, commit, and only then answer. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/basic.h"
#include "auth/chanbind.h"
#include "ca/profile.h"
#include "core/base64.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "est/est_internal.h"
#include "pki/csr.h"
#include "pki/pkcs7.h"

#define ENROLL_SERIAL_TRIES 3

/* Who the client proved to be. */
struct enroll_auth {
    const char *method; /* "otp" or "mtls" */
    char *who;          /* entity id or certificate subject (owned) */
    int64_t otp_id;     /* > 0 for OTP */
};

/* One attempt, its outcome and why: feeds the audit row and the log line. */
struct enroll_ctx {
    struct est_server *srv;
    const struct est_label *l;
    const struct est_request *req;
    struct enroll_auth auth;
    const char *why;
    char addr_key[80]; /* "addr:" + client address without port */
    long retry_after;  /* set with KP_ERR_RATE_LIMITED */
};

/* "addr:1.2.3.4" from "1.2.3.4:5678" or "[::1]:5678": failures count per host. */
static void enroll_addr_key(const char *peer, char *out, size_t len)
{
    size_t n;
    if (peer == NULL)
        peer = "-";
    if (peer[0] == '[') {
        peer++;
        n = strcspn(peer, "]");
    } else {
        const char *colon = strrchr(peer, ':');
        n = colon ? (size_t)(colon - peer) : strlen(peer);
    }
    snprintf(out, len, "addr:%.*s", (int)n, peer);
}

/* KP_ERR_RATE_LIMITED while key is blocked after repeated failures. */
static enum kp_err enroll_rate_check(struct enroll_ctx *x, const char *key)
{
    long left = ratelimit_blocked(x->srv->auth_failures, key, time(NULL));
    if (left == 0)
        return KP_OK;
    x->retry_after = left;
    x->why = "too many failed authentications";
    return KP_ERR_RATE_LIMITED;
}

static enum kp_err enroll_auth_otp(struct enroll_ctx *x)
{
    enum kp_err rc = KP_ERR_UNAUTHORIZED;
    char *user = NULL, *pass = NULL;
    unsigned char hash[STORE_OTP_HASH_LEN];
    char entity_key[EST_SUBJECT_MAX] = "";
    struct store_otp *otp = NULL;

    if (!x->l->cfg->allow_otp) {
        x->why = "OTP authentication is not allowed for this label";
        goto out;
    }
    if (basic_parse(x->req->authorization, &user, &pass) != KP_OK) {
        x->why = "malformed Basic credentials";
        goto out;
    }
    x->auth.who = xstrdup(user);
    snprintf(entity_key, sizeof(entity_key), "entity:%s", user);
    rc = enroll_rate_check(x, entity_key);
    if (rc != KP_OK)
        goto out;
    otp_hash(x->srv->otp_key, pass, strlen(pass), hash);
    rc = store_otp_find(x->srv->store, hash, &otp);
    if (rc == KP_ERR_NOT_FOUND) {
        rc = KP_ERR_UNAUTHORIZED;
        x->why = "unknown OTP";
        goto out;
    }
    if (rc != KP_OK)
        goto out;
    rc = KP_ERR_UNAUTHORIZED;
    if (strcmp(otp->entity_id, user) != 0) {
        x->why = "OTP belongs to another entity";
    } else if (otp->revoked) {
        x->why = "OTP revoked";
    } else if (otp->expires_at <= time(NULL)) {
        x->why = "OTP expired";
    } else if (otp->uses_left <= 0) {
        x->why = "OTP already used";
    } else if (otp->label != NULL && strcmp(otp->label, x->l->cfg->name) != 0) {
        x->why = "OTP is bound to another label";
        rc = KP_ERR_FORBIDDEN;
    } else {
        x->auth.method = "otp";
        x->auth.otp_id = otp->id;
        rc = KP_OK;
    }
out:
    if (rc == KP_ERR_UNAUTHORIZED && entity_key[0] != '\0')
        ratelimit_fail(x->srv->auth_failures, entity_key, x->srv->cfg->auth_fail_limit, time(NULL));
    if (pass)
        OPENSSL_clear_free(pass, strlen(pass));
    free(user);
    store_otp_free(otp);
    return rc;
}

/* The client certificate must chain to tls.client_ca (checked during the
 * handshake), and when it is one of ours, must not be revoked. */
static enum kp_err enroll_auth_mtls(struct enroll_ctx *x)
{
    struct store_cert *mine = NULL;
    char *serial;
    enum kp_err rc;

    if (x->req->peer_cert == NULL) {
        x->why = "no client certificate";
        return KP_ERR_UNAUTHORIZED;
    }
    x->auth.who = csr_name_string(X509_get_subject_name(x->req->peer_cert));
    if (x->req->peer_verify != X509_V_OK) {
        x->why = X509_verify_cert_error_string(x->req->peer_verify);
        return KP_ERR_UNAUTHORIZED;
    }
    if (!x->l->cfg->allow_mtls) {
        x->why = "client certificate authentication is not allowed for this label";
        return KP_ERR_UNAUTHORIZED;
    }
    serial = ca_serial_hex(x->req->peer_cert);
    rc = store_cert_get(x->srv->store, serial, &mine);
    free(serial);
    if (rc == KP_OK && strcmp(mine->status, "valid") != 0) {
        x->why = "client certificate revoked";
        rc = KP_ERR_UNAUTHORIZED;
    } else if (rc == KP_OK && x->req->op == EST_OP_SIMPLEREENROLL &&
               strcmp(mine->label, x->l->cfg->name) != 0) {
        /* a renewal stays under the label (CA and profile) that issued it */
        x->why = "the certificate being renewed was issued under another label";
        x->auth.method = "mtls";
        rc = KP_ERR_FORBIDDEN;
    } else if (rc == KP_OK || rc == KP_ERR_NOT_FOUND) {
        x->auth.method = "mtls";
        rc = KP_OK;
    }
    store_cert_free(mine);
    return rc;
}

static enum kp_err enroll_authenticate_once(struct enroll_ctx *x)
{
    if (x->req->op == EST_OP_SIMPLEREENROLL)
        return enroll_auth_mtls(x); /* RFC 7030 4.2.2: the certificate being renewed */
    if (x->req->authorization != NULL)
        return enroll_auth_otp(x);
    if (x->req->peer_cert != NULL)
        return enroll_auth_mtls(x);
    x->why = "no credentials";
    return KP_ERR_UNAUTHORIZED;
}

/* Authenticate, counting failures per client address and per entity id so
 * guessing is cut off with 429 (a request without credentials is no guess). */
static enum kp_err enroll_authenticate(struct enroll_ctx *x)
{
    enum kp_err rc;
    time_t now = time(NULL);

    enroll_addr_key(x->req->peer_addr, x->addr_key, sizeof(x->addr_key));
    rc = enroll_rate_check(x, x->addr_key);
    if (rc != KP_OK)
        return rc;
    rc = enroll_authenticate_once(x);
    if (rc != KP_ERR_UNAUTHORIZED || (x->req->authorization == NULL && x->req->peer_cert == NULL))
        return rc;
    ratelimit_fail(x->srv->auth_failures, x->addr_key, x->srv->cfg->auth_fail_limit_addr, now);
    return rc;
}

/* RFC 7030 3.5 and 4.2.2: tie the CSR to the authenticated certificate. */
static enum kp_err enroll_check_identity(struct enroll_ctx *x, const struct csr *csr)
{
    X509 *peer = x->req->peer_cert;
    GENERAL_NAMES *peer_sans = NULL;
    int same_subject, same_sans;

    if (strcmp(x->auth.method, "mtls") != 0)
        return KP_OK;
    same_subject = X509_NAME_cmp(csr->subject, X509_get_subject_name(peer)) == 0;
    if (x->req->op == EST_OP_SIMPLEENROLL) {
        if (x->l->cfg->mtls_subject_match && !same_subject) {
            x->why = "CSR subject differs from the client certificate subject";
            return KP_ERR_FORBIDDEN;
        }
        return KP_OK;
    }
    if (x->l->cfg->reenroll_allow_change)
        return KP_OK;
    peer_sans = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    same_sans = csr_sans_equal(csr->sans, peer_sans);
    GENERAL_NAMES_free(peer_sans);
    if (!same_subject || !same_sans) {
        x->why = same_subject ? "CSR subjectAltName differs from the certificate being renewed"
                              : "CSR subject differs from the certificate being renewed";
        return KP_ERR_FORBIDDEN;
    }
    return KP_OK;
}

static enum kp_err enroll_read_csr(struct enroll_ctx *x, struct csr **out)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    enum kp_err rc;

    if (x->req->content_type == NULL) {
        x->why = "missing Content-Type";
        return KP_ERR_NO_CONTENT_TYPE;
    }
    if (!est_media_type_is(x->req->content_type, "application/pkcs10")) {
        x->why = "Content-Type must be application/pkcs10";
        return KP_ERR_MEDIA_TYPE;
    }
    if (x->req->body_len == 0) {
        x->why = "empty body";
        return KP_ERR_CSR;
    }
    rc = base64_or_der(x->req->body, x->req->body_len, &der, &der_len);
    if (rc != KP_OK) {
        x->why = "body is neither base64 nor DER";
        return rc;
    }
    rc = csr_parse(der, der_len, out);
    if (rc != KP_OK)
        x->why = rc == KP_ERR_CSR_SIGNATURE ? "CSR signature does not verify"
                                            : "malformed PKCS#10 request";
    free(der);
    return rc;
}

/* Sign and commit; a serial collision (never expected) gets a fresh serial. */
static enum kp_err enroll_issue(struct enroll_ctx *x, const struct csr *csr, struct ca_template *t,
                                X509 **out)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    X509 *cert = NULL;
    struct store_cert row = {0};
    struct store_audit ev = {0};

    for (int tries = 0; tries < ENROLL_SERIAL_TRIES; tries++) {
        X509_free(cert);
        cert = NULL;
        free(row.serial);
        free(row.subject);
        free(row.sans);
        free(row.der);
        memset(&row, 0, sizeof(row));

        rc = ca_serial_random(t->serial);
        if (rc != KP_OK)
            break;
        rc = ca_issue(x->l->ca, t, &cert);
        if (rc != KP_OK)
            break;
        row.serial = ca_serial_hex(cert);
        row.label = x->l->cfg->name;
        row.subject = csr_name_string(csr->subject);
        row.sans = csr_sans_string(csr->sans);
        row.not_before = t->not_before;
        row.not_after = t->not_after;
        row.issued_at = time(NULL);
        row.requester = x->auth.who;
        row.auth_method = (char *)x->auth.method;
        row.status = "valid";
        {
            unsigned char *p = NULL;
            int n = i2d_X509(cert, &p);
            if (n <= 0) {
                rc = KP_ERR_INTERNAL;
                break;
            }
            row.der = p;
            row.der_len = (size_t)n;
        }
        ev.event = est_op_name(x->req->op);
        ev.outcome = "ok";
        ev.label = x->l->cfg->name;
        ev.subject = x->auth.who;
        ev.peer = x->req->peer_addr;
        ev.detail = row.serial;
        rc = store_issue(x->srv->store, &row, x->auth.otp_id, &ev);
        if (rc != KP_ERR_CONFLICT)
            break;
        log_warn("serial %s already in the store; drawing another", row.serial);
    }
    if (rc == KP_ERR_UNAUTHORIZED)
        x->why = "OTP already used";
    if (rc == KP_OK) {
        log_info("req=%llu issued serial=%s label=%s subject=\"%s\" to %s via %s",
                 (unsigned long long)x->req->id, row.serial, row.label, row.subject, row.requester,
                 row.auth_method);
        *out = cert;
        cert = NULL; /* steal */
    }
    X509_free(cert);
    free(row.serial);
    free(row.subject);
    free(row.sans);
    OPENSSL_free(row.der);
    return rc;
}

static enum kp_err enroll_run(struct enroll_ctx *x, X509 **cert)
{
    enum kp_err rc;
    struct csr *csr = NULL;
    struct ca_template t;

    rc = enroll_authenticate(x);
    if (rc != KP_OK)
        goto out;
    rc = enroll_read_csr(x, &csr);
    if (rc != KP_OK)
        goto out;
    rc = chanbind_check(x->l->cfg->channel_binding, csr->challenge, csr->challenge_len,
                        x->req->channel_binding, x->req->channel_binding_len);
    if (rc != KP_OK) {
        x->why = csr->challenge ? "challengePassword does not match this TLS channel"
                                : "this label requires the TLS channel binding in the CSR";
        goto out;
    }
    rc = enroll_check_identity(x, csr);
    if (rc != KP_OK)
        goto out;
    rc = profile_apply(x->l->cfg, x->l->ca, csr, time(NULL), &t, &x->why);
    if (rc != KP_OK)
        goto out;
    rc = enroll_issue(x, csr, &t, cert);
out:
    csr_free(csr);
    return rc;
}

void est_enroll(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                struct est_response *resp)
{
    struct enroll_ctx x = {.srv = srv, .l = l, .req = req};
    X509 *cert = NULL;
    STACK_OF(X509) *certs = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0, b64_len = 0;
    char *b64;
    enum kp_err rc = enroll_run(&x, &cert);

    if (x.auth.who != NULL)
        snprintf(resp->auth_subject, sizeof(resp->auth_subject), "%s", x.auth.who);
    if (rc == KP_OK) {
        certs = sk_X509_new_null();
        sk_X509_push(certs, cert);
        rc = pkcs7_certs_only(certs, &der, &der_len);
    }
    if (rc != KP_OK) {
        struct store_audit ev = {
            .event = est_op_name(req->op),
            .outcome = kp_err_code(rc),
            .label = l->cfg->name,
            .subject = x.auth.who,
            .peer = req->peer_addr,
            .detail = x.why ? x.why : kp_err_message(rc),
        };
        log_info("req=%llu %s refused label=%s who=%s peer=%s: %s", (unsigned long long)req->id,
                 est_op_name(req->op), l->cfg->name, x.auth.who ? x.auth.who : "-",
                 req->peer_addr ? req->peer_addr : "-", ev.detail);
        store_audit_add(srv->store, &ev);
        /* The audit row has the reason. A 401 says nothing about why (no OTP
         * state oracle), a 5xx nothing internal; other refusals explain. */
        est_response_error(resp, rc, req->accept,
                           rc == KP_ERR_UNAUTHORIZED || kp_err_http_status(rc) >= 500 ? NULL
                                                                                      : x.why);
        resp->retry_after = x.retry_after;
        if (rc == KP_ERR_UNAVAILABLE) /* RFC 9110 15.6.4: say when to come back */
            resp->retry_after = srv->cfg->est_retry_after;
    } else {
        b64 = base64_encode(der, der_len, &b64_len);
        est_response_ok(resp, EST_CT_CERTS, b64, b64_len);
    }
    sk_X509_free(certs);
    X509_free(cert);
    free(der);
    free(x.auth.who);
}
