/* bench-coaploadgen: the EST-coaps (RFC 9148) load generator of `make bench`
 * (method in bench/README.md), on libcoap3's client API.
 *
 * Drives a CoAP server over DTLS 1.2 with a pre-shared key (RFC 4279) with
 * --clients concurrent clients, spread over --threads loops; each loop owns
 * one coap_context (libcoap is not thread-safe within a context) and drives
 * it with coap_io_process. RFC 7959 blocks are left to libcoap
 * (COAP_BLOCK_USE_LIBCOAP): a Block2 answer reaches us as one body. Prints
 * one line of key=value results on stdout, as bench/loadgen.c does. Modes:
 *   enroll  POST --csr (a DER PKCS#10, Content-Format 286) to --path, each
 *           request on a new DTLS session (the new TLS connection of HTTPS)
 *   get     GET --path (Accept 281) on kept sessions, back to back
 * A response is a success when its code is one of --expect and it has a
 * payload; any other code is an error counted by code. For every --pid, the
 * server's CPU time and RSS are read at the edges of the measured window. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <coap3/coap.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "proc.h"

#define CL_MAX_CLIENTS 10000
#define CL_MAX_THREADS 64
#define CL_MAX_PIDS 16
#define CL_MAX_SECONDS 600
#define CL_MAX_EXPECT 8
#define CL_BODY_MAX (64 * 1024)           /* --csr; libcoap sends it in Block1 if needed */
#define CL_RESP_MAX (64 * 1024)           /* one response body; larger is a protocol error */
#define CL_PSK_MAX 64                     /* key bytes, as kipuka's coap.psk_file allows */
#define CL_IDENTITY_MAX 128               /* RFC 4279 identity bytes, as kipuka allows */
#define CL_PSK_LINE_MAX 512               /* one line of a psk_file */
#define CL_PATH_MAX 255                   /* one Uri-Path segment (RFC 7252 5.10) */
#define CL_SAMPLES_MAX (20 * 1000 * 1000) /* latencies kept per loop */
#define CL_DRAIN_SECONDS 3                /* after the window: let in-flight requests end */
#define CL_ERR_LOG_MAX 3                  /* error details printed per loop and kind */
#define CL_IO_WAIT_MS 50
#define NS 1000000000ULL

enum cl_mode { CL_ENROLL, CL_GET };

/* Why a request failed; counted separately. */
enum cl_err {
    CL_E_SESSION,    /* no session or no PDU could be made or sent */
    CL_E_DTLS,       /* handshake failed, or the session closed under the request */
    CL_E_TIMEOUT,    /* CON retransmissions exhausted (RFC 7252 4.2), or --timeout */
    CL_E_RST,        /* the server answered with a Reset */
    CL_E_IO,         /* not deliverable (ICMP, socket error) */
    CL_E_CODE,       /* a response code not in --expect; also counted by code */
    CL_E_EMPTY,      /* an expected code without a payload */
    CL_E_PROTO,      /* a body over CL_RESP_MAX */
    CL_E_UNFINISHED, /* still running when the drain ended */
    CL_E__MAX
};

static const char *const cl_err_names[CL_E__MAX] = {
    "session", "dtls", "timeout", "rst", "io", "code", "empty", "proto", "unfinished",
};

enum cl_state { ST_FREE, ST_BUSY };

struct cl_opts {
    enum cl_mode mode;
    const char *host;
    int port;
    const char *path;
    coap_pdu_code_t method;
    int content_format; /* -1: none */
    int accept;         /* -1: none */
    coap_pdu_code_t expect[CL_MAX_EXPECT];
    int nexpect;
    int clients;
    int threads;
    double seconds;
    double warmup;
    uint64_t timeout_ns;
    bool verbose;
    char identity[CL_IDENTITY_MAX + 1];
    unsigned char psk[CL_PSK_MAX];
    size_t psk_len;
    unsigned char *body; /* --csr */
    size_t body_len;
    pid_t pids[CL_MAX_PIDS];
    int npids;
};

struct cl_loop;

