/* RFC 7030 4.2 simpleenroll / simplereenroll and 4.4 serverkeygen: one
 * pipeline. Authenticate, check the CSR (proof of possession 3.4, identity
 * linking 3.5), hold it for an operator when the label wants manual approval
 * (4.2.3: held, with a time to come back), apply the label's profile, sign, commit, and
 * only then answer. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/chanbind.h"
#include "auth/otpbind.h"
#include "ca/profile.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "est/est_internal.h"
#include "pki/csr.h"
#include "pki/keygen.h"
#include "pki/pkcs7.h"
#include "pki/trust.h"

#define ENROLL_SERIAL_TRIES 3

/* Who the client proved to be. */
struct enroll_auth {
    const char *method; /* "otp", "mtls" or "psk" once authenticated */
    const char *tried;  /* the method tried, even when it failed: for metrics */
    char *who;          /* entity id or certificate subject (owned) */
    int64_t otp_id;     /* > 0 for OTP */
    bool otp_spent;     /* the OTP is used up: valid only for the pending request that took it */
    /* the OTP's row (owned), for what it may certify */
    struct store_otp *otp;
    const struct psk_entry *psk; /* borrowed from the server's table, for a PSK */
};

/* One attempt, its outcome and why: feeds the audit row and the log line. */
struct enroll_ctx {
    struct est_server *srv;
    const struct est_label *l;
    const struct est_request *req;
    struct enroll_auth auth;
    const char *why;
    char addr_key[80];                /* "addr:" + client address without port */
    char entity_key[EST_SUBJECT_MAX]; /* "entity:" + OTP user, "" without one */
    long retry_after;                 /* set with KP_ERR_RATE_LIMITED */
    bool manual;                      /* the label holds requests for an operator */
    bool audited;                     /* the store already wrote this attempt's audit row */
    char why_buf[256];                /* for a why that carries a number or names */
    struct store_pending *pending;    /* the earlier request this one repeats, if any */
    const unsigned char *csr_der;     /* the request as received (borrowed) */
    size_t csr_der_len;
    char csr_sha256[65];
    char fingerprint[CSR_FINGERPRINT_HEX]; /* key, subject, SANs: what a retry repeats */
    struct skg_plan skg;                   /* serverkeygen only */
    unsigned char *archived_key;           /* serverkeygen with archival: the key, encrypted */
    size_t archived_key_len;
};

/* Count a failed authentication against the entity and the address. */
static void enroll_auth_failed(struct enroll_ctx *x)
{
    time_t now = time(NULL);

    if (x->entity_key[0] != '\0')
        ratelimit_fail(x->srv->auth_failures, x->entity_key, x->srv->cfg->auth_fail_limit, now);
    ratelimit_fail(x->srv->auth_failures, x->addr_key, x->srv->cfg->auth_fail_limit_addr, now);
}

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
    const char *user = x->req->cred.user, *pass = x->req->cred.password;
    unsigned char hash[STORE_OTP_HASH_LEN];
    char *entity_key = x->entity_key;
    struct store_otp *otp = NULL;

    x->auth.tried = "otp";
    if (!x->l->cfg->allow_otp) {
        x->why = "OTP authentication is not allowed for this label";
        goto out;
    }
    if (x->req->cred.password_malformed || user == NULL || pass == NULL) {
        x->why = "malformed Basic credentials";
        goto out;
    }
    x->auth.who = xstrdup(user);
    snprintf(entity_key, sizeof(x->entity_key), "entity:%s", user);
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
    } else if (x->manual && otp->uses_left <= 0 &&
               (otp->label == NULL || strcmp(otp->label, x->l->cfg->name) == 0)) {
        /* Perhaps a retry of the request that took its last use: decided once
         * the CSR is read (enroll_match_pending); expiry no longer matters. */
        x->auth.method = "otp";
        x->auth.otp_id = otp->id;
        x->auth.otp_spent = true;
        x->auth.otp = otp;
        otp = NULL; /* steal */
        rc = KP_OK;
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
        x->auth.otp = otp;
        otp = NULL; /* steal */
        rc = KP_OK;
    }
