/* EST-coaps transport: one thread owns the libcoap context (libcoap is not
 * thread-safe, so every libcoap call happens there). It waits on libcoap's
 * epoll descriptor and on an eventfd the pool threads write when an answer
 * is ready or the server stops.
 *
 * DTLS 1.2 only (no plain-UDP endpoint: RFC 9148 4): the [tls] certificate
 * and key; a client certificate is asked for but optional, checked against
 * tls.client_ca by the EST core's rules, never by the handshake; PSK with
 * the identities of the current generation's coap.psk_file. libcoap's OpenSSL back end answers a
 * new ClientHello with a HelloVerifyRequest (DTLSv1_listen) before it keeps any state, so a spoofed
 * source gets one small packet (RFC 6347 4.2.1). */
#include "coap/server.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coap/internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "core/xalloc.h"

/* Longest wait in the loop: a bound on how late a missed wake-up is seen. */
#define COAP_LOOP_MAX_MS 1000

static pthread_once_t coap_once = PTHREAD_ONCE_INIT;

/* libcoap's own lines would go to stdout, where the readiness line is:
 * into our log instead, errors only (a client's failed handshake is a
 * warning there, and would let anyone fill the log). */
static void coap_log_line(coap_log_t level, const char *message)
{
    size_t n = strlen(message);

    (void)level;
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        n--;
    log_error("coap: libcoap: %.*s", (int)n, message);
}

static void coap_global_init(void)
{
    coap_startup();
    coap_set_log_handler(coap_log_line);
    coap_set_log_level(KP_COAP_LOG_ERR);
    coap_dtls_set_log_level(KP_COAP_LOG_ERR);
}

/* libcoap failing to allocate: like xalloc, give up. */
static void coap_die(const char *what)
{
    log_error("coap: %s failed (out of memory)", what);
    abort();
}

/* ---- answers coming back from the pool ---- */

static void wake(struct coap_server *cs)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is already non-zero, the loop will wake anyway */
    if (write(cs->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("coap: eventfd write: %s", strerror(errno));
}

void coap_server_queue_done(struct coap_server *cs, struct coap_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&cs->lock);
    if (cs->done_tail != NULL)
        cs->done_tail->next = job;
    else
        cs->done = job;
    cs->done_tail = job;
    pthread_mutex_unlock(&cs->lock);
    wake(cs);
}

/* ---- DTLS ---- */

/* The handshake accepts any client certificate: whether it authenticates
 * anything is the EST core's decision (tls.client_ca, revocation, label),
 * the same for DTLS as for HTTPS, so the verdict is taken there. */
static int dtls_verify_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

/* Called by libcoap for each new DTLS session after its own setup: ask for
 * a certificate without requiring one (PSK clients and anonymous /crts). */
static int dtls_session_setup(void *tls_session, coap_dtls_pki_t *setup)
{
    (void)setup;
    SSL_set_verify(tls_session, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, dtls_verify_any);
    return 1;
}

/* PSK identity -> key (RFC 4279 2), from the current generation's table:
 * a reload that removes an identity refuses new handshakes with it. */
static const coap_bin_const_t *dtls_psk_lookup(coap_bin_const_t *identity, coap_session_t *session,
                                               void *arg)
{
    struct coap_server *cs = arg;
    struct rt_gen *g;
    size_t len = sizeof(cs->psk_key);
    bool found;

    (void)session;
    /* libcoap copied the previous key into its session already */
    OPENSSL_cleanse(cs->psk_key, sizeof(cs->psk_key));
    if (identity == NULL)
        return NULL;
    g = runtime_acquire(cs->rt);
    found = bridge_psk_key(rt_gen_est(g), identity->s, identity->length, cs->psk_key, &len);
    runtime_release(cs->rt, g);
    if (!found)
        return NULL;
    cs->psk_out.s = cs->psk_key;
    cs->psk_out.length = len;
    return &cs->psk_out;
}

static enum kp_err dtls_setup(struct coap_server *cs, const struct kp_config *cfg, char **errmsg)
{
    coap_dtls_pki_t pki;
    coap_dtls_spsk_t psk;