struct cl_client {
    struct cl_loop *loop;
    coap_session_t *session; /* ours: released by the loop, never in a handler */
    enum cl_state st;
    bool dead;    /* the session closed or failed: release it before the next request */
    bool had_one; /* get: a session was open before, so a new one is a reconnect */
    uint8_t token[8];
    size_t token_len;
    uint64_t t0; /* request start (the new session's start in enroll mode) */
};

/* One coap_context and its share of the clients; touched only by its thread
 * until joined. */
struct cl_loop {
    const struct cl_opts *o;
    pthread_t th;
    coap_context_t *ctx;
    coap_optlist_t *opts; /* Uri-Path, Content-Format, Accept; sorted in place by libcoap */
    coap_address_t dst;
    struct cl_client *clients;
    size_t nclients;
    size_t inflight;
    uint64_t *lat; /* ns, responses completed in the window */
    size_t nlat, caplat;
    uint64_t ok_window, ok_total, reconnects, handshakes;
    uint64_t ok_bytes; /* response bodies of ok_window */
    uint64_t err_window[CL_E__MAX], err_total[CL_E__MAX];
    uint64_t code_window[256]; /* CL_E_CODE by response code */
    unsigned err_logged[CL_E__MAX];
    char cipher[64], kx[32]; /* of the first handshake */
};

static uint64_t t_warm, t_stop, t_drain; /* CLOCK_MONOTONIC ns */

static _Noreturn void die(const char *msg)
{
    fprintf(stderr, "bench-coaploadgen: %s\n", msg);
    exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        die("out of memory");
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / NS), .tv_nsec = (long)(t % NS)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static bool in_window(uint64_t t)
{
    return t >= t_warm && t < t_stop;
}

/* ---- inputs ---- */

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Hex digits to o->psk; the key never reaches a message. */
static void psk_set_hex(struct cl_opts *o, const char *hex, size_t len)
{
    if (len == 0 || len % 2 != 0 || len / 2 > CL_PSK_MAX)
        die("the PSK must be 2 to 128 hex digits");
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            die("the PSK is not hex");
        o->psk[i] = (unsigned char)(hi << 4 | lo);
    }
    o->psk_len = len / 2;
}

/* The next space- or tab-separated field of *p, or NULL; advances *p. */
static const char *field_next(const char **p, size_t *len)
{
    const char *f = *p + strspn(*p, " \t\r\n");

    *len = strcspn(f, " \t\r\n");
    *p = f + *len;
    return *len > 0 ? f : NULL;
}

/* The key of --identity in a kipuka coap.psk_file: "IDENTITY LABEL HEXKEY"
 * lines, '#' comments. */
static void psk_load_file(struct cl_opts *o, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[CL_PSK_LINE_MAX + 2];
    bool found = false;

    if (f == NULL)
        die("cannot open --psk-file");
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        const char *p = line, *id, *label, *key;
        size_t id_len, label_len, key_len;

        if (strchr(line, '\n') == NULL && !feof(f))
            die("a --psk-file line is too long");
        id = field_next(&p, &id_len);
        if (id == NULL || id[0] == '#' || id_len != strlen(o->identity) ||
            memcmp(id, o->identity, id_len) != 0)
            continue;
        label = field_next(&p, &label_len);
        key = field_next(&p, &key_len);
        if (label == NULL || key == NULL)
            die("malformed --psk-file line for --identity");
        psk_set_hex(o, key, key_len);
        found = true;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    if (!found)
        die("--identity is not in --psk-file");
}

static void body_load(struct cl_opts *o, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        die("cannot open --csr");
    o->body = xcalloc(CL_BODY_MAX + 1, 1);
    n = fread(o->body, 1, CL_BODY_MAX + 1, f);
    fclose(f);
    if (n == 0 || n > CL_BODY_MAX)
        die("--csr is empty or over 64 KB");
    o->body_len = n;
}