out:
    if (rc == KP_ERR_UNAUTHORIZED && entity_key[0] != '\0')
        ratelimit_fail(x->srv->auth_failures, entity_key, x->srv->cfg->auth_fail_limit, time(NULL));
    OPENSSL_cleanse(hash, sizeof(hash));
    store_otp_free(otp);
    return rc;
}

/* The client certificate must chain to tls.client_ca (cert_verify, which
 * the transport checks against those anchors alone). One that kipuka issued
 * must not be revoked and authenticates only under the label that issued it;
 * any other is refused unless the label accepts external certificates
 * (docs/authorization.md). */
static enum kp_err enroll_auth_mtls(struct enroll_ctx *x)
{
    struct store_cert *mine = NULL;
    enum kp_err rc;

    x->auth.tried = "mtls";
    if (x->req->cred.cert == NULL) {
        x->why = "no client certificate";
        return KP_ERR_UNAUTHORIZED;
    }
    x->auth.who = csr_name_string(X509_get_subject_name(x->req->cred.cert));
    if (x->req->cred.cert_verify != X509_V_OK) {
        x->why = X509_verify_cert_error_string(x->req->cred.cert_verify);
        return KP_ERR_UNAUTHORIZED;
    }
    if (!x->l->cfg->allow_mtls) {
        x->why = "client certificate authentication is not allowed for this label";
        return KP_ERR_UNAUTHORIZED;
    }
    rc = est_issued_cert_find(x->srv, x->req->cred.cert, &mine);
    if (rc == KP_ERR_NOT_FOUND && !x->l->cfg->mtls_accept_external) {
        x->why = "client certificate not issued by kipuka, and this label does not accept others "
                 "(mtls_accept_external)";
        rc = KP_ERR_FORBIDDEN;
    } else if (rc == KP_ERR_NOT_FOUND) {
        x->auth.method = "mtls";
        rc = KP_OK;
    } else if (rc == KP_OK && strcmp(mine->status, "valid") != 0) {
        x->why = "client certificate revoked";
        rc = KP_ERR_UNAUTHORIZED;
    } else if (rc == KP_OK && strcmp(mine->label, x->l->cfg->name) != 0) {
        /* a certificate stays under the label (CA and profile) that issued it */
        x->why = "client certificate was issued under another label";
        rc = KP_ERR_FORBIDDEN;
    } else if (rc == KP_OK) {
        x->auth.method = "mtls";
    }
    store_cert_free(mine);
    return rc;
}

/* A DTLS PSK (est/psk_auth.c); failures count per identity as per OTP user. */
static enum kp_err enroll_auth_psk(struct enroll_ctx *x)
{
    enum kp_err rc;

    x->auth.tried = "psk";
    x->auth.who = xstrndup(x->req->cred.psk_identity, PSK_IDENTITY_MAX);
    snprintf(x->entity_key, sizeof(x->entity_key), "entity:%s", x->auth.who);
    rc = enroll_rate_check(x, x->entity_key);
    if (rc == KP_OK)
        rc = est_psk_authenticate(x->srv, x->l, x->req, &x->auth.psk, &x->why);
    if (rc == KP_OK)
        x->auth.method = "psk";
    else if (rc == KP_ERR_UNAUTHORIZED)
        ratelimit_fail(x->srv->auth_failures, x->entity_key, x->srv->cfg->auth_fail_limit,
                       time(NULL));
    return rc;
}

/* A password pair was sent, well-formed or not. */
static bool enroll_has_password(const struct est_request *req)
{
    return req->cred.user != NULL || req->cred.password_malformed;
}

