/* EST-coaps to the EST core and back. The core still speaks part HTTP
 * (media type strings, base64 bodies, multipart/mixed): this file undoes
 * that, so the rest of src/coap/ sees only DER and Content-Formats. */
#include "coap/bridge.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "coap/multipart.h"
#include "core/base64.h"
#include "core/xalloc.h"
#include "est/est.h"
#include "pki/pkcs7.h"
#include "pki/trust.h"

/* RFC 9148 Table 1 and 8.2 (resource types). skc and fullcmc are not offered. */
static const struct {
    struct bridge_op info;
    enum est_op op;
} ops[] = {
    {{"crts", "ace.est.crts", "281 287", false, false, "cacerts"}, EST_OP_CACERTS},
    {{"sen", "ace.est.sen", "281 287", true, true, "simpleenroll"}, EST_OP_SIMPLEENROLL},
    {{"sren", "ace.est.sren", "281 287", true, true, "simplereenroll"}, EST_OP_SIMPLEREENROLL},
    {{"skg", "ace.est.skg", "62", true, true, "serverkeygen"}, EST_OP_SERVERKEYGEN},
    {{"att", "ace.est.att", "285", false, false, "csrattrs"}, EST_OP_CSRATTRS},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

size_t bridge_op_count(void)
{
    return NOPS;
}

const struct bridge_op *bridge_op_at(size_t i)
{
    return i < NOPS ? &ops[i].info : NULL;
}

const struct bridge_op *bridge_op_find(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPS; i++)
        if (strlen(ops[i].info.short_name) == len && memcmp(ops[i].info.short_name, name, len) == 0)
            return &ops[i].info;
    return NULL;
}

static enum est_op bridge_est_op(const struct bridge_op *op)
{
    for (size_t i = 0; i < NOPS; i++)
        if (&ops[i].info == op)
            return ops[i].op;
    return EST_OP__MAX;
}

void bridge_est_free(struct est_server *est)
{
    est_server_free(est);
}

bool bridge_label_known(const struct est_server *est, const char *label)
{
    return est_server_label_index(est, label[0] != '\0' ? label : "default") >= 0;
}

long bridge_cert_verify(const struct est_server *est, X509 *cert, STACK_OF(X509) * chain)
{
    return trust_anchors_verify(est_server_client_anchors(est), cert, chain);
}

/* PSK identities come with the psk_file work; until then none is known. */
bool bridge_psk_enabled(const struct est_server *est)
{
    (void)est;
    return false;
}

bool bridge_psk_key(const struct est_server *est, const unsigned char *identity, size_t id_len,
                    unsigned char *key, size_t *key_len)
{
    (void)est;
    (void)identity;
    (void)id_len;
    (void)key;
    (void)key_len;
    return false;
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

/* One part of the core's multipart/mixed /serverkeygen body (RFC 7030
 * 4.4.2): the headers' Content-Type and the base64 between them and the
 * next delimiter. */
struct mixed_part {
    bool pkcs8;
    unsigned char *der;
    size_t len;
};

static enum kp_err mixed_split(const struct est_response *r, struct mixed_part parts[2])
{
    const char *b = strstr(r->content_type, "boundary=");
    const char *p = r->body, *end = r->body + r->body_len;
    char delim[80];
    size_t dl;
    int n = 0;

    if (b == NULL)
        return KP_ERR_INTERNAL;
    snprintf(delim, sizeof(delim), "--%s", b + 9);
    dl = strlen(delim);
    p = memmem(p, (size_t)(end - p), delim, dl);
    while (p != NULL && n < 2) {
        const char *head = p + dl, *body, *next;
        body = memmem(head, (size_t)(end - head), "\r\n\r\n", 4);
        if (body == NULL)
            break;
        body += 4;
        next = memmem(body, (size_t)(end - body), delim, dl);
        if (next == NULL)
            break;
        parts[n].pkcs8 = memmem(head, (size_t)(body - head), "application/pkcs8", 17) != NULL;
        if (base64_decode(body, (size_t)(next - body), &parts[n].der, &parts[n].len) != KP_OK)
            return KP_ERR_INTERNAL;
        n++;
        p = next;
    }
    return n == 2 ? KP_OK : KP_ERR_INTERNAL;
}

/* A 200 of the core into DER in the Content-Format the client asked for. */
static enum kp_err bridge_answer_ok(const struct bridge_request *req, enum est_op op,
                                    const struct est_response *r, struct bridge_answer *ans)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    unsigned char *der = NULL;
    size_t len = 0;
    struct mixed_part parts[2] = {{false, NULL, 0}, {false, NULL, 0}};

    if (op == EST_OP_SERVERKEYGEN) {
        struct multipart_part mp[2];
        if (mixed_split(r, parts) != KP_OK)
            goto out;
        /* RFC 9148 5.8: the key (284, or 280 when encrypted), then the certificate */
        mp[0] = (struct multipart_part){parts[0].pkcs8 ? COAP_CF_PKCS8 : COAP_CF_SERVER_KEY,
                                        parts[0].der, parts[0].len};
        mp[1] = (struct multipart_part){COAP_CF_CERTS, parts[1].der, parts[1].len};
        multipart_core_encode(mp, 2, &ans->payload, &ans->payload_len);
        ans->content_format = COAP_CF_MULTIPART;
        ans->secret = true;
        rc = KP_OK;
        goto out;
    }
    if (base64_decode(r->body, r->body_len, &der, &len) != KP_OK)
        goto out;
    if (op == EST_OP_CSRATTRS) {
        ans->content_format = COAP_CF_CSRATTRS;
    } else if (req->accept == COAP_CF_PKIX_CERT) {
        unsigned char *one = NULL;
        size_t one_len = 0;
        if (pkcs7_first_cert(der, len, &one, &one_len) != KP_OK)
            goto out;
        free(der);
        der = one; /* steal */
        len = one_len;
        ans->content_format = COAP_CF_PKIX_CERT;
    } else {
        ans->content_format = COAP_CF_CERTS;
    }
    ans->payload = der;
    ans->payload_len = len;
    der = NULL; /* steal */
    rc = KP_OK;
out:
    free(der);
    for (int i = 0; i < 2; i++)
        if (parts[i].der != NULL)
            OPENSSL_clear_free(parts[i].der, parts[i].len);
    return rc;
}