/* "2.04" or "2.01,2.04" to CoAP codes (class << 5 | detail, RFC 7252 3). */
static void expect_parse(struct cl_opts *o, const char *s)
{
    o->nexpect = 0;
    while (*s != '\0') {
        int cls = 0, detail = 0, n = 0;

        if (o->nexpect == CL_MAX_EXPECT || sscanf(s, "%1d.%2d%n", &cls, &detail, &n) != 2 ||
            n != 4 || cls < 2 || cls > 5 || detail > 31)
            die("--expect takes codes like 2.04, comma-separated");
        o->expect[o->nexpect++] = (coap_pdu_code_t)COAP_RESPONSE_CODE(cls * 100 + detail);
        s += n;
        if (*s == ',')
            s++;
    }
}

/* Uri-Path segments of o->path, then the media type options. */
static coap_optlist_t *opts_build(const struct cl_opts *o)
{
    coap_optlist_t *opts = NULL;
    const char *p = o->path;
    uint8_t buf[4];

    while (*p != '\0') {
        size_t len;

        while (*p == '/')
            p++;
        len = strcspn(p, "/");
        if (len == 0)
            break;
        if (len > CL_PATH_MAX)
            die("a --path segment is over 255 bytes");
        if (!coap_insert_optlist(&opts,
                                 coap_new_optlist(COAP_OPTION_URI_PATH, len, (const uint8_t *)p)))
            die("cannot build the options");
        p += len;
    }
    if (o->content_format >= 0 && o->body != NULL &&
        !coap_insert_optlist(
            &opts, coap_new_optlist(
                       COAP_OPTION_CONTENT_FORMAT,
                       coap_encode_var_safe(buf, sizeof(buf), (unsigned)o->content_format), buf)))
        die("cannot build the options");
    if (o->accept >= 0 &&
        !coap_insert_optlist(
            &opts,
            coap_new_optlist(COAP_OPTION_ACCEPT,
                             coap_encode_var_safe(buf, sizeof(buf), (unsigned)o->accept), buf)))
        die("cannot build the options");
    return opts;
}

/* ---- counting ---- */

static void loop_err(struct cl_loop *l, enum cl_err kind, const char *detail)
{
    uint64_t t = now_ns();

    l->err_total[kind]++;
    if (in_window(t))
        l->err_window[kind]++;
    if (l->err_logged[kind] < CL_ERR_LOG_MAX) {
        l->err_logged[kind]++;
        fprintf(stderr, "bench-coaploadgen: %s error: %s\n", cl_err_names[kind], detail);
    }
}

/* The request of c ended (answered or failed): the loop starts the next. */
static void client_end(struct cl_client *c)
{
    c->st = ST_FREE;
    c->loop->inflight--;
    if (c->loop->o->mode == CL_ENROLL)
        c->dead = true; /* one session per request */
}

static void client_fail(struct cl_client *c, enum cl_err kind, const char *detail)
{
    loop_err(c->loop, kind, detail);
    client_end(c);
}

/* ---- libcoap handlers: they only record; sessions are released by the loop ---- */