static enum kp_err enroll_authenticate_once(struct enroll_ctx *x)
{
    /* a DTLS session has a PSK or a certificate, never HTTP Basic */
    if (x->req->cred.psk_identity != NULL && !enroll_has_password(x->req) &&
        x->req->cred.cert == NULL)
        return enroll_auth_psk(x);
    if (x->req->op == EST_OP_SIMPLEREENROLL)
        return enroll_auth_mtls(x); /* RFC 7030 4.2.2: the certificate being renewed */
    if (enroll_has_password(x->req))
        return enroll_auth_otp(x);
    if (x->req->cred.cert != NULL)
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
    if (rc != KP_ERR_UNAUTHORIZED || (!enroll_has_password(x->req) && x->req->cred.cert == NULL &&
                                      x->req->cred.psk_identity == NULL))
        return rc;
    ratelimit_fail(x->srv->auth_failures, x->addr_key, x->srv->cfg->auth_fail_limit_addr, now);
    return rc;
}

/* RFC 7030 3.5 and 4.2.2: tie the CSR to the authenticated certificate.
 * Names are compared as DER ("identical", 4.2.2), subjectAltNames as exact
 * multisets; mtls_subject_match = false or reenroll_allow_change lifts it. */
static enum kp_err enroll_check_identity(struct enroll_ctx *x, const struct csr *csr)
{
    X509 *peer = x->req->cred.cert;
    GENERAL_NAMES *peer_sans = NULL;
    bool same_subject, same_sans, renewal = x->req->op == EST_OP_SIMPLEREENROLL;
    int crit = -1;

    if (strcmp(x->auth.method, "mtls") != 0)
        return KP_OK;
    if (renewal ? x->l->cfg->reenroll_allow_change : !x->l->cfg->mtls_subject_match)
        return KP_OK;
    same_subject = trust_name_identical(csr->subject, X509_get_subject_name(peer));
    /* two subjectAltName extensions (crit -2) read as none: never equal */
    peer_sans = X509_get_ext_d2i(peer, NID_subject_alt_name, &crit, NULL);
    same_sans = crit != -2 && csr_sans_equal(csr->sans, peer_sans);
    GENERAL_NAMES_free(peer_sans);
    if (!same_subject) {
        x->why = renewal ? "CSR subject differs from the certificate being renewed"
                         : "CSR subject differs from the client certificate subject";
        return KP_ERR_FORBIDDEN;
    }
    if (!same_sans) {
        x->why = renewal ? "CSR subjectAltName differs from the certificate being renewed"
                         : "CSR subjectAltName differs from the client certificate's";
        return KP_ERR_FORBIDDEN;
    }
    return KP_OK;
}

/* What an OTP may certify (docs/otp-identity.md): the label's otp_subject
 * rule, the subject and SANs bound to the OTP, never the CA's own name.
 * Checked before anything takes a use of the OTP. */
static enum kp_err enroll_check_otp_identity(struct enroll_ctx *x, const struct csr *csr)
{
    struct otpbind_rules r = {0};

    if (x->auth.psk != NULL)
        return est_psk_check_csr(x->l, x->auth.psk, csr, &x->why);
    if (x->auth.otp == NULL)
        return KP_OK;
    r.entity = x->auth.otp->entity_id;
    r.entity_rule = strcmp(x->l->cfg->otp_subject, "entity") == 0;
    r.subject = x->auth.otp->subject;
    r.sans = x->auth.otp->sans;
    r.ca_subject = X509_get_subject_name(x->l->ca->cert);
    return otpbind_check(&r, csr->subject, csr->sans, &x->why);
}

/* a and b[0..n) equal, ignoring case and spaces: RFC 2253 forms that an
 * admin subject check might confuse. */
static bool enroll_dn_alike(const char *a, const char *b, size_t n)
{
    size_t i = 0;

    for (;;) {
        while (*a == ' ')
            a++;
        while (i < n && b[i] == ' ')
            i++;
        if (*a == '\0' || i == n)
            return *a == '\0' && i == n;
        if (tolower((unsigned char)*a) != tolower((unsigned char)b[i]))
            return false;
        a++;
        i++;
    }
}

/* No label certifies an end entity under a CA's subject or an admin
 * subject (admin.client_subjects): compared loosely (X509_NAME_cmp's case
 * and space folding, and the same on the RFC 2253 strings) to refuse more,
 * never less. Checked before any OTP use is spent. */
static enum kp_err enroll_check_reserved(struct enroll_ctx *x, const struct csr *csr)
{
    const char *list = x->srv->cfg->admin_client_subjects;
    char *subject = NULL;
    enum kp_err rc = KP_OK;

