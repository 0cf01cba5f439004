/* HTTPS transport for EST: libevent evhttp over bufferevent_openssl.
 *
 * N worker threads, each with its own event_base, evhttp and listening socket
 * (SO_REUSEPORT on one address), so a connection lives and dies on one thread.
 * What a reload swaps is the runtime's reference-counted generation (EST
 * core, admin side) with this transport's part of it (TLS context, base path,
 * limits); a request holds a reference while it runs.
 *
 * Per-connection state (struct http_conn) hangs off the connection's SSL as
 * ex_data and is freed with it, which libevent does last, after the
 * evhttp_connection is gone. evhttp's own timeout restarts at every read, so
 * each connection also carries a deadline: read_timeout from accept (TLS
 * handshake and first request) or from a request's first byte to its end, and
 * idle_timeout between requests.
 *
 * evhttp answers an over-long header block with a bare 400 and has no limit
 * on the URL or the number of headers, so each request's header block is
 * measured as it arrives, before evhttp parses it (reqscan.c): over a limit,
 * the connection is taken from evhttp and answered 413, 414 or 431 here
 * (conn_refuse_*), then closed cleanly. Connections past max_connections get
 * the same treatment with 503, up to an allowance. */
#include "http/server.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "admin/admin.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "est/est.h"
#include "core/pool.h"
#include "http/est_input.h"
#include "http/reply.h"
#include "http/reqscan.h"
#include "http/route.h"
#include "http/tls.h"
#include "pki/trust.h"
#include "runtime/runtime.h"

/* Descriptors kept for everything but client connections: listening
 * sockets come on top (one per thread). The store, log and TLS files use
 * fewer than a dozen. */
#define HTTP_FD_RESERVE 64
/* Most characters of a path or subject copied into an access log line. */
#define HTTP_LOG_FIELD_MAX 160
/* Event loop passes allowed for closed connections to be finalized at teardown. */
#define HTTP_TEARDOWN_PASSES 64

/* What a reload may change besides TLS and EST, copied from the config. */
struct http_limits {
    long max_body;
    long max_headers;
    long max_url;
    long max_header_count;
    long read_timeout; /* seconds */
    long idle_timeout; /* seconds */
    long max_connections;
    long busy_allowance; /* over-cap connections answered 503 rather than closed */
    long retry_after;    /* seconds, in the 503 */
};

/* This transport's part of a runtime generation, freed with it. */
struct http_gen {
    SSL_CTX *ctx;
    char *base_path;
    struct http_limits lim;
};

/* Where a connection is between requests; picks which deadline runs. */
enum conn_phase {
    CONN_READING, /* TLS handshake or a request arriving: read_timeout */
    CONN_BUSY,    /* request complete, response being written: evhttp's timeout */
    CONN_IDLE,    /* keep-alive, waiting for the next request: idle_timeout */
};

/* A request refused before evhttp saw it, answered by conn_refuse_*. */
enum refuse_state {
    REFUSE_NONE,
    REFUSE_PENDING, /* taken from evhttp, answer to write (from the timer) */
    REFUSE_SENT,    /* answer written: drain input until EOF or the deadline */
    REFUSE_CLOSE,   /* the client is gone: close at the next timer pass */
};

struct http_worker;

/* One accepted connection. Owned by its SSL (ex_data, freed by conn_ex_free),
 * touched only by its worker's thread. */
struct http_conn {
    struct http_worker *w;
    struct bufferevent *bev;         /* borrowed: owned by evcon */
    SSL *ssl;                        /* borrowed: owned by bev */
    struct evhttp_connection *evcon; /* borrowed; NULL before setup and after close */
    struct event *timer;             /* setup, then the deadline */
    struct evbuffer_cb_entry *input_cb;
    enum conn_phase phase;
    struct reqscan scan;
    enum refuse_state refuse;
    int refuse_status;      /* 400, 413, 414, 431 or 503 */
    const char *refuse_why; /* static text: the answer's body */
    bool set_up;
    bool reject;   /* over max_connections and the busy allowance: closed at setup */
    bool over_cap; /* over max_connections: TLS, then 503 to its first request */
    bool closed;
    struct http_exchange *job;     /* a request on the pool: evhttp must not free it */
    bool close_after_job;          /* conn_close came while job ran */
    struct http_conn *prev, *next; /* worker's list */
};

/* One thread with its event loop. Fields below `thread` belong to the thread
 * once it runs. */
struct http_worker {
    struct http_server *hs;
    pthread_t thread;
    bool started;
    evutil_socket_t fd; /* listening socket until the evhttp owns it */
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *grace;
    unsigned serial;         /* generation whose limits the evhttp has */
    struct http_limits lim;  /* copy of those limits */
    struct http_conn *conns; /* not yet freed, closed or not */
    size_t nconns;
    size_t jobs; /* exchanges begun and not finished */
    bool stopping;
    struct http_b64_memo memo; /* this loop's: answers made on it only */
};

struct http_server {
    struct runtime *rt; /* borrowed */
    int slot;           /* of our part in the runtime's generations; -1 before */
    struct http_worker *workers;
    size_t nworkers;
    struct work_pool *pool; /* borrowed from rt */
    int port;               /* bound */
    int grace;              /* seconds, set before workers are told to stop */
    bool stopped;
    char *listen; /* as configured, for reload warnings */
    long cfg_port;
    long cfg_threads;
    atomic_long active;         /* connections on all threads */
    atomic_long busy;           /* of which over_cap, being answered 503 */
    long fd_max_conns;          /* max_connections that RLIMIT_NOFILE leaves room for */
    atomic_llong cap_warned_at; /* time(NULL) of the last max_connections warning */
    atomic_long cap_dropped;    /* refused since then */
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static bool http_init_ok;
static int conn_ex_idx = -1;

static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp);

/* libevent locking must be on before any event_base exists. */
static void http_global_init(void)
{
    if (evthread_use_pthreads() != 0)
        return;
    conn_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
    http_init_ok = conn_ex_idx >= 0;
}

/* libevent or OpenSSL failing to allocate: like xalloc, give up. */
static void http_die(const char *what)
{
    log_openssl("http: %s failed (out of memory)", what);
    log_abort();
}

static long lmax(long a, long b)
{
    return a > b ? a : b;
}