    if (!coap_dtls_is_supported()) {
        *errmsg = xstrdup("coap: libcoap has no DTLS support");
        return KP_ERR_CONFIG;
    }
    memset(&pki, 0, sizeof(pki));
    pki.version = COAP_DTLS_PKI_SETUP_VERSION;
    pki.verify_peer_cert = 1; /* send a CertificateRequest; dtls_session_setup relaxes it */
    pki.allow_self_signed = 1;
    pki.additional_tls_setup_call_back = dtls_session_setup;
    pki.pki_key.key_type = COAP_PKI_KEY_PEM;
    cs->dtls_cert = xstrdup(cfg->tls_cert);
    cs->dtls_key = xstrdup(cfg->tls_key);
    cs->dtls_ca = cfg->tls_client_ca[0] != '\0' ? xstrdup(cfg->tls_client_ca) : NULL;
    pki.pki_key.key.pem.public_cert = cs->dtls_cert;
    pki.pki_key.key.pem.private_key = cs->dtls_key;
    pki.pki_key.key.pem.ca_file = cs->dtls_ca;
    if (!coap_context_set_pki(cs->ctx, &pki)) {
        *errmsg = xasprintf("coap: cannot use tls.cert %s and tls.key %s for DTLS", cfg->tls_cert,
                            cfg->tls_key);
        return KP_ERR_CONFIG;
    }
    /* Always on, so a reload may add the first PSKs. With certificates on the same context,
     * OpenSSL's PSK path fails silently unless a default key is set: a random one nobody has. */
    if (RAND_bytes(cs->psk_default, sizeof(cs->psk_default)) != 1) {
        *errmsg = xstrdup("coap: no randomness for the default PSK");
        return KP_ERR_INTERNAL;
    }
    memset(&psk, 0, sizeof(psk));
    psk.version = COAP_DTLS_SPSK_SETUP_VERSION;
    psk.validate_id_call_back = dtls_psk_lookup;
    psk.id_call_back_arg = cs;
    psk.psk_info.key.s = cs->psk_default;
    psk.psk_info.key.length = sizeof(cs->psk_default);
    if (!coap_context_set_psk2(cs->ctx, &psk)) {
        *errmsg = xstrdup("coap: cannot set up DTLS PSK");
        return KP_ERR_CONFIG;
    }
    return KP_OK;
}

/* ---- resources ---- */

/* A per-session upload dies with its session; the gauge follows both. */
static int coap_event(coap_session_t *session, coap_event_t event)
{
    if (event == COAP_EVENT_SERVER_SESSION_NEW) {
        metrics_coaps_sessions(1);
    } else if (event == COAP_EVENT_SERVER_SESSION_DEL) {
        metrics_coaps_sessions(-1);
        coap_exchange_session_gone(session);
    }
    return 0;
}

/* "ace.est.crts" with its quotes, as RFC 9148 5.1's examples write it */
static coap_str_const_t *rt_quoted(const char *rt)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "\"%s\"", rt);
    return coap_new_str_const((const uint8_t *)buf, (size_t)n);
}

/* /est/SHORT are listed in /.well-known/core; /.well-known/est/SHORT (the
 * default root RFC 9148 5.1 requires) and the label forms go through the
 * unknown-resource handler, which routes them the same way. */
static void resources_add(struct coap_server *cs, coap_context_t *ctx)
{
    coap_resource_t *unknown;

    for (int i = 0; i < EST_OP__MAX; i++) {
        const struct est_op_info *op = est_op_info((enum est_op)i);
        const char *cts = bridge_op_ct(op->op);
        coap_resource_t *r;
        char ct[32], *path;

        if (cts == NULL || op->coap_name == NULL)
            continue;
        path = xasprintf("est/%s", op->coap_name);
        /* libcoap keeps the string (RELEASE_URI frees it) */
        r = coap_resource_init(coap_new_str_const((const uint8_t *)path, strlen(path)),
                               COAP_RESOURCE_FLAGS_RELEASE_URI);
        free(path);
        if (r == NULL)
            coap_die("coap_resource_init");
        snprintf(ct, sizeof(ct), strchr(cts, ' ') != NULL ? "\"%s\"" : "%s", cts);
        coap_add_attr(r, coap_make_str_const("rt"), rt_quoted(op->coap_rt),
                      COAP_ATTR_FLAGS_RELEASE_VALUE);
        coap_add_attr(r, coap_make_str_const("ct"),
                      coap_new_str_const((const uint8_t *)ct, strlen(ct)),
                      COAP_ATTR_FLAGS_RELEASE_VALUE);
        coap_exchange_attach(r, cs);
        coap_add_resource(ctx, r);
    }
    unknown = coap_resource_unknown_init(NULL);
    if (unknown == NULL)
        coap_die("coap_resource_unknown_init");
    coap_exchange_attach(unknown, cs);
    coap_add_resource(ctx, unknown);
}