    for (int i = 0; i < sk_X509_NAME_num(x->srv->ca_subjects); i++) {
        if (X509_NAME_cmp(csr->subject, sk_X509_NAME_value(x->srv->ca_subjects, i)) == 0) {
            x->why = "CSR subject is the subject of a CA";
            rc = KP_ERR_FORBIDDEN;
            goto out;
        }
    }
    subject = csr_name_string(csr->subject);
    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t len;
        p += strspn(p, " ;");
        len = strcspn(p, ";");
        if (len > 0 && enroll_dn_alike(subject, p, len)) {
            x->why = "CSR subject is an admin subject (admin.client_subjects)";
            rc = KP_ERR_FORBIDDEN;
            goto out;
        }
        p += len;
    }
out:
    free(subject);
    return rc;
}

/* The body is DER: the transport removed its own encodings (RFC 8951 for
 * HTTP) and says why when it could not. */
static enum kp_err enroll_read_csr(struct enroll_ctx *x, struct csr **out)
{
    const unsigned char *der = x->req->body;
    size_t der_len = x->req->body_len;
    unsigned char md[32];
    enum kp_err rc;

    if (x->req->content_type == EST_MEDIA_NONE) {
        x->why = NULL; /* the error table's message says it */
        return KP_ERR_NO_CONTENT_TYPE;
    }
    if (x->req->content_type != EST_MEDIA_PKCS10) {
        x->why = "the media type must be application/pkcs10";
        return KP_ERR_MEDIA_TYPE;
    }
    if (x->req->body_error != NULL) {
        x->why = x->req->body_error;
        return KP_ERR_BASE64;
    }
    if (der_len == 0) {
        x->why = "empty body";
        return KP_ERR_CSR;
    }
    rc = csr_parse(der, der_len, out);
    if (rc != KP_OK) {
        x->why = rc == KP_ERR_CSR_SIGNATURE ? "CSR signature does not verify"
                                            : "malformed PKCS#10 request";
        return rc;
    }
    /* a retry of a held request is recognised by its fingerprint: it may be
     * signed again (RFC 7030 4.2.3); the bytes' hash only finds rows held
     * before fingerprints were kept */
    if (EVP_Digest(der, der_len, md, NULL, EVP_sha256(), NULL) != 1 ||
        csr_fingerprint(*out, x->fingerprint) != KP_OK)
        return KP_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(&x->csr_sha256[2 * i], 3, "%02x", md[i]);
    x->csr_der = der;
    x->csr_der_len = der_len;
    return KP_OK;
}

/* Sign and commit (with the held request's row when this serves one); a
 * serial collision (never expected) gets a fresh serial. */
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
        row.archived_key = x->archived_key;
        row.archived_key_len = x->archived_key_len;
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
        if (x->pending != NULL)
            rc = store_pending_issue(x->srv->store, x->pending->id, &row, &ev);
        else
            rc = store_issue(x->srv->store, &row, x->auth.otp_id, &ev);
        if (rc != KP_ERR_CONFLICT)
            break;
        log_warn("serial %s already in the store; drawing another", row.serial);
    }
    if (rc == KP_ERR_UNAUTHORIZED)
        x->why = "OTP already used";
    if (rc == KP_ERR_NOT_FOUND) { /* another retry of the same approved request won */
        x->why = "this approved request was already served";
        rc = KP_ERR_FORBIDDEN;
    }
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

/* Manual approval: find the earlier request this one repeats (same label,
 * operation, identity, public key, subject and SANs; its CSR may be signed
 * again). A used-up OTP authenticates only such a repeat of the request that
 * consumed it. */
static enum kp_err enroll_match_pending(struct enroll_ctx *x)
{
    enum kp_err rc = KP_OK;