static coap_response_t on_response(coap_session_t *s, const coap_pdu_t *sent,
                                   const coap_pdu_t *rcvd, const coap_mid_t mid)
{
    struct cl_client *c = coap_session_get_app_data(s);
    coap_bin_const_t tok = coap_pdu_get_token(rcvd);
    coap_pdu_code_t code = coap_pdu_get_code(rcvd);
    const uint8_t *data = NULL;
    size_t len = 0, off = 0, total = 0;
    struct cl_loop *l;
    uint64_t t = now_ns();
    bool expected = false;

    (void)sent;
    (void)mid;
    if (c == NULL || c->st != ST_BUSY || tok.length != c->token_len ||
        memcmp(tok.s, c->token, c->token_len) != 0)
        return COAP_RESPONSE_OK; /* late or foreign: not ours to count */
    l = c->loop;
    for (int i = 0; i < l->o->nexpect; i++)
        expected = expected || code == l->o->expect[i];
    if (!expected) {
        char detail[32];
        snprintf(detail, sizeof(detail), "code %d.%02d", code >> 5, code & 0x1f);
        if (in_window(t))
            l->code_window[code & 0xff]++;
        client_fail(c, CL_E_CODE, detail);
        return COAP_RESPONSE_OK;
    }
    /* COAP_BLOCK_SINGLE_BODY: the whole body, Block2 reassembled by libcoap */
    coap_get_data_large(rcvd, &len, &data, &off, &total);
    if (total > CL_RESP_MAX || len > CL_RESP_MAX) {
        client_fail(c, CL_E_PROTO, "response body over 64 KB");
        return COAP_RESPONSE_OK;
    }
    if (len == 0) {
        client_fail(c, CL_E_EMPTY, "expected code without a payload");
        return COAP_RESPONSE_OK;
    }
    l->ok_total++;
    if (in_window(t)) {
        l->ok_window++;
        l->ok_bytes += len;
        if (l->nlat < l->caplat)
            l->lat[l->nlat++] = t - c->t0;
    }
    client_end(c);
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason,
                    const coap_mid_t mid)
{
    struct cl_client *c = coap_session_get_app_data(s);
    coap_bin_const_t tok;

    (void)mid;
    if (c == NULL || sent == NULL)
        return;
    tok = coap_pdu_get_token(sent);
    if (c->st != ST_BUSY || tok.length != c->token_len ||
        memcmp(tok.s, c->token, c->token_len) != 0)
        return;
    c->dead = true; /* get: a new session for the next request */
    switch (reason) {
    case COAP_NACK_TOO_MANY_RETRIES:
        client_fail(c, CL_E_TIMEOUT, "no answer after the CON retransmissions");
        break;
    case COAP_NACK_RST:
        client_fail(c, CL_E_RST, "reset by the server");
        break;
    case COAP_NACK_TLS_FAILED:
        client_fail(c, CL_E_DTLS, "DTLS failed");
        break;
    default:
        client_fail(c, CL_E_IO, "not deliverable");
        break;
    }
}

/* The negotiated suite and key exchange group, from the first handshake:
 * what the server's handshake costs depends on them (bench/README.md). */
static void loop_note_cipher(struct cl_loop *l, coap_session_t *s)
{
    coap_tls_library_t lib;
    SSL *ssl = coap_session_get_tls(s, &lib);
    EVP_PKEY *pk = NULL;

    if (l->cipher[0] != '\0' || ssl == NULL || lib != COAP_TLS_LIBRARY_OPENSSL)
        return;
    snprintf(l->cipher, sizeof(l->cipher), "%s", SSL_get_cipher_name(ssl));
    if (SSL_get_peer_tmp_key(ssl, &pk) == 1 && pk != NULL) {
        snprintf(l->kx, sizeof(l->kx), "%s", EVP_PKEY_get0_type_name(pk));
        EVP_PKEY_free(pk);
    } else {
        snprintf(l->kx, sizeof(l->kx), "none");
    }
}

static int on_event(coap_session_t *s, const coap_event_t event)
{
    struct cl_client *c = coap_session_get_app_data(s);

    if (c == NULL)
        return 0;
    switch (event) {
    case COAP_EVENT_DTLS_CONNECTED:
        c->loop->handshakes++;
        loop_note_cipher(c->loop, s);
        break;
    case COAP_EVENT_DTLS_CLOSED:
    case COAP_EVENT_DTLS_ERROR:
        c->dead = true;
        if (c->st == ST_BUSY)
            client_fail(c, CL_E_DTLS,
                        event == COAP_EVENT_DTLS_ERROR ? "DTLS error" : "DTLS session closed");
        break;
    case COAP_EVENT_PARTIAL_BLOCK:
        if (c->st == ST_BUSY)
            client_fail(c, CL_E_PROTO, "incomplete Block2 body");
        break;
    default:
        break;
    }
    return 0;
}

/* ---- clients ---- */

static bool client_session_new(struct cl_client *c)
{
    struct cl_loop *l = c->loop;
    coap_dtls_cpsk_t setup = {.version = COAP_DTLS_CPSK_SETUP_VERSION};

    setup.psk_info.identity.s = (const uint8_t *)l->o->identity;
    setup.psk_info.identity.length = strlen(l->o->identity);
    setup.psk_info.key.s = l->o->psk;
    setup.psk_info.key.length = l->o->psk_len;
    c->session = coap_new_client_session_psk2(l->ctx, NULL, &l->dst, COAP_PROTO_DTLS, &setup);
    if (c->session == NULL)
        return false;
    coap_session_set_app_data(c->session, c);
    if (c->had_one && l->o->mode == CL_GET)
        l->reconnects++;
    c->had_one = true;
    return true;
}

