/* slowclient: hold many slow connections open against a TLS server and
 * report when the server closes them. For the slow-client and connection-cap
 * integration tests.
 *
 *   slowclient PORT COUNT MODE [SECONDS]
 *
 * MODE: idle     TCP connect, then send nothing;
 *       hello    send a TLS ClientHello one byte a second;
 *       trickle  complete a TLS handshake, then send an HTTP request header
 *                one byte a second;
 *       tls      complete a TLS handshake, then send nothing.
 * Prints "ready OPEN EPOCH_MS" once all COUNT connections are open (OPEN may
 * be lower when the server refused some), then waits up to SECONDS (default
 * 60) for the server to close them and prints
 *   "closed N/OPEN first_ms=EPOCH_MS min_after_open_ms=MS max_after_open_ms=MS"
 * (the first close, and the shortest and longest time a connection stayed open)
 * Exit status 0 when the server closed every connection, 1 otherwise, 2 on
 * a usage or local error. Connects to 127.0.0.1 and does not verify the
 * server certificate: only timing and closing matter here. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum mode { M_IDLE, M_HELLO, M_TRICKLE, M_TLS };

struct conn {
    int fd;
    SSL *ssl;
    long long opened_ms;
    long long closed_ms; /* 0 while open */
    size_t sent;         /* bytes of the slow payload sent */
};

static const char http_head[] = "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\n"
                                "User-Agent: slowclient\r\nX-Padding: "
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Enough descriptors for COUNT connections. */
static void raise_nofile(size_t count)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < count + 64 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int tcp_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* The bytes of one ClientHello, taken from a client talking to a memory BIO. */
static unsigned char *client_hello(SSL_CTX *ctx, size_t *len)
{
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    unsigned char *out = NULL;
    char *p;
    long n;

    if (ssl == NULL || rb == NULL || wb == NULL)
        return NULL;
    SSL_set_bio(ssl, rb, wb);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_connect(ssl); /* wants to read the ServerHello: stops after the hello */
    n = BIO_get_mem_data(wb, &p);
    if (n > 0) {
        out = malloc((size_t)n);
        if (out != NULL) {
            memcpy(out, p, (size_t)n);
            *len = (size_t)n;
        }
    }
    SSL_free(ssl);
    ERR_clear_error();
    return out;
}

/* Whether the server has closed c: EOF or an error on read. Data is dropped. */
static bool peer_closed(struct conn *c)
{
    char buf[4096];
    ssize_t n;

    for (;;) {
        n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return true;
        return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

int main(int argc, char **argv)
{
    int port, seconds = 60;
    size_t count, open = 0, closed = 0, hello_len = 0;
    enum mode mode;
    struct conn *cs;
    struct pollfd *pfd;
    SSL_CTX *ctx;
    unsigned char *hello = NULL;
    long long start, deadline, next_tick, first_close = 0, max_after = 0, min_after = 0;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: slowclient PORT COUNT idle|hello|trickle|tls [SECONDS]\n");
        return 2;
    }
    port = (int)strtol(argv[1], NULL, 10);
    count = (size_t)strtoul(argv[2], NULL, 10);
    if (strcmp(argv[3], "idle") == 0)
        mode = M_IDLE;
    else if (strcmp(argv[3], "hello") == 0)
        mode = M_HELLO;
    else if (strcmp(argv[3], "trickle") == 0)
        mode = M_TRICKLE;
    else if (strcmp(argv[3], "tls") == 0)
        mode = M_TLS;
    else {
        fprintf(stderr, "slowclient: unknown mode %s\n", argv[3]);
        return 2;
    }
    if (argc == 5)
        seconds = (int)strtol(argv[4], NULL, 10);
    if (port <= 0 || port > 65535 || count == 0 || count > 100000 || seconds <= 0) {
        fprintf(stderr, "slowclient: bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(count);

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return 2;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (mode == M_HELLO) {
        hello = client_hello(ctx, &hello_len);
        if (hello == NULL) {
            fprintf(stderr, "slowclient: cannot build a ClientHello\n");
            return 2;
        }
    }
    cs = calloc(count, sizeof(*cs));
    pfd = calloc(count, sizeof(*pfd));
    if (cs == NULL || pfd == NULL)
        return 2;

    for (size_t i = 0; i < count; i++) {
        struct conn *c = &cs[open];

        c->fd = tcp_connect(port);
        if (c->fd < 0) {
            fprintf(stderr, "slowclient: connect #%zu: %s\n", i, strerror(errno));
            continue;
        }
        c->opened_ms = now_ms();
        if (mode == M_TRICKLE || mode == M_TLS) {
            c->ssl = SSL_new(ctx);
            if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
                SSL_set_tlsext_host_name(c->ssl, "localhost") != 1 || SSL_connect(c->ssl) != 1) {
                /* refused at the handshake (over the server's cap): closed already */
                ERR_clear_error();
                SSL_free(c->ssl);
                c->ssl = NULL;
                close(c->fd);
                continue;
            }
        }
        open++;
    }
    start = now_ms();
    printf("ready %zu %lld\n", open, start);
    fflush(stdout);

    deadline = start + (long long)seconds * 1000;
    next_tick = start;
    while (closed < open && now_ms() < deadline) {
        long long t = now_ms();
        int wait;

        /* One more byte of the slow payload on every open connection. */
        if (t >= next_tick && mode != M_IDLE && mode != M_TLS) {
            for (size_t i = 0; i < open; i++) {
                struct conn *c = &cs[i];
                if (c->closed_ms != 0)
                    continue;
                if (mode == M_HELLO && c->sent < hello_len) {
                    if (send(c->fd, hello + c->sent, 1, MSG_DONTWAIT) == 1)
                        c->sent++;
                } else if (mode == M_TRICKLE && c->sent < sizeof(http_head) - 1) {
                    if (SSL_write(c->ssl, http_head + c->sent, 1) == 1)
                        c->sent++;
                    ERR_clear_error();
                }
            }
            next_tick = t + 1000;
        }
        for (size_t i = 0; i < open; i++) {
            pfd[i].fd = cs[i].closed_ms != 0 ? -1 : cs[i].fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        wait = (int)((mode == M_IDLE || mode == M_TLS ? deadline : next_tick) - now_ms());
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        if (poll(pfd, open, wait) < 0 && errno != EINTR)
            break;
        for (size_t i = 0; i < open; i++) {
            struct conn *c = &cs[i];
            if (c->closed_ms != 0 || pfd[i].revents == 0 || !peer_closed(c))
                continue;
            c->closed_ms = now_ms();
            if (first_close == 0)
                first_close = c->closed_ms;
            if (c->closed_ms - c->opened_ms > max_after)
                max_after = c->closed_ms - c->opened_ms;
            if (min_after == 0 || c->closed_ms - c->opened_ms < min_after)
                min_after = c->closed_ms - c->opened_ms;
            closed++;
        }
    }
    printf("closed %zu/%zu first_ms=%lld min_after_open_ms=%lld max_after_open_ms=%lld\n", closed,
           open, first_close, min_after, max_after);
    for (size_t i = 0; i < open; i++) {
        SSL_free(cs[i].ssl);
        close(cs[i].fd);
    }
    free(cs);
    free(pfd);
    free(hello);
    SSL_CTX_free(ctx);
    return closed == open ? 0 : 1;
}