    if (x->manual) {
        rc =
            store_pending_find(x->srv->store, x->l->cfg->name, est_op_name(x->req->op), x->auth.who,
                               x->fingerprint, x->csr_sha256, (int64_t)time(NULL), &x->pending);
        if (rc == KP_ERR_NOT_FOUND)
            rc = KP_OK;
        if (rc != KP_OK)
            return rc;
    }
    if (x->auth.otp_spent && (x->pending == NULL || x->pending->otp_id != x->auth.otp_id)) {
        x->why = "OTP already used";
        enroll_auth_failed(x);
        return KP_ERR_UNAUTHORIZED;
    }
    return KP_OK;
}

/* What a held request answers once its repeat passed the checks: 202 while
 * pending, 403 once rejected, KP_OK once approved (issue now). */
static enum kp_err enroll_pending_state(struct enroll_ctx *x)
{
    if (x->pending == NULL)
        return KP_OK;
    if (strcmp(x->pending->status, "pending") == 0) {
        snprintf(x->why_buf, sizeof(x->why_buf), "request %lld is waiting for approval",
                 (long long)x->pending->id);
        x->why = x->why_buf;
        return KP_ERR_PENDING;
    }
    if (strcmp(x->pending->status, "rejected") == 0) {
        snprintf(x->why_buf, sizeof(x->why_buf), "request %lld was rejected by an operator",
                 (long long)x->pending->id);
        x->why = x->why_buf;
        return KP_ERR_FORBIDDEN;
    }
    return KP_OK; /* approved: issue now */
}

/* The key the certificate will carry and the label's EKUs, as the operator
 * sees them ("ec:P-256", "clientAuth,serverAuth"); *ekus is owned. */
static void enroll_shown(struct enroll_ctx *x, const struct csr *csr, const char **key, char **ekus)
{
    char buf[128] = "";
    size_t n = 0;

    *key = config_key_type_name(x->req->op == EST_OP_SERVERKEYGEN ? x->skg.key_type
                                                                  : (enum key_type)csr->key_type);
    for (int e = 0; e < EKU__MAX; e++)
        if (x->l->cfg->ekus & (1u << e))
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "",
                                  config_eku_name((enum eku)e));
    *ekus = xstrdup(buf);
}

/* An approved request is issued as the operator saw it: from the CSR that
 * was held (same key, subject and SANs as this repeat, which only proved it
 * still holds the key; enroll_check_approved compares the rest). *csrp
 * becomes the held CSR. */
static enum kp_err enroll_take_approved(struct enroll_ctx *x, struct csr **csrp)
{
    struct csr *held = NULL;
    char fp[CSR_FINGERPRINT_HEX];
    enum kp_err rc;

    rc = csr_parse(x->pending->csr, x->pending->csr_len, &held);
    if (rc == KP_OK)
        rc = csr_fingerprint(held, fp);
    if (rc != KP_OK || (x->pending->fingerprint[0] != '\0' && strcmp(fp, x->fingerprint) != 0)) {
        x->why = "the held request's CSR cannot be read back";
        csr_free(held);
        return KP_ERR_INTERNAL;
    }
    csr_free(*csrp);
    *csrp = held; /* steal */
    return KP_OK;
}

/* After the profile and serverkeygen plan are made again for an approved
 * request: the key type and EKUs must be those the operator approved. */
static enum kp_err enroll_check_approved(struct enroll_ctx *x, const struct csr *csr)
{
    const char *key;
    char *ekus = NULL;
    enum kp_err rc = KP_OK;

    if (x->pending == NULL || x->pending->key_type[0] == '\0')
        return KP_OK; /* held before these were recorded */
    enroll_shown(x, csr, &key, &ekus);
    if (strcmp(key, x->pending->key_type) != 0 || strcmp(ekus, x->pending->ekus) != 0) {
        snprintf(x->why_buf, sizeof(x->why_buf),
                 "request %lld was approved for %s [%s]; the label now gives %s [%s]",
                 (long long)x->pending->id, x->pending->key_type, x->pending->ekus, key, ekus);
        x->why = x->why_buf;
        rc = KP_ERR_FORBIDDEN;
    }
    free(ekus);
    return rc;
}

/* Hold a request that passed every check until an operator decides; the OTP
 * use is taken now, in the same commit, so it cannot start a second one. */