static void client_session_drop(struct cl_client *c)
{
    if (c->session != NULL) {
        coap_session_set_app_data(c->session, NULL);
        coap_session_release(c->session); /* sends the DTLS close_notify */
    }
    c->session = NULL;
    c->dead = false;
}

/* The next request of c: a new session in enroll mode (or after a failure),
 * then the PDU, which libcoap holds until the handshake is done. */
static void client_start(struct cl_client *c)
{
    struct cl_loop *l = c->loop;
    coap_pdu_t *pdu;

    if (c->dead)
        client_session_drop(c);
    c->t0 = now_ns();
    c->st = ST_BUSY;
    l->inflight++;
    if (c->session == NULL && !client_session_new(c)) {
        client_fail(c, CL_E_SESSION, "cannot create a DTLS session");
        return;
    }
    pdu = coap_new_pdu(COAP_MESSAGE_CON, l->o->method, c->session);
    if (pdu == NULL) {
        c->dead = true;
        client_fail(c, CL_E_SESSION, "cannot create a PDU");
        return;
    }
    coap_session_new_token(c->session, &c->token_len, c->token);
    if (!coap_add_token(pdu, c->token_len, c->token) || !coap_add_optlist_pdu(pdu, &l->opts) ||
        (l->o->body != NULL &&
         !coap_add_data_large_request(c->session, pdu, l->o->body_len, l->o->body, NULL, NULL))) {
        coap_delete_pdu(pdu);
        c->dead = true;
        client_fail(c, CL_E_SESSION, "cannot build the request");
        return;
    }
    if (coap_send(c->session, pdu) == COAP_INVALID_MID) {
        /* a failure inside coap_send may already have ended the request */
        if (c->st == ST_BUSY) {
            c->dead = true;
            client_fail(c, CL_E_SESSION, "coap_send failed");
        }
    }
}

/* ---- loops ---- */

static void *loop_run(void *arg)
{
    struct cl_loop *l = arg;

    for (;;) {
        uint64_t t = now_ns();

        if (t >= t_drain || (t >= t_stop && l->inflight == 0))
            break;
        for (size_t i = 0; i < l->nclients; i++) {
            struct cl_client *c = &l->clients[i];
            if (c->st == ST_BUSY && t > c->t0 && t - c->t0 > l->o->timeout_ns) {
                /* a lost handshake flight is not retransmitted for long */
                c->dead = true;
                client_fail(c, CL_E_TIMEOUT, "no answer within --timeout");
            }
            if (c->st == ST_FREE && c->dead)
                client_session_drop(c);
            if (c->st == ST_FREE && t < t_stop)
                client_start(c);
        }
        coap_io_process(l->ctx, CL_IO_WAIT_MS);
    }
    for (size_t i = 0; i < l->nclients; i++) {
        struct cl_client *c = &l->clients[i];
        if (c->st == ST_BUSY) {
            /* counted in the window, as loadgen.c does */
            l->err_total[CL_E_UNFINISHED]++;
            l->err_window[CL_E_UNFINISHED]++;
            c->st = ST_FREE;
        }
        client_session_drop(c);
    }
    return NULL;
}