/* Copy s into dst for a log line: printable ASCII only, quotes and backslashes
 * replaced, cut at HTTP_LOG_FIELD_MAX with "...". */
static void log_field(char *dst, size_t cap, const char *s)
{
    size_t n = 0;

    for (; *s != '\0' && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        dst[n++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (*s != '\0') {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

/* RFC 9110 15 reason phrases for what the EST layer answers. */
static const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

static const char *http_method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "?";
    }
}

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- generations ---- */

/* How many connections past max_connections get a 503 instead of a bare
 * close: enough to tell a burst of clients when to come back, few enough that
 * a flood costs little more than the cap. */
static long http_busy_allowance(long max_connections)
{
    return max_connections / 10 + 16;
}

/* Raise the soft RLIMIT_NOFILE to the hard one and return how many
 * connections (with their busy allowance) fit under it. */
static long http_fd_max_conns(size_t nthreads)
{
    struct rlimit rl;
    long avail, m;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return LONG_MAX;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
        else
            log_warn("http: cannot raise RLIMIT_NOFILE to %llu: %s",
                     (unsigned long long)rl.rlim_max, strerror(errno));
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)(LONG_MAX / 2))
        return LONG_MAX;
    avail = (long)rl.rlim_cur - HTTP_FD_RESERVE - (long)nthreads;
    /* m + http_busy_allowance(m) <= avail */
    m = (avail - 16) * 10 / 11;
    return m < 1 ? 1 : m;
}

/* Keep g's connection cap within what the descriptor limit allows, saying so. */
static void gen_fit_fds(struct http_server *hs, struct http_gen *g)
{
    if (g->lim.max_connections <= hs->fd_max_conns)
        return;
    log_warn("http: server.max_connections %ld lowered to %ld: the open file limit "
             "(RLIMIT_NOFILE, ulimit -n) leaves room for no more",
             g->lim.max_connections, hs->fd_max_conns);
    g->lim.max_connections = hs->fd_max_conns;
    g->lim.busy_allowance = http_busy_allowance(g->lim.max_connections);
}

static void limits_from_cfg(const struct kp_config *cfg, struct http_limits *lim)
{
    lim->max_body = lmax(cfg->max_body_bytes, 0);
    lim->max_headers = lmax(cfg->max_header_bytes, 256);
    lim->max_url = lmax(cfg->max_url_bytes, 16);
    lim->max_header_count = lmax(cfg->max_header_count, 1);
    lim->read_timeout = lmax(cfg->read_timeout, 1);
    lim->idle_timeout = lmax(cfg->idle_timeout, 1);
    lim->max_connections = lmax(cfg->max_connections, 1);
    lim->busy_allowance = http_busy_allowance(lim->max_connections);
    lim->retry_after = lmax(cfg->est_retry_after, 1);
}

static void gen_free(void *part)
{
    struct http_gen *g = part;

    if (g == NULL)
        return;
    SSL_CTX_free(g->ctx);
    free(g->base_path);
    free(g);
}

/* rt_part_ops.build: TLS context, base path and limits from the generation's config. */
static enum kp_err gen_build(void *arg, const struct rt_gen *rg, bool reload, void **out,
                             char **errmsg)
{
    struct http_server *hs = arg;
    const struct kp_config *cfg = rt_gen_config(rg);
    struct http_gen *g = xcalloc(1, sizeof(*g));
    enum kp_err rc;

    rc = tls_ctx_new(cfg, &g->ctx, errmsg);
    if (rc != KP_OK)
        goto out;
    g->base_path = xstrdup(cfg->est_base_path ? cfg->est_base_path : "/.well-known/est");
    limits_from_cfg(cfg, &g->lim);
    gen_fit_fds(hs, g);
    if (reload && (strcmp(hs->listen, cfg->listen ? cfg->listen : "") != 0 ||
                   cfg->port != hs->cfg_port || cfg->threads != hs->cfg_threads))
        log_warn("http: server.listen, server.port and server.threads change only on restart");
    *out = g;
    g = NULL; /* steal */
out:
    gen_free(g);
    return rc;
}

static const struct rt_part_ops http_part_ops = {.build = gen_build, .free = gen_free};

/* Our part of a generation the caller holds. */
static struct http_gen *gen_part(const struct http_server *hs, const struct rt_gen *rg)
{
    return rt_gen_part(rg, hs->slot);
}

/* ---- connections ---- */

static void conn_cap_warn(struct http_server *hs, const char *peer, long max)
{
    long long now = (long long)time(NULL);
    long long last = atomic_load(&hs->cap_warned_at);

    atomic_fetch_add(&hs->cap_dropped, 1);
    /* At most one line a second on all threads, counting what it stands for. */
    if (now == last || !atomic_compare_exchange_strong(&hs->cap_warned_at, &last, now))
        return;
    log_warn("http: max_connections (%ld) reached: refused %ld connection(s) (503, or closed when "
             "busy), latest from %s",
             max, atomic_exchange(&hs->cap_dropped, 0), peer);
}

static void conn_peer(struct evhttp_connection *evcon, char *buf, size_t cap)
{
    char *addr = NULL;
    ev_uint16_t port = 0;

    evhttp_connection_get_peer(evcon, &addr, &port);
    if (addr == NULL)
        snprintf(buf, cap, "?");
    else if (strchr(addr, ':') != NULL)
        snprintf(buf, cap, "[%s]:%u", addr, (unsigned)port);
    else
        snprintf(buf, cap, "%s:%u", addr, (unsigned)port);
}

static void conn_arm(struct http_conn *c, long seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};
    event_add(c->timer, &tv);
}

/* Close now: evhttp frees the connection, which calls conn_closecb. */
static void conn_close(struct http_conn *c)
{
    /* Freeing the connection would free the request the pool is answering:
     * that answer closes it instead. */
    if (c->job != NULL) {
        c->close_after_job = true;
        return;
    }
    if (c->evcon != NULL)
        evhttp_connection_free(c->evcon);
}

/* evhttp is freeing the connection: stop our events and send close_notify,
 * which libevent never does (OpenSSL 3 clients report "unexpected eof"). */