void bridge_handle(struct est_server *est, const struct bridge_request *req,
                   struct bridge_answer *ans)
{
    struct est_request er;
    struct est_response r;
    enum est_op op = bridge_est_op(req->op);

    memset(ans, 0, sizeof(*ans));
    ans->max_age = -1;
    memset(&er, 0, sizeof(er));
    er.op = op;
    snprintf(er.label, sizeof(er.label), "%s", req->label);
    er.method = req->op->post ? EST_POST : EST_GET;
    er.content_type = req->content_format == COAP_CF_PKCS10 ? "application/pkcs10" : NULL;
    er.body = req->body != NULL ? req->body : (const unsigned char *)"";
    er.body_len = req->body_len;
    er.peer_cert = req->cert;
    er.peer_chain = req->chain;
    /* no channel binding over DTLS: RFC 9148 defines none */
    er.peer_verify =
        req->cert != NULL ? bridge_cert_verify(est, req->cert, req->chain) : X509_V_ERR_UNSPECIFIED;
    er.peer_addr = req->peer_addr;
    er.id = req->id;

    est_handle(est, &er, &r);
    snprintf(ans->subject, sizeof(ans->subject), "%s", r.auth_subject);
    ans->err = r.err;
    if (r.status == 200) {
        if (bridge_answer_ok(req, op, &r, ans) != KP_OK) {
            bridge_answer_error(ans, KP_ERR_INTERNAL, NULL);
        } else {
            /* RFC 9148 5.4: 2.05 Content for GET, 2.04 Changed for POST */
            ans->code = req->op->post ? COAP_CODE(2, 4) : COAP_CODE(2, 5);
            ans->err = KP_OK;
        }
    } else if (r.status == 202) {
        /* RFC 9148 5.7: 5.03 with Max-Age saying when to ask again */
        bridge_answer_error(ans, KP_ERR_PENDING, NULL);
        ans->max_age = r.retry_after > 0 ? r.retry_after : 30;
    } else {
        enum kp_err e = r.err != KP_OK ? r.err : KP_ERR_INTERNAL;
        char why[200];
        size_t n = r.body_len < sizeof(why) - 1 ? r.body_len : sizeof(why) - 1;
        /* the core's text/plain body is the diagnostic */
        memcpy(why, r.body != NULL ? r.body : "", r.body != NULL ? n : 0);
        why[r.body != NULL ? n : 0] = '\0';
        bridge_answer_error(ans, e, why);
        if (r.retry_after > 0)
            ans->max_age = r.retry_after;
    }
    est_response_cleanup(&r);
}