static void loop_init(struct cl_loop *l, const struct cl_opts *o, size_t share)
{
    char port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;

    l->o = o;
    snprintf(port, sizeof(port), "%d", o->port);
    if (getaddrinfo(o->host, port, &hints, &res) != 0 || res == NULL ||
        res->ai_addrlen > sizeof(l->dst.addr))
        die("--host must be an IPv4 or IPv6 address");
    coap_address_init(&l->dst);
    l->dst.size = res->ai_addrlen;
    memcpy(&l->dst.addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    l->ctx = coap_new_context(NULL);
    if (l->ctx == NULL)
        die("coap_new_context");
    coap_context_set_block_mode(l->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_register_response_handler(l->ctx, on_response);
    coap_register_nack_handler(l->ctx, on_nack);
    coap_register_event_handler(l->ctx, on_event);
    l->opts = opts_build(o);
    l->nclients = share;
    l->clients = xcalloc(share, sizeof(*l->clients));
    for (size_t j = 0; j < share; j++)
        l->clients[j].loop = l;
    /* room for 200,000 responses a second; beyond that only counted */
    double cap = o->seconds * 200000.0 + 1024.0;
    l->caplat = cap > CL_SAMPLES_MAX ? CL_SAMPLES_MAX : (size_t)cap;
    l->lat = xcalloc(l->caplat, sizeof(uint64_t));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    return (double)v[(size_t)(p * (double)(n - 1))] / 1e6;
}

/* ---- main ---- */

static _Noreturn void usage(void)
{
    fputs("usage: bench-coaploadgen enroll|get --port N --identity ID\n"
          "           (--psk-file F | --psk-key HEX) [options]\n"
          "  --host A            server address (127.0.0.1)\n"
          "  --path P            enroll: /est/sen; get: /est/crts\n"
          "  --csr F             enroll: the request body, a DER PKCS#10\n"
          "  --method M          enroll: post (default) or put\n"
          "  --content-format N  of the body (286, application/pkcs10); none to omit\n"
          "  --accept N          (281, certs-only PKCS#7); none to omit\n"
          "  --expect CODES      success codes, comma-separated (enroll 2.04, get 2.05)\n"
          "  --identity ID       PSK identity; the key from --psk-file (kipuka's\n"
          "                      coap.psk_file: IDENTITY LABEL HEXKEY) or --psk-key\n"
          "  --clients N         concurrent clients (8)\n"
          "  --threads T         loops, one coap_context each (1)\n"
          "  --seconds S         measured window (10); --warmup S before it (1)\n"
          "  --timeout S         a request not answered after S seconds fails (5)\n"
          "  --pid PID           server process to sample (repeatable)\n"
          "  --verbose           libcoap's debug log on stderr\n",
          stderr);
    exit(2);
}

static double arg_num(const char *s, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

static int arg_media(const char *s)
{
    return strcmp(s, "none") == 0 ? -1 : (int)arg_num(s, 0, 65535);
}

static void opts_parse(int argc, char **argv, struct cl_opts *o)
{
    static const struct option lo[] = {{"host", required_argument, NULL, 'H'},
                                       {"port", required_argument, NULL, 'p'},
                                       {"path", required_argument, NULL, 'P'},
                                       {"csr", required_argument, NULL, 'b'},
                                       {"method", required_argument, NULL, 'm'},
                                       {"content-format", required_argument, NULL, 'f'},
                                       {"accept", required_argument, NULL, 'a'},
                                       {"expect", required_argument, NULL, 'x'},
                                       {"identity", required_argument, NULL, 'u'},
                                       {"psk-file", required_argument, NULL, 'F'},
                                       {"psk-key", required_argument, NULL, 'k'},
                                       {"clients", required_argument, NULL, 'c'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"warmup", required_argument, NULL, 'w'},
                                       {"timeout", required_argument, NULL, 'T'},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"pid", required_argument, NULL, 'i'},
                                       {NULL, 0, NULL, 0}};
    const char *csr = NULL, *psk_file = NULL, *psk_key = NULL, *expect = NULL;
    int ch;

    if (argc < 2)
        usage();
    if (strcmp(argv[1], "enroll") == 0)
        o->mode = CL_ENROLL;
    else if (strcmp(argv[1], "get") == 0)
        o->mode = CL_GET;
    else
        usage();
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            o->port = (int)arg_num(optarg, 1, 65535);
            break;
        case 'P':
            o->path = optarg;
            break;
        case 'b':
            csr = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "post") == 0)
                o->method = COAP_REQUEST_CODE_POST;
            else if (strcmp(optarg, "put") == 0)
                o->method = COAP_REQUEST_CODE_PUT;
            else
                usage();
            break;
        case 'f':
            o->content_format = arg_media(optarg);
            break;
        case 'a':
            o->accept = arg_media(optarg);
            break;
        case 'x':
            expect = optarg;
            break;
        case 'u':
            if (strlen(optarg) == 0 || strlen(optarg) > CL_IDENTITY_MAX)
                die("--identity must be 1 to 128 bytes");
            snprintf(o->identity, sizeof(o->identity), "%s", optarg);
            break;
        case 'F':
            psk_file = optarg;
            break;
        case 'k':
            psk_key = optarg;
            break;
        case 'c':
            o->clients = (int)arg_num(optarg, 1, CL_MAX_CLIENTS);
            break;
        case 't':
            o->threads = (int)arg_num(optarg, 1, CL_MAX_THREADS);
            break;
        case 's':
            o->seconds = arg_num(optarg, 0.1, CL_MAX_SECONDS);
            break;
        case 'w':
            o->warmup = arg_num(optarg, 0, CL_MAX_SECONDS);
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'T':
            o->timeout_ns = (uint64_t)(arg_num(optarg, 0.1, CL_MAX_SECONDS) * (double)NS);
            break;
        case 'i':
            if (o->npids == CL_MAX_PIDS)
                usage();
            o->pids[o->npids++] = (pid_t)arg_num(optarg, 1, 4194304);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || o->port == 0 || o->identity[0] == '\0' ||
        (psk_file == NULL) == (psk_key == NULL) || (o->mode == CL_ENROLL) != (csr != NULL))
        usage();
    if (psk_file != NULL)
        psk_load_file(o, psk_file);
    else
        psk_set_hex(o, psk_key, strlen(psk_key));
    if (csr != NULL)
        body_load(o, csr);
    if (o->path == NULL)
        o->path = o->mode == CL_ENROLL ? "/est/sen" : "/est/crts";
    if (o->mode == CL_GET)
        o->method = COAP_REQUEST_CODE_GET;
    /* RFC 9148 5.5: 2.04 Changed answers a successful /sen POST, 2.05 Content a GET */
    expect_parse(o, expect != NULL ? expect : o->mode == CL_ENROLL ? "2.04" : "2.05");
    if (o->threads > o->clients)
        o->threads = o->clients;
}