static void conn_closecb(struct evhttp_connection *evcon, void *arg)
{
    struct http_conn *c = arg;

    (void)evcon;
    if (c->closed)
        return;
    c->closed = true;
    c->evcon = NULL;
    event_del(c->timer);
    if (c->input_cb != NULL) {
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
        c->input_cb = NULL;
    }
    if (SSL_is_init_finished(c->ssl) && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(c->ssl);
    ERR_clear_error();
}

/* The SSL (and so the connection) is gone: drop the bookkeeping. */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    struct http_conn *c = ptr;
    struct http_worker *w;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (c == NULL)
        return;
    w = c->w;
    event_free(c->timer);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->hs->active, 1);
    if (c->over_cap)
        atomic_fetch_sub(&w->hs->busy, 1);
    free(c);
    if (w->stopping && w->nconns == 0)
        event_base_loopbreak(w->base);
}

/* Runs once right after accept, when evhttp has made its connection object:
 * TCP_NODELAY, the close hook, the cap, the first deadline. */
static void conn_setup(struct http_conn *c)
{
    void *cbarg = NULL;
    struct evhttp_connection *evcon;
    evutil_socket_t fd;
    int one = 1;
    char peer[80];

    c->set_up = true;
    /* evhttp hands itself to its bufferevent as the callback argument. */
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
    evcon = cbarg;
    if (evcon == NULL || evhttp_connection_get_bufferevent(evcon) != c->bev) {
        log_error("http: connection without evhttp state, left to evhttp's timeout");
        return;
    }
    c->evcon = evcon;
    evhttp_connection_set_closecb(evcon, conn_closecb, c);

    /* Without it, a keep-alive response waits ~40 ms for a delayed ACK. */
    fd = bufferevent_getfd(c->bev);
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        log_debug("http: TCP_NODELAY: %s", strerror(errno));

    if (c->reject || c->over_cap) {
        conn_peer(evcon, peer, sizeof(peer));
        conn_cap_warn(c->w->hs, peer, c->w->lim.max_connections);
    }
    if (c->reject) {
        conn_close(c);
        return;
    }
    if (c->w->stopping) {
        conn_close(c);
        return;
    }
    conn_arm(c, c->w->lim.read_timeout);
}

/* ---- header limits ---- */

/* Feed the last n bytes added to buf (the connection's input) to its
 * request scan; 0, or the status to refuse with (c->refuse_why set). */
static int conn_scan_added(struct http_conn *c, struct evbuffer *buf, size_t n)
{
    const struct http_limits *l = &c->w->lim;
    struct reqscan_limits lim = {
        .max_header_bytes = (size_t)l->max_headers,
        .max_header_count = (size_t)l->max_header_count,
        .max_url = (size_t)l->max_url,
        .max_body = (size_t)l->max_body,
    };
    size_t len = evbuffer_get_length(buf), k;
    struct evbuffer_ptr pos;
    struct evbuffer_iovec v;
    int status = 0;

    if (n > len)
        n = len;
    if (evbuffer_ptr_set(buf, &pos, len - n, EVBUFFER_PTR_SET) != 0)
        return 0;
    while (n > 0 && status == 0 && c->scan.on) {
        if (evbuffer_peek(buf, (ev_ssize_t)n, &pos, &v, 1) < 1 || v.iov_len == 0)
            break;
        k = v.iov_len < n ? v.iov_len : n;
        status = reqscan_feed(&c->scan, &lim, v.iov_base, k, &c->refuse_why);
        n -= k;
        if (n > 0 && evbuffer_ptr_set(buf, &pos, k, EVBUFFER_PTR_ADD) != 0)
            break;
    }
    return status;
}

/* While refusing: whatever else the client sends is read and dropped, so
 * that closing does not reset the connection under the answer. */
static void conn_refuse_readcb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);

    (void)arg;
    evbuffer_drain(in, evbuffer_get_length(in));
}

/* The answer is out: say close_notify; the client closes after reading it. */
static void conn_refuse_writecb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;

    if (c->refuse != REFUSE_SENT || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    if (SSL_is_init_finished(c->ssl) && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(c->ssl);
    ERR_clear_error();
}

/* EOF, error or timeout: close from the timer, outside bufferevent code. */
static void conn_refuse_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)bev;
    (void)what;
    c->refuse = REFUSE_CLOSE;
    event_active(c->timer, EV_TIMEOUT, 0);
}

/* Take the connection from evhttp before it parses the request: from now on
 * its bufferevent calls us, and the timer writes the answer. */
static void conn_refuse(struct http_conn *c, int status)
{
    char peer[80];

    c->scan.on = false;
    c->refuse = REFUSE_PENDING;
    c->refuse_status = status;
    bufferevent_setcb(c->bev, conn_refuse_readcb, conn_refuse_writecb, conn_refuse_eventcb, c);
    conn_peer(c->evcon, peer, sizeof(peer));
    /* 503s are summed up by conn_cap_warn; the others say why, once each. */
    if (status == 503)
        log_debug("http: peer=%s status=%d %s, closing", peer, status, c->refuse_why);
    else
        log_info("http: peer=%s status=%d %s, closing", peer, status, c->refuse_why);
    event_active(c->timer, EV_TIMEOUT, 0);
}

/* Timer pass of a refused connection: write the answer (Connection: close),
 * then wait read_timeout at most for the client to close first. */