/* ---- the thread ---- */

static void drain_done(struct coap_server *cs)
{
    struct coap_job *list, *next;
    uint64_t n;

    if (read(cs->wake, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_error("coap: eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&cs->lock);
    list = cs->done;
    cs->done = NULL;
    cs->done_tail = NULL;
    pthread_mutex_unlock(&cs->lock);
    for (; list != NULL; list = next) {
        next = list->next;
        cs->jobs--;
        coap_exchange_ready(cs, list);
    }
}

static void *coap_thread(void *arg)
{
    struct coap_server *cs = arg;
    struct pollfd pfd[2];
    coap_tick_t now;
    unsigned ms;

    pfd[0].fd = coap_context_get_coap_fd(cs->ctx);
    pfd[0].events = POLLIN;
    pfd[1].fd = cs->wake;
    pfd[1].events = POLLIN;
    /* After stop: keep serving until the pool has handed back every job. */
    while (!atomic_load(&cs->stopping) || cs->jobs > 0) {
        coap_ticks(&now);
        ms = coap_io_prepare_epoll(cs->ctx, now);
        if (ms == 0 || ms > COAP_LOOP_MAX_MS)
            ms = COAP_LOOP_MAX_MS;
        if (poll(pfd, 2, (int)ms) < 0 && errno != EINTR) {
            log_error("coap: poll: %s", strerror(errno));
            break;
        }
        if (pfd[1].revents & POLLIN)
            drain_done(cs);
        coap_io_process(cs->ctx, COAP_IO_NO_WAIT);
    }
    /* the last answers were triggered in the pass that ended the loop */
    coap_ticks(&now);
    coap_io_prepare_epoll(cs->ctx, now);
    coap_io_process(cs->ctx, COAP_IO_NO_WAIT);
    return NULL;
}

/* ---- start, stop ---- */

static enum kp_err endpoint_add(struct coap_server *cs, const char *host, long port, char **errmsg)
{
    struct addrinfo hints, *res = NULL;
    coap_address_t addr;
    coap_endpoint_t *ep;
    char portstr[16];
    const char *str;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%ld", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 || res == NULL) {
        *errmsg = xasprintf("coap: cannot resolve %s: %s", host, gai_strerror(rc));
        return KP_ERR_CONFIG;
    }
    /* libcoap binds with SO_REUSEADDR, which on UDP lets a second server
     * share the port and take half its datagrams: refuse a port in use. */
    if (port != 0) {
        int probe = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && bind(probe, res->ai_addr, res->ai_addrlen) != 0 && errno == EADDRINUSE) {
            close(probe);
            freeaddrinfo(res);
            *errmsg = xasprintf("coap: UDP %s:%ld is in use", host, port);
            return KP_ERR_CONFIG;
        }
        if (probe >= 0)
            close(probe);
    }
    coap_address_init(&addr);
    addr.size = res->ai_addrlen;
    memcpy(&addr.addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    ep = coap_new_endpoint(cs->ctx, &addr, COAP_PROTO_DTLS);
    if (ep == NULL) {
        *errmsg = xasprintf("coap: cannot bind UDP %s:%ld", host, port);
        return KP_ERR_CONFIG;
    }
    /* "[::]:5684 DTLS" or "127.0.0.1:5684 DTLS": the port the kernel gave */
    str = coap_endpoint_str(ep);
    cs->port = (int)port;
    if (str != NULL) {
        const char *colon = strrchr(str, ':');
        if (colon != NULL)
            cs->port = (int)strtol(colon + 1, NULL, 10);
    }
    return KP_OK;
}

enum kp_err coap_server_start(struct runtime *rt, struct coap_server **out, char **errmsg)
{
    struct coap_server *cs = xcalloc(1, sizeof(*cs));
    struct rt_gen *g = runtime_acquire(rt);
    const struct kp_config *cfg = rt_gen_config(g);
    const char *host = cfg->coap_listen[0] != '\0' ? cfg->coap_listen : cfg->listen;
    enum kp_err rc;

    pthread_once(&coap_once, coap_global_init);
    pthread_mutex_init(&cs->lock, NULL);
    cs->wake = -1;
    cs->rt = rt;
    cs->pool = runtime_pool(rt);
    /* a client may send many POSTs on one session: they wait on the pool */
    cs->max_jobs = (size_t)cfg->coap_max_sessions;
    cs->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (cs->wake < 0) {
        *errmsg = xasprintf("coap: eventfd: %s", strerror(errno));
        rc = KP_ERR_INTERNAL;
        goto fail;
    }
    cs->ctx = coap_new_context(NULL);
    if (cs->ctx == NULL) {
        *errmsg = xstrdup("coap: cannot create a context");
        rc = KP_ERR_INTERNAL;
        goto fail;
    }
    /* Blocks both ways (RFC 7959); each Block1 reaches the handler, which
     * counts it against max_body_bytes before keeping it. */
    coap_context_set_block_mode(cs->ctx, COAP_BLOCK_USE_LIBCOAP);
    coap_context_set_max_idle_sessions(cs->ctx, (unsigned)cfg->coap_max_sessions);
    coap_context_set_max_handshake_sessions(cs->ctx, (unsigned)cfg->coap_max_sessions);
    coap_context_set_session_timeout(cs->ctx, (unsigned)cfg->coap_session_timeout);
    coap_register_event_handler(cs->ctx, coap_event);
    rc = dtls_setup(cs, cfg, errmsg);
    if (rc != KP_OK)
        goto fail;
    resources_add(cs, cs->ctx);
    rc = endpoint_add(cs, host, cfg->coap_port, errmsg);
    if (rc != KP_OK)
        goto fail;
    if (pthread_create(&cs->thread, NULL, coap_thread, cs) != 0) {
        *errmsg = xstrdup("coap: cannot start its thread");
        rc = KP_ERR_INTERNAL;
        goto fail;
    }
    cs->started = true;
    printf("kipuka: listening on coaps://%s:%d/\n", strchr(host, ':') != NULL ? "[::]" : host,
           cs->port);
    fflush(stdout);
    runtime_release(rt, g);
    *out = cs;
    return KP_OK;
fail:
    runtime_release(rt, g);
    coap_server_free(cs);
    return rc;
}

int coap_server_port(const struct coap_server *cs)
{
    return cs->port;
}

void coap_server_stop(struct coap_server *cs)
{
    if (cs == NULL || !cs->started)
        return;
    atomic_store(&cs->stopping, true);
    wake(cs);
    pthread_join(cs->thread, NULL);
    cs->started = false;
}

void coap_server_free(struct coap_server *cs)
{
    if (cs == NULL)
        return;
    coap_server_stop(cs);
    if (cs->ctx != NULL)
        coap_free_context(cs->ctx); /* sessions go: their upload state with them */
    if (cs->wake >= 0)
        close(cs->wake);
    free(cs->dtls_cert);
    free(cs->dtls_key);
    free(cs->dtls_ca);
    OPENSSL_cleanse(cs->psk_key, sizeof(cs->psk_key));
    OPENSSL_cleanse(cs->psk_default, sizeof(cs->psk_default));
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

/* ---- the transport registry's row ---- */

static enum kp_err transport_start(struct runtime *rt, void **handle, char **errmsg)
{
    struct rt_gen *g = runtime_acquire(rt);
    bool enabled = rt_gen_config(g)->coap_enabled;
    struct coap_server *cs = NULL;
    enum kp_err rc = KP_OK;

    runtime_release(rt, g);
    *handle = NULL;
    if (enabled) {
        rc = coap_server_start(rt, &cs, errmsg);
        if (rc == KP_OK)
            *handle = cs;
    }
    return rc;
}

/* POSTs in progress are answered before the thread ends: no grace needed. */
static void transport_stop(void *handle, int grace_seconds)
{
    (void)grace_seconds;
    coap_server_stop(handle);
}

static void transport_free(void *handle)
{
    coap_server_free(handle);
}

const struct transport_ops coap_transport = {"coaps", transport_start, transport_stop,
                                             transport_free};
