/* EST-coaps to the EST core and back: Content-Formats to est_media, the
 * DTLS peer to est_credentials, est_answer parts to DER payloads (one part
 * as is, two as multipart-core), outcomes to CoAP codes. */
#include "coap/bridge.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/psk.h"
#include "coap/multipart.h"
#include "core/xalloc.h"
#include "pki/trust.h"

/* RFC 9148 5.8 asks a held client to come back; when the core gives no time */
#define BRIDGE_HELD_MAX_AGE 30

const char *bridge_op_ct(enum est_op op)
{
    switch (op) {
    case EST_OP_CACERTS:
    case EST_OP_SIMPLEENROLL:
    case EST_OP_SIMPLEREENROLL:
        return "281 287";
    case EST_OP_SERVERKEYGEN:
        return "62";
    case EST_OP_CSRATTRS:
        return "285";
    default:
        return NULL;
    }
}

bool bridge_label_known(const struct est_server *est, const char *label)
{
    return est_server_label_index(est, label[0] != '\0' ? label : "default") >= 0;
}

bool bridge_psk_key(const struct est_server *est, const unsigned char *identity, size_t id_len,
                    unsigned char *key, size_t *key_len)
{
    const struct psk_table *t = est_server_psk(est);
    const struct psk_entry *e = t != NULL ? psk_find(t, (const char *)identity, id_len) : NULL;

    if (e == NULL || e->key_len > *key_len)
        return false;
    memcpy(key, e->key, e->key_len);
    *key_len = e->key_len;
    return true;
}

void bridge_answer_error(struct bridge_answer *ans, enum kp_err err, const char *why)
{
    const char *msg = why != NULL && why[0] != '\0' ? why : kp_err_message(err);
    size_t n = strlen(msg);

    bridge_answer_cleanup(ans);
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    ans->code = kp_err_coap_code(err);
    ans->err = err;
    ans->content_format = COAP_CF_NONE;
    ans->payload = xmalloc(n + 1);
    memcpy(ans->payload, msg, n);
    ans->payload_len = n;
}

void bridge_answer_cleanup(struct bridge_answer *ans)
{
    if (ans->payload != NULL && ans->secret)
        OPENSSL_cleanse(ans->payload, ans->payload_len);
    free(ans->payload);
    ans->payload = NULL;
    ans->payload_len = 0;
    ans->secret = false;
}

static enum est_media media_of(int cf)
{
    switch (cf) {
    case COAP_CF_NONE:
        return EST_MEDIA_NONE;
    case COAP_CF_PKCS10:
        return EST_MEDIA_PKCS10;
    case COAP_CF_CERTS:
        return EST_MEDIA_CERTS;
    case COAP_CF_PKIX_CERT:
        return EST_MEDIA_PKIX_CERT;
    case COAP_CF_CSRATTRS:
        return EST_MEDIA_CSRATTRS;
    default:
        return EST_MEDIA_OTHER;
    }
}

static int cf_of(enum est_media m)
{
    switch (m) {
    case EST_MEDIA_CERTS:
        return COAP_CF_CERTS;
    case EST_MEDIA_PKIX_CERT:
        return COAP_CF_PKIX_CERT;
    case EST_MEDIA_CSRATTRS:
        return COAP_CF_CSRATTRS;
    case EST_MEDIA_PKCS8:
        return COAP_CF_PKCS8;
    case EST_MEDIA_SERVER_KEY:
        return COAP_CF_SERVER_KEY;
    case EST_MEDIA_PKCS10:
        return COAP_CF_PKCS10;
    default:
        return COAP_CF_NONE;
    }
}

/* The core's parts as the payload: one as it is, two (RFC 9148 5.8: the
 * key, then the certificate) as multipart-core. */
static enum kp_err answer_parts(struct est_answer *r, struct bridge_answer *ans)
{
    struct multipart_part mp[EST_PARTS_MAX];
    bool secret = false;

    if (r->nparts == 1) {
        ans->content_format = cf_of(r->parts[0].media);
        ans->payload = r->parts[0].der; /* steal */
        ans->payload_len = r->parts[0].len;
        ans->secret = r->parts[0].secret;
        r->parts[0].der = NULL;
        r->parts[0].len = 0;
        return ans->content_format != COAP_CF_NONE ? KP_OK : KP_ERR_INTERNAL;
    }
    if (r->nparts != 2)
        return KP_ERR_INTERNAL;
    for (size_t i = 0; i < r->nparts; i++) {
        mp[i] = (struct multipart_part){cf_of(r->parts[i].media), r->parts[i].der, r->parts[i].len};
        if (mp[i].content_format == COAP_CF_NONE)
            return KP_ERR_INTERNAL;
        secret = secret || r->parts[i].secret;
    }
    multipart_core_encode(mp, r->nparts, &ans->payload, &ans->payload_len);
    ans->content_format = COAP_CF_MULTIPART;
    ans->secret = secret;
    return KP_OK;
}

void bridge_handle(struct est_server *est, const struct bridge_request *req,
                   struct bridge_answer *ans)
{
    struct est_request er;
    struct est_answer r;

    memset(ans, 0, sizeof(*ans));
    ans->max_age = -1;
    memset(&er, 0, sizeof(er));
    memset(&r, 0, sizeof(r));
    er.op = req->op->op;
    snprintf(er.label, sizeof(er.label), "%s", req->label);
    er.method = req->op->post ? EST_POST : EST_GET;
    er.content_type = media_of(req->content_format);
    /* /skg answers multipart-core whatever its certificate part is; the
     * others may ask for the certificate alone (287) */
    er.accept = req->op->op == EST_OP_SERVERKEYGEN ? EST_MEDIA_NONE : media_of(req->accept);
    er.body = req->body != NULL ? req->body : (const unsigned char *)"";
    er.body_len = req->body_len;
    er.cred.cert = req->cert;
    er.cred.chain = req->chain;
    er.cred.cert_verify = req->cert != NULL ? trust_anchors_verify(est_server_client_anchors(est),
                                                                   req->cert, req->chain)
                                            : X509_V_ERR_UNSPECIFIED;
    er.cred.psk_identity = req->psk_identity;
    /* no channel binding over DTLS: RFC 9148 defines none */
    er.transport = "coaps";
    er.peer_addr = req->peer_addr;
    er.id = req->id;

    est_handle(est, &er, &r);
    snprintf(ans->subject, sizeof(ans->subject), "%s", r.auth_subject);
    if (r.outcome == EST_DONE) {
        if (answer_parts(&r, ans) != KP_OK) {
            bridge_answer_error(ans, KP_ERR_INTERNAL, NULL);
        } else {
            /* RFC 9148 5.4: 2.05 Content for GET, 2.04 Changed for POST */
            ans->code = req->op->post ? COAP_CODE(2, 4) : COAP_CODE(2, 5);
            ans->err = KP_OK;
        }
    } else if (r.outcome == EST_HELD) {
        /* RFC 9148 5.7: 5.03 with Max-Age saying when to ask again */
        bridge_answer_error(ans, KP_ERR_PENDING, r.detail);
        ans->max_age = r.retry_after > 0 ? r.retry_after : BRIDGE_HELD_MAX_AGE;
    } else {
        bridge_answer_error(ans, r.err != KP_OK ? r.err : KP_ERR_INTERNAL, r.detail);
        if (r.retry_after > 0)
            ans->max_age = r.retry_after;
    }
    est_answer_cleanup(&r);
}