static void conn_refuse_step(struct http_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char body[128];
    int n;

    if (c->refuse != REFUSE_PENDING) {
        conn_close(c);
        return;
    }
    n = snprintf(body, sizeof(body), "%s\n", c->refuse_why);
    if (evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n", c->refuse_status,
                            http_reason(c->refuse_status)) < 0 ||
        (c->refuse_status == 503 &&
         evbuffer_add_printf(out, "Retry-After: %ld\r\n", c->w->lim.retry_after) < 0) ||
        evbuffer_add_printf(out, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", n, body) < 0)
        http_die("evbuffer_add_printf");
    c->refuse = REFUSE_SENT;
    conn_refuse_readcb(c->bev, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_arm(c, c->w->lim.read_timeout);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    char peer[80];

    (void)fd;
    (void)what;
    if (c->closed)
        return;
    if (!c->set_up) {
        conn_setup(c);
        return;
    }
    if (c->evcon == NULL)
        return;
    if (c->refuse != REFUSE_NONE) {
        conn_refuse_step(c);
        return;
    }
    if (c->w->stopping && c->phase == CONN_IDLE) {
        conn_close(c);
        return;
    }
    conn_peer(c->evcon, peer, sizeof(peer));
    log_debug("http: %s: %s timeout, closing", peer, c->phase == CONN_IDLE ? "idle" : "read");
    conn_close(c);
}

/* Bytes arriving on an idle connection start the next request's deadline;
 * a request's header block is measured before evhttp reads it. */
static void conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct http_conn *c = arg;
    int status;

    /* While the pool answers, evhttp owns the connection: a pipelined
     * request waits for that answer before anything reads it. */
    if (info->n_added == 0 || c->closed || c->evcon == NULL || c->refuse != REFUSE_NONE ||
        c->job != NULL)
        return;
    if (c->phase == CONN_IDLE) {
        c->phase = CONN_READING;
        conn_arm(c, c->w->lim.read_timeout);
        reqscan_start(&c->scan);
    }
    if (c->over_cap) {
        c->refuse_why = "server busy: too many connections, retry later";
        conn_refuse(c, 503);
        return;
    }
    if (!c->scan.on)
        return;
    status = conn_scan_added(c, buf, info->n_added);
    if (status != 0)
        conn_refuse(c, status);
}

/* A response went out and evhttp keeps the connection for the next request. */
static void conn_request_done(struct evhttp_request *req, void *arg)
{
    struct http_conn *c = arg;

    (void)req;
    if (c->closed)
        return;
    if (c->w->stopping) {
        /* Answered before the stop was seen: close from the timer, since evhttp
         * still uses the connection after this callback. */
        c->phase = CONN_IDLE;
        event_active(c->timer, EV_TIMEOUT, 0);
        return;
    }
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        /* Pipelined: the next request has already begun. evhttp takes it
         * back before we could refuse it, so only evhttp's own limits (400
         * for the header block, 413 for the body) apply to it. */
        c->phase = CONN_READING;
        c->scan.on = false;
        conn_arm(c, c->w->lim.read_timeout);
    } else {
        c->phase = CONN_IDLE;
        conn_arm(c, c->w->lim.idle_timeout);
    }
}

/* Bring the evhttp in line with the current generation's limits. Worker thread. */
static void worker_apply_limits(struct http_worker *w)
{
    evhttp_set_max_headers_size(w->http, w->lim.max_headers);
    evhttp_set_max_body_size(w->http, w->lim.max_body);
    /* Per read or write, also while idle: our deadlines are the precise ones. */
    evhttp_set_timeout(w->http, (int)lmax(w->lim.read_timeout, w->lim.idle_timeout));
}

/* evhttp_set_bevcb: a TLS bufferevent for a just-accepted socket (fd set by evhttp). */
static struct bufferevent *conn_bevcb(struct event_base *base, void *arg)
{
    struct http_worker *w = arg;
    struct http_server *hs = w->hs;
    struct http_conn *c = xcalloc(1, sizeof(*c));
    struct rt_gen *rg = runtime_acquire(hs->rt);
    struct http_gen *g = gen_part(hs, rg);
    bool new_limits = false;
    SSL *ssl;

    ssl = SSL_new(g->ctx); /* holds its own reference to the context */
    if (w->serial != rt_gen_serial(rg)) {
        w->lim = g->lim;
        w->serial = rt_gen_serial(rg);
        new_limits = true;
    }
    runtime_release(hs->rt, rg);
    /* Returning NULL would make evhttp serve plain HTTP: never do that. */
    if (ssl == NULL)
        http_die("SSL_new");
    if (new_limits)
        worker_apply_limits(w);

    c->w = w;
    c->ssl = ssl;
    c->phase = CONN_READING;
    reqscan_start(&c->scan);
    if (SSL_set_ex_data(ssl, conn_ex_idx, c) != 1)
        http_die("SSL_set_ex_data");
    c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        http_die("bufferevent_openssl_socket_new");
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    c->timer = event_new(base, -1, 0, conn_timer_cb, c);
    if (c->timer == NULL)
        http_die("event_new");
    c->input_cb = evbuffer_add_cb(bufferevent_get_input(c->bev), conn_input_cb, c);
    if (c->input_cb == NULL)
        http_die("evbuffer_add_cb");

    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    if (atomic_fetch_add(&hs->active, 1) >= w->lim.max_connections) {
        if (atomic_fetch_add(&hs->busy, 1) < w->lim.busy_allowance) {
            c->over_cap = true;
        } else {
            atomic_fetch_sub(&hs->busy, 1);
            c->reject = true;
        }
    }
    /* Setup needs the evhttp_connection, which exists once we return. */
    event_active(c->timer, EV_TIMEOUT, 0);
    return c->bev;
}

/* ---- requests ---- */

/* evbuffer cleanup for a body that holds key material. */
static void http_secret_free(const void *data, size_t len, void *arg)
{
    (void)arg;
    OPENSSL_clear_free((void *)data, len);
}

/* Write resp as the answer to req (RFC 7030 4, RFC 8951). The answer to a
 * HEAD is the same head, Content-Length included, without the body (RFC 9110
 * 9.3.2): evhttp would send the body and leave out Content-Length. */
