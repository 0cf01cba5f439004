/* OpenSSL server context for the HTTPS listener, and TLS channel bindings
 * (RFC 5929 tls-unique, RFC 9266 tls-exporter). */
#include "http/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/xalloc.h"

/* TLS 1.2 suites: forward-secret ECDHE with an AEAD only (no RSA key
 * exchange, no CBC). TLS 1.3 keeps OpenSSL's defaults, all AEAD. */
#define TLS12_AEAD                                                                                 \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* tls.allow_cbc: ECDHE with AES-CBC after them, for clients without AEAD
 * suites; still forward secret, never RSA key exchange, 3DES or RC4. */
#define TLS12_CBC                                                                                  \
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:"                 \
    "ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"                         \
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
static const char tls12_ciphers[] = TLS12_AEAD;
static const char tls12_ciphers_cbc[] = TLS12_AEAD ":" TLS12_CBC;

static const char tls_groups[] = "X25519:P-256:P-384";

/* Session cache namespace: TLS 1.2 resumption fails without one when client
 * certificates are requested (SSL_R_SESSION_ID_CONTEXT_UNINITIALIZED). */
static const unsigned char tls_sid_ctx[] = "kipuka-est";

/* RFC 9266 2: label and length of the tls-exporter channel binding. */
static const char tls_exporter_label[] = "EXPORTER-Channel-Binding";
#define TLS_EXPORTER_LEN 32

/* Describe a failure with the first (root cause) error of OpenSSL's queue,
 * then clear the queue. */
static char *tls_error(const char *what, const char *path)
{
    unsigned long e = ERR_peek_error();
    char buf[256] = "unknown error";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return xasprintf("%s %s: %s", what, path ? path : "", buf);
}