int main(int argc, char **argv)
{
    struct cl_opts o = {.host = "127.0.0.1",
                        .method = COAP_REQUEST_CODE_POST,
                        .content_format = 286,
                        .accept = 281,
                        .clients = 8,
                        .threads = 1,
                        .seconds = 10,
                        .warmup = 1,
                        .timeout_ns = 5 * NS};
    struct cl_loop *loops;
    uint64_t t0;
    double cpu0, cpu1, self0, self1, mach0, mach1;
    long rss_after;

    opts_parse(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    coap_startup();
    coap_set_log_level(o.verbose ? LOG_DEBUG : LOG_ERR);
    coap_dtls_set_log_level(LOG_ERR);
    if (!coap_dtls_is_supported())
        die("libcoap has no DTLS support");

    loops = xcalloc((size_t)o.threads, sizeof(*loops));
    for (int i = 0; i < o.threads; i++)
        loop_init(&loops[i], &o,
                  (size_t)o.clients / (size_t)o.threads + (i < o.clients % o.threads));

    t0 = now_ns();
    t_warm = t0 + (uint64_t)(o.warmup * (double)NS);
    t_stop = t_warm + (uint64_t)(o.seconds * (double)NS);
    t_drain = t_stop + CL_DRAIN_SECONDS * NS;
    for (int i = 0; i < o.threads; i++)
        if (pthread_create(&loops[i].th, NULL, loop_run, &loops[i]) != 0)
            die("pthread_create");
    sleep_until(t_warm);
    cpu0 = proc_cpu_seconds(o.pids, o.npids);
    self0 = self_cpu_seconds();
    mach0 = machine_busy_seconds();
    sleep_until(t_stop);
    cpu1 = proc_cpu_seconds(o.pids, o.npids);
    self1 = self_cpu_seconds();
    mach1 = machine_busy_seconds();
    rss_after = proc_status_kb(o.pids, o.npids, "VmRSS");
    for (int i = 0; i < o.threads; i++)
        pthread_join(loops[i].th, NULL);

    /* merge */
    uint64_t ok = 0, ok_bytes = 0, reconnects = 0, handshakes = 0, requests = 0, nerr = 0;
    uint64_t errs[CL_E__MAX] = {0}, codes[256] = {0};
    size_t nlat = 0;
    const char *cipher = "?", *kx = "?";
    for (int i = 0; i < o.threads; i++) {
        struct cl_loop *l = &loops[i];
        ok += l->ok_window;
        ok_bytes += l->ok_bytes;
        reconnects += l->reconnects;
        handshakes += l->handshakes;
        requests += l->ok_total;
        nlat += l->nlat;
        for (int k = 0; k < CL_E__MAX; k++) {
            errs[k] += l->err_window[k];
            nerr += l->err_window[k];
            requests += l->err_total[k];
        }
        for (int k = 0; k < 256; k++)
            codes[k] += l->code_window[k];
        if (l->cipher[0] != '\0' && cipher[0] == '?') {
            cipher = l->cipher;
            kx = l->kx;
        }
    }
    uint64_t *all = xcalloc(nlat ? nlat : 1, sizeof(uint64_t));
    size_t k = 0;
    for (int i = 0; i < o.threads; i++) {
        memcpy(all + k, loops[i].lat, loops[i].nlat * sizeof(uint64_t));
        k += loops[i].nlat;
    }
    qsort(all, nlat, sizeof(uint64_t), cmp_u64);
    double srv_cpu = cpu1 - cpu0, self_cpu = self1 - self0;
    /* what else ran on the machine meanwhile (other processes, interrupts) */
    double other = mach1 - mach0 - srv_cpu - self_cpu;
    printf("mode=%s clients=%d threads=%d window_s=%.3f ok=%" PRIu64 " rps=%.1f p50_ms=%.2f "
           "p90_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%" PRIu64,
           o.mode == CL_ENROLL ? "enroll" : "get", o.clients, o.threads, o.seconds, ok,
           (double)ok / o.seconds, pct_ms(all, nlat, 0.50), pct_ms(all, nlat, 0.90),
           pct_ms(all, nlat, 0.99), pct_ms(all, nlat, 1.0), nerr);
    for (int e = 0; e < CL_E__MAX; e++)
        printf(" err_%s=%" PRIu64, cl_err_names[e], errs[e]);
    for (int c = 0; c < 256; c++)
        if (codes[c] != 0)
            printf(" code_%d.%02d=%" PRIu64, c >> 5, c & 0x1f, codes[c]);
    /* requests and handshakes: over the whole run, warm-up and drain included */
    printf(" resp_bytes=%.0f requests=%" PRIu64 " handshakes=%" PRIu64 " reconnects=%" PRIu64
           " cipher=%s kx=%s srv_cpu_s=%.2f srv_cpu_pct=%.1f srv_cpu_us_per_req=%.1f "
           "lg_cpu_pct=%.1f other_cpu_pct=%.1f srv_rss_kb=%ld srv_hwm_kb=%ld\n",
           ok ? (double)ok_bytes / (double)ok : 0.0, requests, handshakes, reconnects, cipher, kx,
           srv_cpu, 100.0 * srv_cpu / o.seconds, ok ? srv_cpu * 1e6 / (double)ok : 0.0,
           100.0 * self_cpu / o.seconds, 100.0 * (other > 0 ? other : 0) / o.seconds, rss_after,
           proc_status_kb(o.pids, o.npids, "VmHWM"));
    free(all);
    for (int i = 0; i < o.threads; i++) {
        coap_delete_optlist(loops[i].opts);
        coap_free_context(loops[i].ctx);
        free(loops[i].clients);
        free(loops[i].lat);
    }
    free(loops);
    free(o.body);
    OPENSSL_cleanse(o.psk, sizeof(o.psk));
    coap_cleanup();
    return 0;
}