static void http_reply(struct evhttp_request *req, struct http_conn *c, bool head,
                       const struct http_answer *resp)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *ob = evhttp_request_get_output_buffer(req);
    char num[32];

    if (resp->content_type != NULL)
        evhttp_add_header(oh, "Content-Type", resp->content_type);
    else if (resp->body_len > 0)
        evhttp_add_header(oh, "Content-Type", "application/octet-stream");
    if (resp->base64_cte)
        evhttp_add_header(oh, "Content-Transfer-Encoding", "base64");
    if (resp->www_authenticate != NULL)
        evhttp_add_header(oh, "WWW-Authenticate", resp->www_authenticate);
    if (resp->retry_after > 0) {
        snprintf(num, sizeof(num), "%ld", resp->retry_after);
        evhttp_add_header(oh, "Retry-After", num);
    }
    if (resp->allow != NULL)
        evhttp_add_header(oh, "Allow", resp->allow);
    if (c == NULL || c->w->stopping || c->close_after_job)
        evhttp_add_header(oh, "Connection", "close");
    if (head) {
        snprintf(num, sizeof(num), "%zu", resp->body_len);
        evhttp_add_header(oh, "Content-Length", num);
    } else if (resp->body_len > 0 && resp->body_secret) {
        /* by reference, so the only copy is wiped once sent (no evbuffer chunk keeps it) */
        void *copy = OPENSSL_memdup(resp->body, resp->body_len);
        if (copy == NULL ||
            evbuffer_add_reference(ob, copy, resp->body_len, http_secret_free, NULL) != 0)
            http_die("evbuffer_add_reference");
    } else if (resp->body_len > 0 && evbuffer_add(ob, resp->body, resp->body_len) != 0) {
        http_die("evbuffer_add");
    }
    evhttp_send_reply(req, resp->status, http_reason(resp->status), NULL);
    if (c == NULL || resp->body_secret)
        return; /* a joined copy of a private key would not be wiped */
    /* evhttp queues the head and the body as separate chunks, which the TLS
     * bufferevent would send as two records and two write(2)s: join them. */
    evbuffer_pullup(bufferevent_get_output(c->bev), -1);
}

/* The request's path, percent-decoded, and its raw query (NULL when none).
 * NULL when the target is malformed or decodes to a NUL. Caller frees both. */
static char *http_request_path(struct evhttp_request *req, char **query)
{
    struct evhttp_uri *uri = evhttp_uri_parse(evhttp_request_get_uri(req));
    const char *raw;
    char *path = NULL;
    size_t len = 0;

    if (uri == NULL)
        return NULL;
    raw = evhttp_uri_get_path(uri);
    if (raw == NULL || raw[0] == '\0')
        raw = "/";
    path = evhttp_uridecode(raw, 0, &len);
    if (path != NULL && strlen(path) != len) {
        free(path);
        path = NULL;
    }
    raw = evhttp_uri_get_query(uri);
    *query = path != NULL && raw != NULL ? xstrdup(raw) : NULL;
    evhttp_uri_free(uri);
    return path;
}

/* One request from its arrival to its answer. Built and finished on the
 * worker's thread; in between it may run on a pool thread (exchange_run). */
struct http_exchange {
    struct http_worker *w;
    struct http_conn *c;
    SSL *ssl; /* a reference: keeps c, its ex_data, alive if the peer leaves */
    struct evhttp_request *req;
    struct rt_gen *g;   /* a reference, released in exchange_finish */
    struct http_gen *p; /* our part of g */
    enum evhttp_cmd_type cmd;
    struct est_request er;
    struct http_est_input in; /* er's decoded credentials and body */
    bool routed;              /* http_route_est accepted the path: er.op and er.label are set */
    struct admin_request ar;  /* for /admin, /metrics and CRLs */
    bool admin;
    const char *accept; /* Accept header: the style of error bodies */
    struct http_answer resp;
    X509 *peer_cert;
    char *path;
    char *query;
    char peer[80];
    unsigned char cb[TLS_CHANNEL_BINDING_MAX];
    struct timespec t0;
};

/* Which requests leave the event loop: those that may wait on the store or
 * spend a signature. GETs answer from memory. */
static bool exchange_blocks(const struct http_exchange *x)
{
    return x->admin || x->er.method == EST_POST;
}

/* Operation and label for logs and metrics: only from the routing tables,
 * never a client's raw path segment. */
static void exchange_names(const struct http_exchange *x, const char **op, const char **label)
{
    bool est = !x->admin && x->routed;

    *op = x->admin ? "admin" : est ? est_op_name(x->er.op) : "none";
    *label = !est || x->resp.err == KP_ERR_UNKNOWN_LABEL ? ""
             : x->er.label[0] != '\0'                    ? x->er.label
                                                         : "default";
}

/* Counters for /metrics. */
static void exchange_count(const struct http_exchange *x, const char *op, const char *label,
                           double seconds)
{
    bool est = !x->admin && x->routed;
    bool enrolls = est && est_op_info(x->er.op)->enrolls;

    metrics_request(op, label, x->resp.status, seconds, enrolls);
    if (est && x->resp.status == 401 && x->resp.auth_method != NULL &&
        strcmp(x->resp.auth_method, "otp") == 0)
        metrics_otp_failure();
    if (est && (x->resp.err == KP_ERR_UNAVAILABLE || x->resp.err == KP_ERR_STORE))
        metrics_store_error();
}

/* The access log event (no secrets: the path and identity, never a header). */
static void exchange_log(const struct http_exchange *x, const char *op, const char *label,
                         double ms)
{
    char logpath[HTTP_LOG_FIELD_MAX], logsubj[HTTP_LOG_FIELD_MAX];
    bool has_subject = x->resp.auth_subject[0] != '\0';

    log_field(logpath, sizeof(logpath), x->path != NULL ? x->path : "?");
    log_field(logsubj, sizeof(logsubj), x->resp.auth_subject);
    struct log_field f[] = {
        {"req", NULL, (double)x->er.id},
        {"transport", "https", 0},
        {"peer", x->peer, 0},
        {"method", http_method_name(x->cmd), 0},
        {"path", logpath, 0},
        {"op", op, 0},
        {"label", label, 0},
        {"status", NULL, x->resp.status},
        {"bytes", NULL, x->cmd == EVHTTP_REQ_HEAD ? 0 : (double)x->resp.body_len},
        {"ms", NULL, (double)(long)(ms * 10) / 10},
        {"subject", logsubj, 0},
    };
    log_fields(LOG_INFO, "request", f, has_subject ? 11 : 10);
}

/* Answer, log and free. Worker thread. */
static void exchange_finish(struct http_exchange *x)
{
    struct http_conn *c = x->c;
    double ms = ms_since(&x->t0);
    const char *op, *label;

    if (c->job == x)
        c->job = NULL;
    exchange_names(x, &op, &label);
    exchange_count(x, op, label, ms / 1000.0);
    /* Gone peers: evhttp detached the request and frees it on this reply. */
    http_reply(x->req, c->closed ? NULL : c, x->cmd == EVHTTP_REQ_HEAD, &x->resp);
    if (log_enabled(LOG_INFO))
        exchange_log(x, op, label, ms);
    http_answer_cleanup(&x->resp);
    http_est_input_cleanup(&x->in);
    X509_free(x->peer_cert);
    OPENSSL_cleanse(x->cb, sizeof(x->cb));
    free(x->path);
    free(x->query);
    runtime_release(x->w->hs->rt, x->g);
    x->w->jobs--;
    SSL_free(x->ssl); /* may free c, when the connection closed meanwhile */
    free(x);
}

