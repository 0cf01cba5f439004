#include "http/reply.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/xalloc.h"
#include "http/media.h"

static void reply_body_free(struct http_answer *out)
{
    if (out->body != NULL && out->body_secret)
        OPENSSL_cleanse(out->body, out->body_len);
    free(out->body);
    out->body = NULL;
    out->body_len = 0;
    out->body_secret = false;
}

void http_est_error(struct http_answer *out, enum kp_err err, const char *accept,
                    const char *detail)
{
    const char *msg = detail ? detail : kp_err_message(err);

    reply_body_free(out);
    out->status = kp_err_http_status(err);
    out->err = err;
    out->base64_cte = false;
    out->www_authenticate = out->status == 401 ? HTTP_BASIC_CHALLENGE : NULL;
    if (http_accepts_json(accept)) {
        json_t *j = json_pack("{s:s, s:s}", "error", kp_err_code(err), "message", msg);
        if (j == NULL) /* msg not UTF-8: fall back to the fixed message */
            j = json_pack("{s:s, s:s}", "error", kp_err_code(err), "message", kp_err_message(err));
        out->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (out->body == NULL)
            out->body = xstrdup("{\"error\":\"internal_error\"}");
        out->content_type = "application/json";
    } else {
        out->body = xasprintf("%s\n", msg);
        out->content_type = "text/plain; charset=utf-8";
    }
    out->body_len = strlen(out->body);
}

/* A growable body; appended pieces are wiped with it (they may hold key data). */
struct reply_buf {
    char *p;
    size_t len, cap;
};

static void reply_add(struct reply_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *q = xmalloc(cap);
        if (b->len > 0)
            memcpy(q, b->p, b->len);
        if (b->p != NULL)
            OPENSSL_clear_free(b->p, b->cap);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void reply_adds(struct reply_buf *b, const char *s)
{
    reply_add(b, s, strlen(s));
}

/* One body part: headers, blank line, base64 with CRLF line ends (RFC 2046 5.1.1). */
static void reply_part(struct reply_buf *b, const char *boundary, const struct est_part *part)
{
    size_t b64_len = 0;
    char *b64 = base64_encode(part->der, part->len, &b64_len);

    reply_adds(b, "--");
    reply_adds(b, boundary);
    reply_adds(b, "\r\nContent-Type: ");
    reply_adds(b, http_media_name(part->media));
    reply_adds(b, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    for (size_t i = 0; i < b64_len; i++) {
        if (b64[i] == '\n')
            reply_add(b, "\r\n", 2);
        else
            reply_add(b, &b64[i], 1);
    }
    OPENSSL_clear_free(b64, b64_len);
}

/* RFC 7030 4.4.2: multipart/mixed, each part base64 with its own headers. */
static bool reply_multipart(struct http_answer *out, const struct est_answer *ans)
{
    unsigned char rnd[12];
    char boundary[48];
    struct reply_buf b = {NULL, 0, 0};

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return false;
    /* '-' and '_' never occur in base64, so the boundary cannot appear in a part */
    snprintf(boundary, sizeof(boundary), "est-%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x_",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9],
             rnd[10], rnd[11]);
    for (size_t i = 0; i < ans->nparts; i++)
        reply_part(&b, boundary, &ans->parts[i]);
    reply_adds(&b, "--");
    reply_adds(&b, boundary);
    reply_adds(&b, "--\r\n");
    snprintf(out->ctype_buf, sizeof(out->ctype_buf), "multipart/mixed; boundary=%s", boundary);
    out->content_type = out->ctype_buf;
    out->base64_cte = false; /* each part says it */
    out->body = b.p;
    out->body_len = b.len;
    out->body_secret = true; /* the parts were joined by copying: wipe the joined copy too */
    return true;
}

void http_b64_memo_free(struct http_b64_memo *m)
{
    for (unsigned i = 0; i < HTTP_B64_MEMO_SLOTS; i++) {
        free(m->slot[i].der);
        free(m->slot[i].b64);
    }
    memset(m, 0, sizeof(*m));
}

/* base64_encode, through the memo when there is one. */
static char *reply_base64(struct http_b64_memo *m, const unsigned char *der, size_t len,
                          size_t *out_len)
{
    unsigned i;

    if (m == NULL)
        return base64_encode(der, len, out_len);
    for (i = 0; i < HTTP_B64_MEMO_SLOTS; i++)
        if (m->slot[i].der != NULL && m->slot[i].der_len == len &&
            memcmp(m->slot[i].der, der, len) == 0)
            break;
    if (i == HTTP_B64_MEMO_SLOTS) {
        i = m->next;
        m->next = (m->next + 1) % HTTP_B64_MEMO_SLOTS;
        free(m->slot[i].der);
        free(m->slot[i].b64);
        m->slot[i].der = xmalloc(len > 0 ? len : 1);
        memcpy(m->slot[i].der, der, len);
        m->slot[i].der_len = len;
        m->slot[i].b64 = base64_encode(der, len, &m->slot[i].b64_len);
    }
    *out_len = m->slot[i].b64_len;
    return xstrdup(m->slot[i].b64);
}

void http_est_reply(struct http_answer *out, enum est_op op, const struct est_answer *ans,
                    const char *accept, struct http_b64_memo *memo)
{
    const struct est_op_info *info = est_op_info(op);

    snprintf(out->auth_subject, sizeof(out->auth_subject), "%s", ans->auth_subject);
    out->auth_method = ans->auth_method;
    if (ans->outcome == EST_DONE && ans->nparts == 1 &&
        http_media_name(ans->parts[0].media) != NULL) {
        out->status = 200;
        out->err = KP_OK;
        out->content_type = http_media_name(ans->parts[0].media);
        out->base64_cte = true;
        if (ans->parts[0].secret || (op != EST_OP_CACERTS && op != EST_OP_CSRATTRS))
            memo = NULL;
        out->body = reply_base64(memo, ans->parts[0].der, ans->parts[0].len, &out->body_len);
        out->body_secret = ans->parts[0].secret;
        return;
    }
    if (ans->outcome == EST_DONE && ans->nparts > 1 && reply_multipart(out, ans)) {
        out->status = 200;
        out->err = KP_OK;
        return;
    }
    if (ans->outcome == EST_DONE) {
        http_est_error(out, KP_ERR_INTERNAL, accept, NULL);
        return;
    }
    http_est_error(out, ans->outcome == EST_HELD ? KP_ERR_PENDING : ans->err, accept,
                   ans->detail[0] != '\0' ? ans->detail : NULL);
    out->retry_after = ans->retry_after;
    if (out->status == 405 && info != NULL)
        out->allow = info->post ? "POST" : "GET, HEAD";
}

void http_admin_reply(struct http_answer *out, struct admin_response *resp, const char *accept)
{
    if (resp->est_error) {
        http_est_error(out, resp->err, accept, resp->detail[0] != '\0' ? resp->detail : NULL);
        out->status = resp->status;
    } else {
        out->status = resp->status;
        out->content_type = resp->content_type;
        out->body = resp->body;
        out->body_len = resp->body_len;
        out->body_secret = resp->body_secret;
        resp->body = NULL; /* steal */
        resp->body_len = 0;
        if (resp->www_authenticate != NULL)
            out->www_authenticate = resp->www_authenticate;
    }
    out->retry_after = resp->retry_after;
    out->allow = resp->allow;
    snprintf(out->auth_subject, sizeof(out->auth_subject), "%s", resp->auth_subject);
}

void http_answer_cleanup(struct http_answer *out)
{
    reply_body_free(out);
}
