/* One EST-coaps request: route it (map.c), collect a Block1 upload within
 * server.max_body_bytes, answer GETs at once and POSTs as separate
 * responses (RFC 7252 5.2.2) once the pool has run them, then log it.
 * CoAP thread only, except coap_exchange_run. */
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap/input.h"
#include "coap/internal.h"
#include "coap/map.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "core/xalloc.h"

#define COAP_CODE_CONTINUE COAP_CODE(2, 31)
#define COAP_CODE_INCOMPLETE COAP_CODE(4, 8) /* RFC 7959 2.9.2 */
#define COAP_CODE_NOT_ACCEPTABLE COAP_CODE(4, 6)

/* A Block1 upload in progress on one session (RFC 7959 2.5); one at a time. */
struct upload {
    unsigned char *buf;
    size_t len;
};

/* A payload libcoap sends block by block after the handler returned. */
struct held {
    unsigned char *p;
    size_t len;
    bool secret;
};

/* What the access log and metrics need of a request. */
struct exchange_note {
    const char *peer;
    const char *path;
    int method;
    const struct est_op_info *op; /* NULL when not routed */
    const char *label;
    const struct timespec *t0;
    bool core; /* the answer came from the EST core, not from this file */
};

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Printable ASCII only, quotes and backslashes replaced, cut with "...". */
static void log_text(char *dst, size_t cap, const unsigned char *s, size_t len)
{
    size_t n = 0, i = 0;

    for (; i < len && n + 4 < cap; i++)
        dst[n++] = (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\') ? '?' : (char)s[i];
    if (i < len) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

static void request_path(const struct map_input *in, char *dst, size_t cap)
{
    size_t n = 0;

    dst[0] = '\0';
    for (size_t i = 0; i < in->nseg && n + 2 < cap; i++) {
        dst[n++] = '/';
        log_text(dst + n, cap - n, in->seg[i].p, in->seg[i].len);
        n += strlen(dst + n);
    }
    if (n == 0)
        snprintf(dst, cap, "/");
}

static const char *method_name(int m)
{
    static const char *const names[] = {"EMPTY",  "GET",   "POST",  "PUT",
                                        "DELETE", "FETCH", "PATCH", "iPATCH"};
    return m >= 0 && m < (int)(sizeof(names) / sizeof(names[0])) ? names[m] : "OTHER";
}

/* Access log line and counters: like HTTPS's, with transport=coaps. */
static void exchange_log(const struct exchange_note *n, const struct bridge_answer *ans,
                         uint64_t id)
{
    double ms = ms_since(n->t0);
    const char *op = n->op != NULL ? n->op->name : "none";
    const char *label = n->op == NULL || ans->err == KP_ERR_UNKNOWN_LABEL ? ""
                        : n->label[0] != '\0'                             ? n->label
                                                                          : "default";
    char code[24], subj[160];

    /* the HTTP status of the same outcome: one set of series for both */
    metrics_request(op, label, kp_err_http_status(ans->err), ms / 1000.0,
                    n->op != NULL && n->op->enrolls);
    metrics_coaps_request();
    if (n->core && (ans->err == KP_ERR_UNAVAILABLE || ans->err == KP_ERR_STORE))
        metrics_store_error();
    if (!log_enabled(LOG_INFO))
        return;
    snprintf(code, sizeof(code), "%d.%02d", ans->code >> 5, ans->code & 31);
    log_text(subj, sizeof(subj), (const unsigned char *)ans->subject, strlen(ans->subject));
    struct log_field f[] = {
        {"req", NULL, (double)id},
        {"transport", "coaps", 0},
        {"peer", n->peer, 0},
        {"method", method_name(n->method), 0},
        {"path", n->path, 0},
        {"op", op, 0},
        {"label", label, 0},
        {"code", code, 0},
        {"bytes", NULL, (double)ans->payload_len},
        {"ms", NULL, (double)(long)(ms * 10) / 10},
        {"subject", subj, 0},
    };
    log_fields(LOG_INFO, "request", f, subj[0] != '\0' ? 11 : 10);
}

static void held_release(coap_session_t *session, void *arg)
{
    struct held *h = arg;

    (void)session;
    if (h->secret)
        OPENSSL_cleanse(h->p, h->len);
    free(h->p);
    free(h);
}

static void option_uint(coap_pdu_t *pdu, uint16_t number, uint64_t v)
{
    uint8_t buf[8];
    coap_add_option(pdu, number, coap_encode_var_safe8(buf, sizeof(buf), v), buf);
}

/* Write ans into response (its payload moves to libcoap on success). */
static void answer_write(coap_resource_t *resource, coap_session_t *session,
                         const coap_pdu_t *request, const coap_string_t *query,
                         coap_pdu_t *response, struct bridge_answer *ans, long size1)
{
    coap_pdu_set_code(response, (coap_pdu_code_t)ans->code);
    if (ans->code >> 5 == 2 && ans->payload != NULL) {
        struct held *h = xcalloc(1, sizeof(*h));
        h->p = ans->payload;
        h->len = ans->payload_len;
        h->secret = ans->secret;
        ans->payload = NULL; /* steal; payload_len stays for the log */
        ans->secret = false;
        /* Block2 (RFC 7959 2.4) as the client asks or the PDU size needs */
        if (!coap_add_data_large_response(resource, session, request, response, query,
                                          (uint16_t)ans->content_format, (int)ans->max_age, 0,
                                          h->len, h->p, held_release, h)) {
            held_release(session, h);
            coap_pdu_set_code(response, (coap_pdu_code_t)kp_err_coap_code(KP_ERR_INTERNAL));
        }
        return;
    }
    /* options in ascending number (RFC 7252 3.1) */
    if (ans->content_format >= 0)
        option_uint(response, COAP_OPTION_CONTENT_FORMAT, (uint64_t)ans->content_format);
    if (ans->max_age >= 0)
        option_uint(response, COAP_OPTION_MAXAGE, (uint64_t)ans->max_age);
    if (size1 > 0)
        option_uint(response, COAP_OPTION_SIZE1, (uint64_t)size1); /* RFC 7959 4 */
    if (ans->payload != NULL && ans->payload_len > 0)
        coap_add_data(response, ans->payload_len, ans->payload);
}

/* ---- Block1 uploads ---- */

static void upload_free(struct upload *u)
{
    if (u == NULL)
        return;
    free(u->buf);
    free(u);
}

void coap_exchange_session_gone(coap_session_t *session)
{
    upload_free(coap_session_get_app_data(session));
    coap_session_set_app_data(session, NULL);
}

static void upload_drop(coap_session_t *session)
{
    coap_exchange_session_gone(session);
}

/* Take this block of the body. KP_OK with *more when blocks are to come;
 * *code set (and the upload dropped) when the answer is an error. */
static enum kp_err upload_block(coap_session_t *session, const coap_pdu_t *request, long max,
                                bool *more, int *code, const char **why)
{
    struct upload *u = coap_session_get_app_data(session);
    const uint8_t *data = NULL;
    size_t len = 0, offset = 0, total = 0;
    coap_opt_iterator_t it;
    coap_opt_t *size1;
    coap_block_b_t block;

    *more = false;
    *code = 0;
    if (!coap_get_data_large(request, &len, &data, &offset, &total)) {
        len = 0;
        offset = 0;
    }
    /* RFC 7959 4: Size1 announces the whole body; refuse before any byte */
    size1 = coap_check_option(request, COAP_OPTION_SIZE1, &it);
    if ((size1 != NULL &&
         coap_decode_var_bytes8(coap_opt_value(size1), coap_opt_length(size1)) > (uint64_t)max) ||
        offset + len > (size_t)max || offset > (size_t)max) {
        upload_drop(session);
        return KP_ERR_TOO_LARGE;
    }
    if (coap_get_block_b(session, request, COAP_OPTION_BLOCK1, &block))
        *more = block.m != 0;
    if (u == NULL) {
        u = xcalloc(1, sizeof(*u));
        coap_session_set_app_data(session, u);
    }
    if (offset == 0) {
        u->len = 0;
    } else if (offset != u->len) {
        /* a block out of order, or of an upload we never saw begin */
        upload_drop(session);
        *code = COAP_CODE_INCOMPLETE;
        *why = "Block1 out of sequence";
        return KP_ERR_BAD_REQUEST;
    }
    if (len > 0) {
        u->buf = xrealloc(u->buf, u->len + len);
        memcpy(u->buf + u->len, data, len);
        u->len += len;
    }
    return KP_OK;
}

/* ---- POSTs on the pool ---- */

static void job_free(struct coap_job *j)
{
    bridge_answer_cleanup(&j->ans);
    free(j->body);
    X509_free(j->cert);
    sk_X509_pop_free(j->chain, X509_free);
    free(j->psk_identity);
    runtime_release(j->cs->rt, j->g);
    coap_session_release(j->session);
    free(j);
}

void coap_exchange_run(void *arg)
{
    struct coap_job *j = arg;

    bridge_handle(rt_gen_est(j->g), &j->req, &j->ans);
    coap_server_queue_done(j->cs, j);
}

void coap_exchange_ready(struct coap_server *cs, struct coap_job *j)
{
    coap_bin_const_t token = {j->token_len, j->token};
    coap_async_t *async = coap_find_async(j->session, token);

    (void)cs;
    if (async == NULL || coap_async_get_app_data(async) != j) {
        log_debug("coap: request %" PRIu64 " answered after its client left", j->req.id);
        job_free(j);
        return;
    }
    j->done = true;
    coap_async_trigger(async); /* the handler runs again and sends it */
}

/* The client's authentication from the DTLS session: certificate and
 * chain (references) or the PSK identity. */
static void job_credentials(struct coap_job *j, coap_session_t *session)
{
    coap_tls_library_t lib = COAP_TLS_LIBRARY_NOTLS;
    SSL *ssl = coap_session_get_tls(session, &lib);
    const coap_bin_const_t *id = coap_session_get_psk_identity(session);

    if (ssl != NULL && lib == COAP_TLS_LIBRARY_OPENSSL) {
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* leaf excluded on a server */
        j->cert = SSL_get1_peer_certificate(ssl);
        j->chain = j->cert != NULL && chain != NULL ? X509_chain_up_ref(chain) : NULL;
    }
    if (j->cert == NULL && id != NULL && id->length > 0)
        j->psk_identity = xstrndup((const char *)id->s, id->length);
    j->req.cert = j->cert;
    j->req.chain = j->chain;
    j->req.psk_identity = j->psk_identity;
}

/* The last block is in: hand the request to the pool (taking g and the
 * session's upload) and register the separate response it will fill. */
static enum kp_err job_start(struct coap_server *cs, struct rt_gen *g, coap_session_t *session,
                             const coap_pdu_t *request, const struct bridge_request *req,
                             const struct map_input *in, const char *peer, const char *path,
                             const struct timespec *t0)
{
    struct upload *u = coap_session_get_app_data(session);
    coap_bin_const_t token = coap_pdu_get_token(request);
    struct coap_job *j = xcalloc(1, sizeof(*j));
    coap_async_t *async;

    j->cs = cs;
    j->g = g; /* steal */
    j->session = coap_session_reference(session);
    j->token_len = token.length < sizeof(j->token) ? token.length : sizeof(j->token);
    memcpy(j->token, token.s, j->token_len);
    j->req = *req;
    j->body = u->buf; /* steal */
    j->req.body = u->buf;
    j->req.body_len = u->len;
    u->buf = NULL;
    u->len = 0;
    snprintf(j->peer, sizeof(j->peer), "%s", peer);
    j->req.peer_addr = j->peer;
    snprintf(j->path, sizeof(j->path), "%s", path);
    j->method = in->method;
    j->t0 = *t0;
    job_credentials(j, session);
    async = coap_register_async(session, request, 0);
    if (async == NULL) {
        j->g = NULL; /* the caller still releases it */
        job_free(j);
        return KP_ERR_INTERNAL;
    }
    coap_async_set_app_data(async, j);
    cs->jobs++;
    pool_submit(cs->pool, coap_exchange_run, j);
    return KP_OK;
}

/* ---- the handler ---- */

/* The separate response of a job the pool finished. */
static void exchange_answer_job(coap_resource_t *resource, coap_session_t *session,
                                const coap_pdu_t *request, const coap_string_t *query,
                                coap_pdu_t *response, coap_async_t *async, struct coap_job *j)
{
    struct exchange_note n = {j->peer, j->path, j->method, j->req.op, j->req.label, &j->t0, true};

    coap_async_set_app_data(async, NULL);
    answer_write(resource, session, request, query, response, &j->ans, 0);
    exchange_log(&n, &j->ans, j->req.id);
    job_free(j);
}

static void peer_name(coap_session_t *session, char *buf, size_t cap)
{
    const coap_address_t *a = coap_session_get_addr_remote(session);
    unsigned char tmp[96];
    size_t n = a != NULL ? coap_print_addr(a, tmp, sizeof(tmp) - 1) : 0;

    tmp[n] = '\0';
    log_text(buf, cap, tmp, n);
    if (n == 0)
        snprintf(buf, cap, "?");
}

static void exchange_cb(coap_resource_t *resource, coap_session_t *session,
                        const coap_pdu_t *request, const coap_string_t *query, coap_pdu_t *response)
{
    struct coap_server *cs = coap_resource_get_userdata(resource);
    coap_bin_const_t token = coap_pdu_get_token(request);
    coap_async_t *async = coap_find_async(session, token);
    struct bridge_request req;
    struct bridge_answer ans;
    struct map_input in;
    struct timespec t0;
    struct rt_gen *g = NULL;
    long max_body;
    struct coap_job *j;
    char peer[80], path[160];
    const char *why = NULL;
    bool not_acceptable = false, more = false, routed = false, core = false;
    long size1 = 0;
    int code = 0;
    enum kp_err rc;

    if (async != NULL) {
        j = coap_async_get_app_data(async);
        /* not yet answered: the client asked again; the answer will come */
        if (j != NULL && j->done)
            exchange_answer_job(resource, session, request, query, response, async, j);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&req, 0, sizeof(req));
    memset(&ans, 0, sizeof(ans));
    ans.max_age = -1;
    coap_input_read(request, &in);
    request_path(&in, path, sizeof(path));
    peer_name(session, peer, sizeof(peer));
    req.id = runtime_next_id(cs->rt);
    req.peer_addr = peer;

    if (atomic_load(&cs->stopping)) {
        rc = KP_ERR_UNAVAILABLE;
        goto answer;
    }
    g = runtime_acquire(cs->rt);
    max_body = rt_gen_config(g)->max_body_bytes;
    rc = map_request(&in, &req, &not_acceptable);
    if (rc != KP_OK)
        goto answer;
    routed = true;
    if (!bridge_label_known(rt_gen_est(g), req.label)) {
        rc = KP_ERR_UNKNOWN_LABEL;
        goto answer;
    }
    if (!req.op->post) {
        /* /crts and /att answer from memory, here */
        bridge_handle(rt_gen_est(g), &req, &ans);
        core = true;
        goto write;
    }
    if (cs->jobs >= cs->max_jobs) {
        rc = KP_ERR_UNAVAILABLE;
        why = "too many requests in progress, retry later";
        goto answer;
    }
    rc = upload_block(session, request, max_body, &more, &code, &why);
    if (rc == KP_ERR_TOO_LARGE)
        size1 = max_body;
    if (rc != KP_OK)
        goto answer;
    if (more) {
        /* RFC 7959 2.3: 2.31 Continue until the last block */
        coap_pdu_set_code(response, COAP_CODE_CONTINUE);
        runtime_release(cs->rt, g);
        return;
    }

    rc = job_start(cs, g, session, request, &req, &in, peer, path, &t0);
    if (rc != KP_OK)
        goto answer;
    return; /* libcoap acknowledges; the answer comes separately */

answer:
    if (not_acceptable)
        why = "Accept names no Content-Format this resource offers";
    else if (rc == KP_ERR_MEDIA_TYPE)
        why = "Content-Format must be 286 (application/pkcs10)";
    bridge_answer_error(&ans, rc, why);
    if (rc == KP_ERR_UNAVAILABLE)
        ans.max_age = 1; /* RFC 7252 5.9.3.4: when to try again */
    if (code != 0)
        ans.code = code;
    else if (not_acceptable)
        ans.code = COAP_CODE_NOT_ACCEPTABLE;
write:
    answer_write(resource, session, request, query, response, &ans, size1);
    {
        struct exchange_note n = {peer,      path, in.method, routed ? req.op : NULL,
                                  req.label, &t0,  core};
        exchange_log(&n, &ans, req.id);
    }
    bridge_answer_cleanup(&ans);
    runtime_release(cs->rt, g);
}

void coap_exchange_attach(coap_resource_t *r, struct coap_server *cs)
{
    static const coap_request_t methods[] = {
        COAP_REQUEST_GET,   COAP_REQUEST_POST,  COAP_REQUEST_PUT,   COAP_REQUEST_DELETE,
        COAP_REQUEST_FETCH, COAP_REQUEST_PATCH, COAP_REQUEST_IPATCH};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        coap_register_request_handler(r, methods[i], exchange_cb);
    coap_resource_set_userdata(r, cs);
}