static void exchange_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exchange_finish(arg);
}

/* The core's answer, in HTTP's syntax. The decoded credentials go as soon
 * as the core is done with them. */
static void exchange_answer(struct http_exchange *x, struct http_b64_memo *memo)
{
    struct est_answer ans;
    struct admin_response aresp;

    if (x->admin) {
        admin_handle(rt_gen_admin(x->g), &x->ar, &aresp);
        http_admin_reply(&x->resp, &aresp, x->accept);
        admin_response_cleanup(&aresp);
        return;
    }
    est_handle(rt_gen_est(x->g), &x->er, &ans);
    x->er.cred.user = x->er.cred.password = NULL;
    http_est_input_cleanup(&x->in);
    http_est_reply(&x->resp, x->er.op, &ans, x->accept, memo);
    est_answer_cleanup(&ans);
}

/* Pool thread: the EST core, then back to the worker's loop to answer. */
static void exchange_run(void *arg)
{
    struct http_exchange *x = arg;

    exchange_answer(x, NULL); /* a pool thread: the loop's memo is not ours */
    if (event_base_once(x->w->base, -1, EV_TIMEOUT, exchange_done_cb, x, NULL) != 0)
        http_die("event_base_once");
}

/* The whole request body, contiguous (evhttp already enforced its size). */
static const unsigned char *request_body(struct evbuffer *in, size_t *len)
{
    const unsigned char *body;

    *len = evbuffer_get_length(in);
    if (*len == 0)
        return (const unsigned char *)"";
    body = evbuffer_pullup(in, -1);
    if (body == NULL)
        http_die("evbuffer_pullup");
    return body;
}

/* evhttp_set_gencb: one complete request (headers and body within the limits). */
static void http_request_cb(struct evhttp_request *req, void *arg)
{
    struct http_worker *w = arg;
    struct http_server *hs = w->hs;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    struct http_conn *c = SSL_get_ex_data(ssl, conn_ex_idx);
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct http_exchange *x = xcalloc(1, sizeof(*x));
    size_t cb_len = 0;
    enum kp_err rc;

    clock_gettime(CLOCK_MONOTONIC, &x->t0);
    assert(c != NULL && c->w == w);
    c->phase = CONN_BUSY;
    event_del(c->timer);
    evhttp_request_set_on_complete_cb(req, conn_request_done, c);

    x->w = w;
    x->c = c;
    x->ssl = ssl;
    SSL_up_ref(ssl);
    x->req = req;
    x->cmd = evhttp_request_get_command(req);
    x->g = runtime_acquire(hs->rt);
    x->p = gen_part(hs, x->g);
    w->jobs++;
    x->er.id = runtime_next_id(hs->rt);
    conn_peer(evcon, x->peer, sizeof(x->peer));
    x->er.peer_addr = x->peer;
    x->er.transport = "https";
    x->accept = evhttp_find_header(ih, "Accept");

    x->path = http_request_path(req, &x->query);
    x->peer_cert = SSL_get1_peer_certificate(ssl);
    if (x->path != NULL && admin_owns(rt_gen_admin(x->g), x->path)) {
        x->admin = true;
        x->ar.method = http_method_name(x->cmd);
        x->ar.path = x->path;
        x->ar.query = x->query;
        x->ar.body = request_body(in, &x->ar.body_len);
        x->ar.authorization = evhttp_find_header(ih, "Authorization");
        x->ar.peer_cert = x->peer_cert;
        /* admin certificates chain to admin.client_ca, never tls.client_ca */
        x->ar.peer_chain = SSL_get_peer_cert_chain(ssl); /* borrowed; leaf excluded */
        x->ar.peer_verify = x->peer_cert != NULL
                                ? trust_anchors_verify(est_server_admin_anchors(rt_gen_est(x->g)),
                                                       x->peer_cert, x->ar.peer_chain)
                                : -1;
        x->ar.peer_addr = x->peer;
        c->job = x;
        pool_submit(hs->pool, exchange_run, x);
        return;
    }
    if (x->path == NULL)
        rc = KP_ERR_BAD_REQUEST;
    else
        rc = http_route_est(x->p->base_path, x->path, &x->er);
    x->routed = rc == KP_OK;
    if (rc != KP_OK) {
        http_est_error(&x->resp, rc, x->accept, NULL);
        exchange_finish(x);
        return;
    }

    /* HEAD is a GET whose body is left out (RFC 9110 9.3.2): http_reply */
    x->er.method = x->cmd == EVHTTP_REQ_GET || x->cmd == EVHTTP_REQ_HEAD ? EST_GET
                   : x->cmd == EVHTTP_REQ_POST                           ? EST_POST
                                                                         : EST_OTHER;
    {
        size_t body_len = 0;
        const unsigned char *body = request_body(in, &body_len);
        http_est_input_fill(&x->er, &x->in, evhttp_find_header(ih, "Content-Type"), x->accept,
                            evhttp_find_header(ih, "Authorization"), body, body_len);
    }

    if (x->peer_cert != NULL) {
        x->er.cred.cert = x->peer_cert;
        x->er.cred.chain = SSL_get_peer_cert_chain(ssl); /* borrowed; leaf excluded */
        /* the handshake accepted admin.client_ca too: EST trusts tls.client_ca alone */
        x->er.cred.cert_verify = trust_anchors_verify(est_server_client_anchors(rt_gen_est(x->g)),
                                                      x->peer_cert, x->er.cred.chain);
    } else {
        /* SSL_get_verify_result says X509_V_OK when nothing was presented. */
        x->er.cred.cert_verify = X509_V_ERR_UNSPECIFIED;
    }
    /* Only a POSTed CSR can carry the binding; the exporter costs an HKDF. */
    if (x->er.method == EST_POST && tls_channel_binding(ssl, x->cb, &cb_len) == KP_OK) {
        x->er.channel_binding = x->cb;
        x->er.channel_binding_len = cb_len;
    }

    if (exchange_blocks(x)) {
        c->job = x;
        pool_submit(hs->pool, exchange_run, x);
        return;
    }
    exchange_answer(x, &x->w->memo);
    exchange_finish(x);
}

