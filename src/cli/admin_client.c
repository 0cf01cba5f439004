#include "cli/admin_client.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"

#define REPLY_MAX (16 * 1024 * 1024)

/* "https://host:port/path" into parts (host may be [v6]). */
static int url_split(const char *url, char **host, char **port, const char **path)
{
    const char *h, *end, *colon;

    if (strncmp(url, "https://", 8) != 0)
        return -1;
    h = url + 8;
    *path = h + strcspn(h, "/");
    if (**path == '\0')
        *path = "/";
    end = h + strcspn(h, "/");
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (close == NULL)
            return -1;
        *host = xstrndup(h + 1, (size_t)(close - h - 1));
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        *host = xstrndup(h, (size_t)((colon != NULL ? colon : end) - h));
    }
    *port = colon != NULL ? xstrndup(colon + 1, (size_t)(end - colon - 1)) : xstrdup("443");
    return 0;
}

static void print_tls_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "kipuka: %s: %s\n", what, e != 0 ? buf : "connection failed");
    ERR_clear_error();
}

/* Status line and body of a complete HTTP/1.1 answer (Content-Length or
 * read to the end, as the request said Connection: close). */
static enum kp_err reply_parse(char *raw, size_t len, struct admin_reply *out)
{
    char *head_end = strstr(raw, "\r\n\r\n"), *body;
    size_t body_len;

    if (strncmp(raw, "HTTP/1.", 7) != 0 || head_end == NULL || len < 12)
        return KP_ERR_IO;
    out->status = atoi(raw + 9);
    body = head_end + 4;
    body_len = len - (size_t)(body - raw);
    out->body = xmalloc(body_len + 1);
    memcpy(out->body, body, body_len);
    out->body[body_len] = '\0';
    out->body_len = body_len;
    return out->status >= 100 ? KP_OK : KP_ERR_IO;
}

enum kp_err admin_client_call(const char *method, const char *url, const char *cafile,
                              const char *token, const char *json, struct admin_reply *out)
{
    enum kp_err rc = KP_ERR_IO;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *bio = NULL;
    SSL *ssl = NULL;
    char *host = NULL, *port = NULL, *target, *request = NULL, *raw = NULL;
    const char *path;
    size_t len = 0, cap = 0;

    memset(out, 0, sizeof(*out));
    if (url_split(url, &host, &port, &path) != 0) {
        fprintf(stderr, "kipuka: --server must be https://HOST:PORT, not %s\n", url);
        goto out;
    }
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
        print_tls_error(cafile);
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    bio = BIO_new_ssl_connect(ctx);
    target = xasprintf("%s:%s", host, port);
    if (bio != NULL)
        BIO_set_conn_hostname(bio, target);
    free(target);
    if (bio == NULL || BIO_get_ssl(bio, &ssl) != 1 || ssl == NULL) {
        print_tls_error("TLS");
        goto out;
    }
    SSL_set_tlsext_host_name(ssl, host);
    if (SSL_set1_host(ssl, host) != 1 || BIO_do_handshake(bio) != 1) {
        print_tls_error(url);
        goto out;
    }
    request =
        xasprintf("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                  "Accept: application/json\r\n%s%s%s"
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                  method, path, host, token ? "Authorization: Bearer " : "", token ? token : "",
                  token ? "\r\n" : "", json ? strlen(json) : 0, json ? json : "");
    if (BIO_write(bio, request, (int)strlen(request)) != (int)strlen(request)) {
        print_tls_error("write");
        goto out;
    }
    for (;;) {
        int n;
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            if (cap > REPLY_MAX) {
                fprintf(stderr, "kipuka: answer larger than %d bytes\n", REPLY_MAX);
                goto out;
            }
            raw = xrealloc(raw, cap);
        }
        n = BIO_read(bio, raw + len, (int)(cap - len - 1));
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    ERR_clear_error(); /* a peer that closes without close_notify */
    raw = xrealloc(raw, len + 1);
    raw[len] = '\0';
    rc = reply_parse(raw, len, out);
    if (rc != KP_OK)
        fprintf(stderr, "kipuka: no HTTP answer from %s\n", url);
out:
    if (request != NULL)
        OPENSSL_cleanse(request, strlen(request)); /* it holds the token */
    free(request);
    free(raw);
    BIO_free_all(bio);
    SSL_CTX_free(ctx);
    free(host);
    free(port);
    return rc;
}