/* "1.2"/"1.3" to the protocol constant, 0 when anything else. */
static int tls_version_parse(const char *s)
{
    if (s != NULL && strcmp(s, "1.2") == 0)
        return TLS1_2_VERSION;
    if (s != NULL && strcmp(s, "1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

/* A server has no terminal: an encrypted key fails instead of prompting. */
static int tls_no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* Accept every client certificate in the handshake: whether one may do
 * anything is decided per layer, against that layer's own anchors. */
static int tls_verify_accept(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

/* Trust anchors of one kind of client certificate (tls.client_ca or
 * admin.client_ca), added to the handshake's and to the names advertised in
 * CertificateRequest. The handshake accepts a chain to either; each layer
 * then verifies against its own anchors (docs/authorization.md). */
static enum kp_err tls_client_ca_add(SSL_CTX *ctx, const char *key, const char *path,
                                     STACK_OF(X509_NAME) * names, char **errmsg)
{
    STACK_OF(X509_NAME) *own = NULL;
    enum kp_err rc = KP_ERR_CONFIG;
    char what[64];

    snprintf(what, sizeof(what), "%s", key);
    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
        *errmsg = tls_error(what, path);
        goto out;
    }
    /* the file's own names first: the merge below skips those already there */
    own = SSL_load_client_CA_file(path);
    if (own == NULL || sk_X509_NAME_num(own) == 0 ||
        SSL_add_file_cert_subjects_to_stack(names, path) != 1) {
        snprintf(what, sizeof(what), "%s (no certificates)", key);
        *errmsg = tls_error(what, path);
        goto out;
    }
    rc = KP_OK;
out:
    sk_X509_NAME_pop_free(own, X509_NAME_free);
    return rc;
}

/* Ask for a client certificate when any anchors are configured. */
static enum kp_err tls_client_ca_load(SSL_CTX *ctx, const struct kp_config *cfg, char **errmsg)
{
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    enum kp_err rc = KP_ERR_INTERNAL;

    if (names == NULL)
        goto out;
    if (cfg->tls_client_ca != NULL && cfg->tls_client_ca[0] != '\0') {
        rc = tls_client_ca_add(ctx, "tls.client_ca", cfg->tls_client_ca, names, errmsg);
        if (rc != KP_OK)
            goto out;
    }
    if (cfg->admin_client_ca != NULL && cfg->admin_client_ca[0] != '\0') {
        rc = tls_client_ca_add(ctx, "admin.client_ca", cfg->admin_client_ca, names, errmsg);
        if (rc != KP_OK)
            goto out;
    }
    rc = KP_OK;
    if (sk_X509_NAME_num(names) == 0)
        goto out;
    SSL_CTX_set_client_CA_list(ctx, names);
    names = NULL; /* steal */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_accept);
out:
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    return rc;
}

/* The chain sent after tls.cert, built once here. OpenSSL otherwise builds
 * it on every handshake when tls.cert holds no intermediates ("auto chain":
 * a chain verification with a signature check per connection). tls.cert's
 * own intermediates are sent as written; when it has none, the
 * intermediates the trust store links it to, without the self-signed root:
 * a client must hold the root already to trust it (RFC 8446 4.4.2). */
static enum kp_err tls_chain_fix(SSL_CTX *ctx, char **errmsg)
{
    STACK_OF(X509) *chain = NULL;
    X509_STORE_CTX *sctx = NULL;
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    enum kp_err rc = KP_ERR_INTERNAL;
    int i, n;

    if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1 || leaf == NULL)
        goto out;
    if (sk_X509_num(chain) <= 0) { /* -1: none at all */
        sctx = X509_STORE_CTX_new();
        if (sctx == NULL || X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(ctx), leaf, NULL) != 1)
            goto out;
        (void)X509_verify_cert(sctx); /* a partial chain is sent as is, as OpenSSL would */
        ERR_clear_error();
        chain = X509_STORE_CTX_get0_chain(sctx);
        n = sk_X509_num(chain);
        if (n > 1 && X509_self_signed(sk_X509_value(chain, n - 1), 0) == 1)
            n--;
        for (i = 1; i < n; i++)
            if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
                goto out;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    rc = KP_OK;
out:
    if (rc != KP_OK)
        *errmsg = tls_error("tls.cert chain", NULL);
    X509_STORE_CTX_free(sctx);
    return rc;
}

enum kp_err tls_ctx_new(const struct kp_config *cfg, SSL_CTX **out, char **errmsg)
{
    SSL_CTX *ctx = NULL;
    enum kp_err rc = KP_ERR_CONFIG;
    int min = tls_version_parse(cfg->tls_min_version);
    int max = tls_version_parse(cfg->tls_max_version);

    if (min == 0 || max == 0 || min > max) {
        *errmsg = xasprintf("tls.min_version/max_version: \"%s\"..\"%s\" is not a range of "
                            "\"1.2\" and \"1.3\"",
                            cfg->tls_min_version ? cfg->tls_min_version : "",
                            cfg->tls_max_version ? cfg->tls_max_version : "");
        goto out;
    }
    if (cfg->tls_cert == NULL || cfg->tls_cert[0] == '\0' || cfg->tls_key == NULL ||
        cfg->tls_key[0] == '\0') {
        *errmsg = xasprintf("tls.cert and tls.key are required");
        goto out;
    }

    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        *errmsg = tls_error("SSL_CTX_new", NULL);
        rc = KP_ERR_INTERNAL;
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max) != 1) {
        *errmsg = tls_error("tls protocol versions", NULL);
        goto out;
    }
    if (SSL_CTX_set_cipher_list(ctx, cfg->tls_allow_cbc ? tls12_ciphers_cbc : tls12_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, tls_groups) != 1) {
        *errmsg = tls_error("tls ciphers", NULL);
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
    /* No TLS 1.3 tickets either; TLS 1.2 still resumes from the server cache. */
    SSL_CTX_set_num_tickets(ctx, 0);
    /* An idle connection gives back its record buffers (about 16 KB of
     * its 32); they are allocated again when the next record comes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_set_session_id_context(ctx, tls_sid_ctx, sizeof(tls_sid_ctx) - 1) != 1) {
        *errmsg = tls_error("SSL_CTX_set_session_id_context", NULL);
        rc = KP_ERR_INTERNAL;
        goto out;
    }
    SSL_CTX_set_default_passwd_cb(ctx, tls_no_password);

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        *errmsg = tls_error("tls.cert", cfg->tls_cert);
        goto out;
    }
    if (fs_secret_check("tls.key", cfg->tls_key) != KP_OK) {
        *errmsg = xasprintf("tls.key %s: refused (see the log above)", cfg->tls_key);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        *errmsg = tls_error("tls.key", cfg->tls_key);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        *errmsg = xasprintf("tls.key %s does not match tls.cert %s", cfg->tls_key, cfg->tls_cert);
        goto out;
    }
    rc = tls_client_ca_load(ctx, cfg, errmsg);
    if (rc != KP_OK)
        goto out;
    rc = tls_chain_fix(ctx, errmsg);
    if (rc != KP_OK)
        goto out;

    *out = ctx;
    ctx = NULL; /* steal */
    rc = KP_OK;
out:
    SSL_CTX_free(ctx);
    return rc;
}

enum kp_err tls_channel_binding(SSL *ssl, unsigned char out[TLS_CHANNEL_BINDING_MAX], size_t *len)
{
    size_t n;

    if (!SSL_is_init_finished(ssl))
        return KP_ERR_INTERNAL;
    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        if (SSL_export_keying_material(ssl, out, TLS_EXPORTER_LEN, tls_exporter_label,
                                       sizeof(tls_exporter_label) - 1, NULL, 0, 0) != 1) {
            ERR_clear_error();
            return KP_ERR_INTERNAL;
        }
        *len = TLS_EXPORTER_LEN;
        return KP_OK;
    }
    /* RFC 5929 3.1: the first Finished of the latest handshake. The client
     * sends it first in a full handshake, the server in an abbreviated one. */
    if (SSL_session_reused(ssl))
        n = SSL_get_finished(ssl, out, TLS_CHANNEL_BINDING_MAX);
    else
        n = SSL_get_peer_finished(ssl, out, TLS_CHANNEL_BINDING_MAX);
    if (n == 0 || n > TLS_CHANNEL_BINDING_MAX)
        return KP_ERR_INTERNAL;
    *len = n;
    return KP_OK;
}