/* ---- workers ---- */

static void worker_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_worker *w = arg;

    (void)fd;
    (void)what;
    event_base_loopbreak(w->base);
}

/* In the worker: stop accepting, close idle connections, wait for the rest. */
static void worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_worker *w = arg;
    int grace = w->hs->grace;
    struct http_conn *c, *next;
    struct timeval tv = {.tv_sec = grace, .tv_usec = 0};

    (void)fd;
    (void)what;
    w->stopping = true;
    if (w->bound != NULL) {
        evhttp_del_accept_socket(w->http, w->bound);
        w->bound = NULL;
    }
    /* Closing only marks: connections are freed later, by finalizers. */
    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (!c->closed && c->set_up && (grace == 0 || c->phase == CONN_IDLE))
            conn_close(c);
    }
    if (w->nconns == 0 || grace == 0) {
        event_base_loopbreak(w->base);
        return;
    }
    w->grace = evtimer_new(w->base, worker_grace_cb, w);
    if (w->grace == NULL || evtimer_add(w->grace, &tv) != 0)
        event_base_loopbreak(w->base);
}

/* Free the worker's libevent state; the thread has stopped or never ran. */
static void worker_teardown(struct http_worker *w)
{
    w->stopping = true;
    if (w->http != NULL) {
        /* Frees every connection (conn_closecb sends close_notify)... */
        evhttp_free(w->http);
        w->http = NULL;
        w->bound = NULL;
    }
    /* ...whose bufferevents, SSLs and http_conns go in finalizers. */
    for (int i = 0; i < HTTP_TEARDOWN_PASSES && w->nconns > 0; i++)
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    if (w->nconns > 0)
        log_warn("http: %zu connection(s) not finalized at shutdown", w->nconns);
    if (w->grace != NULL) {
        event_free(w->grace);
        w->grace = NULL;
    }
    if (w->base != NULL) {
        event_base_free(w->base);
        w->base = NULL;
    }
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    http_b64_memo_free(&w->memo);
}

static void *worker_main(void *arg)
{
    struct http_worker *w = arg;

    if (event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
        log_error("http: event loop failed");
    /* Requests still on the pool come back through this loop; teardown
     * would free them under the pool. */
    while (w->jobs > 0)
        event_base_loop(w->base, EVLOOP_ONCE);
    worker_teardown(w);
    return NULL;
}

/* An evhttp on its own base, accepting on w->fd (which it then owns). */
static enum kp_err worker_init(struct http_worker *w, char **errmsg)
{
    struct rt_gen *rg = runtime_acquire(w->hs->rt);
    struct http_gen *g = gen_part(w->hs, rg);

    struct event_config *ec = event_config_new();

    /* The changelist folds evhttp's disable-read/enable-read around every
     * response into at most one epoll_ctl per loop turn. */
    if (ec == NULL || event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0)
        http_die("event_config");
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL)
        http_die("event_base_new");
    w->http = evhttp_new(w->base);
    if (w->http == NULL)
        http_die("evhttp_new");
    w->lim = g->lim;
    w->serial = rt_gen_serial(rg);
    runtime_release(w->hs->rt, rg);
    worker_apply_limits(w);
    /* Let every method evhttp parses through, for the EST layer's 405. */
    evhttp_set_allowed_methods(
        w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                     EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_PATCH);
    /* Read and drop an oversized body so the client sees the 413, not a reset. */
    evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_bevcb(w->http, conn_bevcb, w);
    evhttp_set_gencb(w->http, http_request_cb, w);
    w->bound = evhttp_accept_socket_with_handle(w->http, w->fd);
    if (w->bound == NULL) {
        *errmsg = xasprintf("http: cannot accept on the listening socket");
        return KP_ERR_INTERNAL;
    }
    w->fd = -1; /* steal: the evhttp's listener closes it */
    return KP_OK;
}

/* ---- sockets ---- */

static enum kp_err listen_resolve(const char *host, struct addrinfo **out, char **errmsg)
{
    struct addrinfo hints = {0};
    int r;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (host != NULL && host[0] == '\0')
        host = NULL;
    r = getaddrinfo(host, "0", &hints, out);
    if (r != 0) {
        *errmsg = xasprintf("server.listen \"%s\": %s", host ? host : "", gai_strerror(r));
        return KP_ERR_CONFIG;
    }
    return KP_OK;
}

/* SO_REUSEPORT would let our sockets join those of another process of the same
 * user (a second instance) and silently share its traffic: first check with a
 * plain bind that nobody else holds the port. Port 0 needs no check: the kernel
 * never picks a port in use for it. */
static enum kp_err listen_probe(const struct addrinfo *ai, int port, char **errmsg)
{
    struct sockaddr_storage ss;
    int fd, one = 1;
    enum kp_err rc = KP_ERR_IO;

    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *errmsg = xasprintf("socket: %s", strerror(errno));
        goto out;
    }
    /* SO_REUSEADDR only skips TIME_WAIT leftovers; a listener still conflicts. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0) {
        *errmsg = xasprintf("bind port %d: %s", port, strerror(errno));
        goto out;
    }
    rc = KP_OK;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* A non-blocking SO_REUSEPORT socket listening on ai's address and *port;
 * with *port 0, *port is set to what the kernel chose. */
static enum kp_err listen_socket(const struct addrinfo *ai, int *port, evutil_socket_t *out,
                                 char **errmsg)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int fd, one = 1;
    enum kp_err rc = KP_ERR_IO;

    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)*port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)*port);

    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *errmsg = xasprintf("socket: %s", strerror(errno));
        goto out;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        *errmsg = xasprintf("setsockopt SO_REUSEPORT: %s", strerror(errno));
        goto out;
    }
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0) {
        *errmsg = xasprintf("bind port %d: %s", *port, strerror(errno));
        goto out;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        *errmsg = xasprintf("listen: %s", strerror(errno));
        goto out;
    }
    if (*port == 0) {
        if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
            *errmsg = xasprintf("getsockname: %s", strerror(errno));
            goto out;
        }
        *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *out = fd;
    fd = -1; /* steal */
    rc = KP_OK;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- public ---- */