static enum kp_err enroll_hold(struct enroll_ctx *x, const struct csr *csr)
{
    struct store_pending p = {0};
    const char *key;
    struct store_audit ev = {0};
    char detail[64];
    int64_t id = 0;
    enum kp_err rc;
    time_t now = time(NULL);

    p.label = (char *)x->l->cfg->name;
    p.operation = (char *)est_op_name(x->req->op);
    p.requester = x->auth.who;
    p.auth_method = (char *)x->auth.method;
    p.otp_id = x->auth.otp_id;
    p.csr_sha256 = x->csr_sha256;
    p.fingerprint = x->fingerprint;
    p.subject = csr_name_string(csr->subject);
    p.sans = csr_sans_join(csr->sans, "\n");
    enroll_shown(x, csr, &key, &p.ekus);
    p.key_type = (char *)key;
    p.csr = (unsigned char *)x->csr_der; /* borrowed: store_pending_put only reads it */
    p.csr_len = x->csr_der_len;
    p.created_at = now;
    p.expires_at = now + x->l->cfg->approval_ttl;
    ev.event = est_op_name(x->req->op);
    ev.outcome = kp_err_code(KP_ERR_PENDING);
    ev.label = x->l->cfg->name;
    ev.subject = x->auth.who;
    ev.peer = x->req->peer_addr;
    ev.detail = "held for approval";
    rc = store_pending_put(x->srv->store, &p, &ev, &id);
    if (rc == KP_OK) {
        snprintf(detail, sizeof(detail), "request %lld is waiting for approval", (long long)id);
        snprintf(x->why_buf, sizeof(x->why_buf), "%s", detail);
        x->why = x->why_buf;
        x->audited = true;
        log_info("req=%llu held as request %lld label=%s subject=\"%s\" key=%s for %s",
                 (unsigned long long)x->req->id, (long long)id, p.label, p.subject, p.key_type,
                 p.requester);
        rc = KP_ERR_PENDING;
    } else if (rc == KP_ERR_UNAUTHORIZED) {
        x->why = "OTP already used";
    }
    free(p.subject);
    free(p.sans);
    free(p.ekus);
    return rc;
}

/* Everything up to the signed certificate; *key is the generated key for
 * serverkeygen. The CSR stays with the caller for the answer. */
static enum kp_err enroll_run(struct enroll_ctx *x, struct csr **csrp, X509 **cert, EVP_PKEY **key)
{
    enum kp_err rc;
    struct csr *csr = NULL, view;
    struct ca_template t;
    bool skg = x->req->op == EST_OP_SERVERKEYGEN;

    rc = enroll_authenticate(x);
    if (rc != KP_OK)
        goto out;
    rc = enroll_read_csr(x, csrp);
    if (rc != KP_OK)
        goto out;
    csr = *csrp;
    rc = enroll_check_reserved(x, csr);
    if (rc != KP_OK)
        goto out;
    rc = enroll_match_pending(x);
    if (rc != KP_OK)
        goto out;
    rc = enroll_check_otp_identity(x, csr);
    if (rc != KP_OK)
        goto out;
    /* A repeat of a held request comes on a new connection with a CSR signed
     * again for it: its binding is checked against this connection, as for
     * any request (RFC 7030 3.5); csr_parse has verified its signature. */
    rc = chanbind_check(x->l->cfg->channel_binding, csr->challenge, csr->challenge_len,
                        x->req->channel_binding, x->req->channel_binding_len);
    if (rc != KP_OK) {
        x->why = csr->challenge ? "challengePassword does not match this TLS channel"
                                : "this label requires the TLS channel binding in the CSR";
        goto out;
    }
    rc = enroll_pending_state(x);
    if (rc != KP_OK)
        goto out;
    if (x->pending != NULL) {
        rc = enroll_take_approved(x, csrp);
        if (rc != KP_OK)
            goto out;
        csr = *csrp;
    }
    rc = enroll_check_identity(x, csr);
    if (rc != KP_OK)
        goto out;
    /* serverkeygen: the policy applies to the key we will generate, not to
     * the CSR's (RFC 7030 4.4.1) */
    view = *csr;
    if (skg) {
        rc = skg_plan_make(x->l, csr, strcmp(x->auth.method, "mtls") == 0, &x->skg, &x->why);
        if (rc != KP_OK)
            goto out;
        view.key_type = (int)x->skg.key_type;
    }
    rc = profile_apply(x->l->cfg, x->l->ca, &view, time(NULL), &t, &x->why);
    if (rc != KP_OK)
        goto out;
    rc = enroll_check_approved(x, csr);
    if (rc != KP_OK)
        goto out;
    if (x->manual && x->pending == NULL) {
        rc = enroll_hold(x, csr);
        goto out;
    }
    if (skg) {
        rc = keygen_generate(x->skg.key_type, key);
        if (rc != KP_OK)
            goto out;
        t.pubkey = *key;
        if (x->l->archive != NULL) {
            rc = skg_archive(x->l, *key, &x->archived_key, &x->archived_key_len);
            if (rc != KP_OK)
                goto out;
        }
    }
    rc = enroll_issue(x, csr, &t, cert);
out:
    store_otp_free(x->auth.otp);
    x->auth.otp = NULL;
    return rc;
}

/* The answer: the certificate for the enroll operations, the key and its
 * certificate for serverkeygen. */
static enum kp_err enroll_respond(struct enroll_ctx *x, X509 *cert, EVP_PKEY *key,
                                  struct est_answer *ans)
{
    if (x->req->op == EST_OP_SERVERKEYGEN)
        return skg_respond(&x->skg, key, cert, x->req->cred.cert, x->req->accept, ans);
    return est_answer_cert(ans, cert, x->req->accept);
}

void est_enroll(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                struct est_answer *ans)
{
    struct enroll_ctx x = {.srv = srv, .l = l, .req = req};
    struct csr *csr = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    enum kp_err rc;

    x.manual = strcmp(l->cfg->approval, "manual") == 0;
    rc = enroll_run(&x, &csr, &cert, &key);
    if (x.auth.who != NULL)
        snprintf(ans->auth_subject, sizeof(ans->auth_subject), "%s", x.auth.who);
    ans->auth_method = x.auth.tried;
    if (rc == KP_OK)
        rc = enroll_respond(&x, cert, key, ans);
    if (rc != KP_OK) {
        struct store_audit ev = {
            .event = est_op_name(req->op),
            .outcome = kp_err_code(rc),
            .label = l->cfg->name,
            .subject = x.auth.who,
            .peer = req->peer_addr,
            .detail = x.why ? x.why : kp_err_message(rc),
        };
        log_info("req=%llu %s %s label=%s who=%s peer=%s: %s", (unsigned long long)req->id,
                 est_op_name(req->op), rc == KP_ERR_PENDING ? "deferred" : "refused", l->cfg->name,
                 x.auth.who ? x.auth.who : "-", req->peer_addr ? req->peer_addr : "-", ev.detail);
        /* Refusals of clients that did not authenticate are bounded: one row
         * per address, reason and window, then a count (docs/audit.md). */
        if (!x.audited && x.auth.method == NULL &&
            (rc == KP_ERR_UNAUTHORIZED || rc == KP_ERR_RATE_LIMITED))
            refusals_audit(srv->refusals, &ev, x.addr_key + strlen("addr:"), time(NULL));
        else if (!x.audited)
            store_audit_add(srv->store, &ev);
        /* The audit row has the reason. A 401 says nothing about why (no OTP
         * state oracle), a server error nothing internal; other refusals explain. */
        est_answer_fail(ans, rc, rc == KP_ERR_UNAUTHORIZED || kp_err_is_server(rc) ? NULL : x.why);
        ans->retry_after = x.retry_after;
        /* RFC 7030 4.2.3: say when to come back */
        if (rc == KP_ERR_UNAVAILABLE || rc == KP_ERR_PENDING)
            ans->retry_after = srv->cfg->est_retry_after;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    csr_free(csr);
    OPENSSL_free(x.archived_key); /* ciphertext */
    store_pending_free(x.pending);
    free(x.auth.who);
}