enum kp_err http_server_start(struct runtime *rt, struct http_server **out, char **errmsg)
{
    struct http_server *hs = NULL;
    struct rt_gen *rg = NULL;
    const struct kp_config *cfg;
    struct addrinfo *ai = NULL;
    struct sigaction sa;
    sigset_t all, old;
    enum kp_err rc;
    int port;

    pthread_once(&http_once, http_global_init);
    if (!http_init_ok) {
        *errmsg = xasprintf("http: cannot initialise libevent threading");
        return KP_ERR_INTERNAL;
    }
    /* A client closing mid-write must not kill the server. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    /* listen, port and threads: from the config at start, for good */
    rg = runtime_acquire(rt);
    cfg = rt_gen_config(rg);
    if (cfg->port < 0 || cfg->port > 65535) {
        *errmsg = xasprintf("server.port %ld out of range", cfg->port);
        rc = KP_ERR_CONFIG;
        goto out;
    }
    hs = xcalloc(1, sizeof(*hs));
    hs->rt = rt;
    hs->slot = -1;
    hs->pool = runtime_pool(rt);
    atomic_init(&hs->active, 0);
    atomic_init(&hs->busy, 0);
    atomic_init(&hs->cap_warned_at, 0);
    atomic_init(&hs->cap_dropped, 0);
    hs->listen = xstrdup(cfg->listen ? cfg->listen : "");
    hs->cfg_port = cfg->port;
    hs->cfg_threads = cfg->threads;
    hs->nworkers = runtime_threads(rt);
    hs->fd_max_conns = http_fd_max_conns(hs->nworkers);

    /* before anything can fail: stop and free walk the workers */
    hs->workers = xcalloc(hs->nworkers, sizeof(*hs->workers));
    for (size_t i = 0; i < hs->nworkers; i++) {
        hs->workers[i].hs = hs;
        hs->workers[i].fd = -1;
    }
    rc = runtime_part_add(rt, &http_part_ops, hs, &hs->slot, errmsg);
    if (rc != KP_OK)
        goto out;
    rc = listen_resolve(cfg->listen, &ai, errmsg);
    if (rc != KP_OK)
        goto out;
    /* Port 0: the first socket gets a port from the kernel, the others share it. */
    port = (int)cfg->port;
    for (size_t i = 0; i < hs->nworkers; i++) {
        if (i == 0 && port != 0)
            rc = listen_probe(ai, port, errmsg);
        if (rc == KP_OK)
            rc = listen_socket(ai, &port, &hs->workers[i].fd, errmsg);
        if (rc != KP_OK) {
            char *m = *errmsg;
            *errmsg = xasprintf("server.listen %s:%ld: %s", hs->listen, cfg->port, m);
            free(m);
            goto out;
        }
    }
    hs->port = port;
    for (size_t i = 0; i < hs->nworkers; i++) {
        rc = worker_init(&hs->workers[i], errmsg);
        if (rc != KP_OK)
            goto out;
    }

    /* Workers take no signals: handlers and sigwait stay in the caller's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (size_t i = 0; i < hs->nworkers; i++) {
        struct http_worker *w = &hs->workers[i];
        int r = pthread_create(&w->thread, NULL, worker_main, w);
        if (r != 0) {
            *errmsg = xasprintf("http: pthread_create: %s", strerror(r));
            rc = KP_ERR_INTERNAL;
            break;
        }
        w->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != KP_OK)
        goto out;

    /* Integration tests wait for this exact line. */
    printf("kipuka: listening on https://%s%s%s:%d%s/\n", strchr(hs->listen, ':') ? "[" : "",
           hs->listen[0] ? hs->listen : "0.0.0.0", strchr(hs->listen, ':') ? "]" : "", hs->port,
           gen_part(hs, rg)->base_path);
    fflush(stdout);
    log_info("http: %zu thread(s) listening on port %d", hs->nworkers, hs->port);

    *out = hs;
    hs = NULL; /* steal */
    rc = KP_OK;
out:
    runtime_release(rt, rg);
    if (ai != NULL)
        freeaddrinfo(ai);
    if (hs != NULL) {
        http_server_stop(hs, 0);
        http_server_free(hs);
    }
    return rc;
}

int http_server_port(const struct http_server *hs)
{
    return hs->port;
}

void http_server_stop(struct http_server *hs, int grace_seconds)
{
    if (hs == NULL || hs->stopped)
        return;
    hs->stopped = true;
    hs->grace = grace_seconds > 0 ? grace_seconds : 0;
    for (size_t i = 0; i < hs->nworkers; i++) {
        struct http_worker *w = &hs->workers[i];
        if (w->started && event_base_once(w->base, -1, EV_TIMEOUT, worker_stop_cb, w, NULL) != 0)
            event_base_loopbreak(w->base);
    }
    for (size_t i = 0; i < hs->nworkers; i++) {
        struct http_worker *w = &hs->workers[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
            w->started = false;
        } else {
            worker_teardown(w);
        }
    }
    /* The pool is idle for us now: every worker waited for its requests. */
}

void http_server_free(struct http_server *hs)
{
    if (hs == NULL)
        return;
    http_server_stop(hs, 0);
    /* A server that never started its threads still has bases to free. */
    for (size_t i = 0; i < hs->nworkers; i++)
        if (hs->workers[i].base != NULL || hs->workers[i].fd >= 0)
            worker_teardown(&hs->workers[i]);
    free(hs->workers);
    /* Generations still alive free our parts without us. */
    runtime_part_remove(hs->rt, hs->slot);
    free(hs->listen);
    free(hs);
}

/* ---- the transport registry's row ---- */

static enum kp_err transport_start(struct runtime *rt, void **handle, char **errmsg)
{
    struct http_server *hs = NULL;
    enum kp_err rc = http_server_start(rt, &hs, errmsg);

    *handle = hs;
    return rc;
}

static void transport_stop(void *handle, int grace_seconds)
{
    http_server_stop(handle, grace_seconds);
}

static void transport_free(void *handle)
{
    http_server_free(handle);
}

const struct transport_ops http_transport = {"https", transport_start, transport_stop,
                                             transport_free};
