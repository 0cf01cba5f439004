/* kipuka init: a ready-to-serve deployment directory. Creates (or imports)
 * the CA, issues the TLS server certificate from it, writes the config, the
 * OTP hash key and an empty database. Never overwrites an existing file. */
#include <arpa/inet.h>
#include <getopt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/otp.h"
#include "ca/ca.h"
#include "ca/profile.h"
#include "cli/cli.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "pki/keygen.h"

#define INIT_MAX_NAMES 32
#define INIT_ROOT_DAYS 3650

static const char init_usage[] =
    "usage: kipuka init [--dir DIR] [--ca-key TYPE] [--ca-subject DN] [--hostname NAME]...\n"
    "                   [--label NAME]... [--port N]\n"
    "       kipuka init --ca-cert FILE --ca-key KEYFILE [--dir DIR] ...\n"
    "\n"
    "Creates DIR (default ./var) holding ca/, tls/, otp.key, kipuka.toml, kipuka.db.\n"
    "  --ca-key TYPE      new CA key: ec:P-256 (default), ec:P-384, rsa:2048, rsa:3072, rsa:4096\n"
    "  --ca-subject DN    new CA subject, e.g. \"/CN=Example Device CA/O=Example\"\n"
    "  --ca-cert FILE     import an existing issuing CA instead (PEM: the CA first, then\n"
    "                     its chain up to the root); --ca-key is then its PEM key file\n"
    "  --hostname NAME    DNS name or IP for the TLS certificate (repeatable;\n"
    "                     default localhost and 127.0.0.1)\n"
    "  --label NAME       an EST label besides the default one (repeatable)\n"
    "  --port N           port to listen on (default 9443; 0 picks a free one)\n"
    "Key files are written with mode 0600; existing files are never overwritten.\n";

struct init_opts {
    const char *dir;
    const char *ca_key;
    const char *ca_cert;
    const char *ca_subject;
    const char *hostnames[INIT_MAX_NAMES];
    size_t nhostnames;
    const char *labels[INIT_MAX_NAMES];
    size_t nlabels;
    long port;
};

static enum kp_err init_write_pem(const char *path, int is_key, EVP_PKEY *key, X509 *const *certs,
                                  size_t ncerts)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    enum kp_err rc;

    if (is_key)
        PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    for (size_t i = 0; i < ncerts; i++)
        PEM_write_bio_X509(bio, certs[i]);
    len = BIO_get_mem_data(bio, &data);
    rc = fs_write_new(path, is_key ? 0600 : 0644, data, (size_t)len);
    BIO_free(bio);
    if (rc != KP_OK)
        fprintf(stderr, "kipuka: cannot write %s%s\n", path,
                rc == KP_ERR_EXISTS ? ": it exists (never overwritten)" : "");
    return rc;
}

/* "/CN=x/O=y" (openssl req style) or "CN=x,O=y" into an X509_NAME. */
static X509_NAME *init_parse_dn(const char *dn)
{
    X509_NAME *name = X509_NAME_new();
    char *copy = xstrdup(dn), *p = copy;
    char sep = dn[0] == '/' ? '/' : ',';
    int ok = 1;

    if (*p == '/')
        p++;
    while (ok && *p) {
        char *end = strchr(p, sep), *eq;
        if (end)
            *end = '\0';
        while (*p == ' ')
            p++;
        eq = strchr(p, '=');
        ok = eq != NULL && eq != p && eq[1] != '\0';
        if (ok) {
            *eq = '\0';
            ok = X509_NAME_add_entry_by_txt(name, p, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1,
                                            0) == 1;
        }
        p = end ? end + 1 : p + strlen(p);
    }
    free(copy);
    if (!ok || X509_NAME_entry_count(name) == 0) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

static enum kp_err init_tls_cert(const struct init_opts *o, struct ca *ca, const char *tls_dir)
{
    enum kp_err rc;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    X509_NAME *subject = X509_NAME_new();
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    struct ca_template t = {0};
    char *path = NULL;
    X509 *chain[8];
    size_t nchain = 0;
    time_t now = time(NULL);

    rc = keygen_generate(KEY_EC_P256, &key);
    if (rc != KP_OK)
        goto out;
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)o->hostnames[0],
                               -1, -1, 0);
    for (size_t i = 0; i < o->nhostnames; i++) {
        unsigned char ip[16];
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        int iplen = inet_pton(AF_INET, o->hostnames[i], ip) == 1    ? 4
                    : inet_pton(AF_INET6, o->hostnames[i], ip) == 1 ? 16
                                                                    : 0;
        if (iplen > 0) {
            ASN1_OCTET_STRING_set(os, ip, iplen);
            GENERAL_NAME_set0_value(g, GEN_IPADD, os);
        } else {
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            ASN1_OCTET_STRING_free(os);
            ASN1_STRING_set(s, o->hostnames[i], -1);
            GENERAL_NAME_set0_value(g, GEN_DNS, s);
        }
        sk_GENERAL_NAME_push(sans, g);
    }
    t.subject = subject;
    t.sans = sans;
    t.pubkey = key;
    t.not_before = now - 300;
    t.not_after = t.not_before + (time_t)profile_br_max_days(now) * 86400 - 1;
    t.ekus = 1u << EKU_SERVER_AUTH;
    rc = ca_serial_random(t.serial);
    if (rc == KP_OK)
        rc = ca_issue(ca, &t, &cert);
    if (rc != KP_OK)
        goto out;
    /* leaf, then every CA up to (not including) a self-signed root */
    chain[nchain++] = cert;
    for (int i = 0; i < sk_X509_num(ca->chain) && nchain < 8; i++) {
        X509 *x = sk_X509_value(ca->chain, i);
        if (X509_check_issued(x, x) == X509_V_OK)
            break;
        chain[nchain++] = x;
    }
    path = fs_path_join(tls_dir, "server.key");
    rc = init_write_pem(path, 1, key, NULL, 0);
    free(path);
    if (rc != KP_OK)
        goto out;
    path = fs_path_join(tls_dir, "server.pem");
    rc = init_write_pem(path, 0, NULL, chain, nchain);
    free(path);
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_NAME_free(subject);
    GENERAL_NAMES_free(sans);
    return rc;
}

/* New CA (key + self-signed root) or an imported one, into DIR/ca/. */
static enum kp_err init_ca(const struct init_opts *o, const char *ca_dir, char **chain_name)
{
    enum kp_err rc = KP_ERR_CONFIG;
    EVP_PKEY *key = NULL;
    X509 *root = NULL;
    X509_NAME *subject = NULL;
    STACK_OF(X509) *imported = NULL;
    char *path = NULL;
    BIO *bio = NULL;

    *chain_name = NULL;
    if (o->ca_cert != NULL) {
        X509 *x;
        bio = BIO_new_file(o->ca_key, "r");
        key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        bio = BIO_new_file(o->ca_cert, "r");
        imported = sk_X509_new_null();
        while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
            sk_X509_push(imported, x);
        BIO_free(bio);
        ERR_clear_error();
        if (key == NULL || sk_X509_num(imported) == 0) {
            fprintf(stderr, "kipuka: cannot read --ca-cert %s / --ca-key %s\n", o->ca_cert,
                    o->ca_key);
            goto out;
        }
        if (X509_check_private_key(sk_X509_value(imported, 0), key) != 1 ||
            X509_check_ca(sk_X509_value(imported, 0)) < 1) {
            fprintf(stderr, "kipuka: %s is not a CA certificate matching %s\n", o->ca_cert,
                    o->ca_key);
            goto out;
        }
        root = sk_X509_shift(imported);
    } else {
        int type = config_key_type_parse(o->ca_key);
        if (type < 0) {
            fprintf(stderr, "kipuka: unknown --ca-key type \"%s\"\n", o->ca_key);
            goto out;
        }
        subject = init_parse_dn(o->ca_subject);
        if (subject == NULL) {
            fprintf(stderr, "kipuka: cannot parse --ca-subject \"%s\"\n", o->ca_subject);
            goto out;
        }
        rc = keygen_generate((enum key_type)type, &key);
        if (rc == KP_OK)
            rc = ca_create_root(key, subject, INIT_ROOT_DAYS, &root);
        if (rc != KP_OK)
            goto out;
    }
    path = fs_path_join(ca_dir, "ca.key");
    rc = init_write_pem(path, 1, key, NULL, 0);
    free(path);
    if (rc != KP_OK)
        goto out;
    path = fs_path_join(ca_dir, "ca.pem");
    rc = init_write_pem(path, 0, NULL, &root, 1);
    free(path);
    if (rc == KP_OK && imported != NULL && sk_X509_num(imported) > 0) {
        X509 *certs[16];
        size_t n = 0;
        for (int i = 0; i < sk_X509_num(imported) && n < 16; i++)
            certs[n++] = sk_X509_value(imported, i);
        path = fs_path_join(ca_dir, "chain.pem");
        rc = init_write_pem(path, 0, NULL, certs, n);
        free(path);
        *chain_name = xstrdup("ca/chain.pem");
    }
out:
    sk_X509_pop_free(imported, X509_free);
    X509_NAME_free(subject);
    X509_free(root);
    EVP_PKEY_free(key);
    return rc;
}

static const char config_head[] =
    "# kipuka configuration (written by `kipuka init`; every key is described in\n"
    "# kipuka.toml.example). Relative paths are relative to this file.\n"
    "\n"
    "[server]\n"
    "# 127.0.0.1 keeps the demo private; use \"0.0.0.0\" to serve the network.\n"
    "listen = \"127.0.0.1\"\n"
    "port = %ld\n"
    "\n"
    "[tls]\n"
    "cert = \"tls/server.pem\"\n"
    "key = \"tls/server.key\"\n"
    "# Trust anchors for client certificates (mTLS enrollment and re-enrollment).\n"
    "client_ca = \"ca/ca.pem\"\n"
    "min_version = \"1.2\"\n"
    "max_version = \"1.3\"\n"
    "\n"
    "[est]\n"
    "base_path = \"/.well-known/est\"\n"
    "retry_after = 30\n"
    "\n"
    "[store]\n"
    "url = \"sqlite:kipuka.db\"\n"
    "\n"
    "[otp]\n"
    "key_file = \"otp.key\"\n"
    "default_ttl = \"24h\"\n"
    "default_uses = 1\n"
    "\n"
    "[log]\n"
    "level = \"info\"\n"
    "format = \"text\"\n"
    "\n"
    "[coap]\n"
    "# EST-coaps (RFC 9148) over DTLS 1.2 on UDP, with the [tls] certificate.\n"
    "enabled = true\n"
    "port = %ld\n";

/* The default label also takes DTLS PSKs, once coap.psk_file lists some. */
static char *init_label_section(const char *name, const char *chain, bool psk)
{
    return xasprintf("\n"
                     "[label.%s]\n"
                     "ca_cert = \"ca/ca.pem\"\n"
                     "ca_chain = \"%s\"\n"
                     "ca_key = \"ca/ca.key\"\n"
                     "key_types = \"ec:P-256, ec:P-384, rsa:2048, rsa:3072, rsa:4096\"\n"
                     "max_validity_days = 398\n"
                     "eku = \"clientAuth\"\n"
                     "allow_otp = true\n"
                     "otp_subject = \"entity\"\n"
                     "allow_mtls = true\n"
                     "%s"
                     "channel_binding = \"optional\"\n"
                     "mtls_subject_match = true\n"
                     "reenroll_allow_change = false\n",
                     name, chain ? chain : "",
                     psk ? "# DTLS pre-shared keys of coap.psk_file (docs/coap.md)\n"
                           "allow_psk = true\n"
                         : "");
}

/* A bearer token for the admin API: written to DIR/admin.token (0600) and
 * shown once; the config keeps only its SHA-256. */
static enum kp_err init_admin_token(const char *dir, char hash_hex[65])
{
    unsigned char raw[32], md[32];
    char token[65];
    char *path = fs_path_join(dir, "admin.token");
    enum kp_err rc = KP_ERR_INTERNAL;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        goto out;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    if (EVP_Digest(token, 64, md, NULL, EVP_sha256(), NULL) != 1)
        goto out;
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(hash_hex + 2 * i, 3, "%02x", md[i]);
    token[64] = '\n';
    rc = fs_write_new(path, 0600, token, 65);
    if (rc != KP_OK) {
        fprintf(stderr, "kipuka: cannot write %s\n", path);
        goto out;
    }
    token[64] = '\0';
    fprintf(stderr, "kipuka: admin API token (shown once, kept in %s): %s\n", path, token);
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(token, sizeof(token));
    free(path);
    return rc;
}

static enum kp_err init_config(const struct init_opts *o, const char *chain, const char *path)
{
    char hash[65];
    char *text, *admin;

    if (init_admin_token(o->dir, hash) != KP_OK)
        return KP_ERR_IO;
    /* --port 0 (tests) picks a free UDP port too */
    admin = xasprintf(config_head, o->port, o->port == 0 ? 0L : 5684L);
    text = xasprintf("%s\n[admin]\ntoken_sha256 = \"%s\"\n", admin, hash);
    free(admin);
    enum kp_err rc;

    for (size_t i = 0; i <= o->nlabels; i++) {
        char *section = init_label_section(i == 0 ? "default" : o->labels[i - 1], chain, i == 0);
        char *joined = xasprintf("%s%s", text, section);
        free(text);
        free(section);
        text = joined;
    }
    rc = fs_write_new(path, 0644, text, strlen(text));
    if (rc != KP_OK)
        fprintf(stderr, "kipuka: cannot write %s\n", path);
    free(text);
    return rc;
}

static int init_parse(int argc, char **argv, struct init_opts *o)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},      {"ca-key", required_argument, NULL, 'k'},
        {"ca-cert", required_argument, NULL, 'C'},  {"ca-subject", required_argument, NULL, 's'},
        {"hostname", required_argument, NULL, 'H'}, {"label", required_argument, NULL, 'l'},
        {"port", required_argument, NULL, 'p'},     {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 'k':
            o->ca_key = optarg;
            break;
        case 'C':
            o->ca_cert = optarg;
            break;
        case 's':
            o->ca_subject = optarg;
            break;
        case 'H':
            if (o->nhostnames == INIT_MAX_NAMES)
                return 2;
            o->hostnames[o->nhostnames++] = optarg;
            break;
        case 'l':
            if (o->nlabels == INIT_MAX_NAMES)
                return 2;
            o->labels[o->nlabels++] = optarg;
            break;
        case 'p':
            o->port = strtol(optarg, NULL, 10);
            break;
        case 'c':
            break; /* init writes the config; accepted for symmetry */
        case 'h':
            fputs(init_usage, stdout);
            return 0;
        default:
            fputs(init_usage, stderr);
            return 2;
        }
    }
    if (o->ca_cert != NULL && o->ca_key == NULL) {
        fprintf(stderr, "kipuka: --ca-cert needs --ca-key KEYFILE\n");
        return 2;
    }
    if (o->port < 0 || o->port > 65535) {
        fprintf(stderr, "kipuka: --port must be 0..65535\n");
        return 2;
    }
    if (o->nhostnames == 0) {
        o->hostnames[o->nhostnames++] = "localhost";
        o->hostnames[o->nhostnames++] = "127.0.0.1";
    }
    return -1;
}

int cmd_init(int argc, char **argv)
{
    struct init_opts o = {
        .dir = "./var", .ca_key = "ec:P-256", .ca_subject = "/CN=kipuka demo CA", .port = 9443};
    char *ca_dir = NULL, *tls_dir = NULL, *cfg_path = NULL, *p = NULL, *chain = NULL;
    struct kp_config *cfg = NULL;
    struct store *st = NULL;
    struct ca *ca = NULL;
    int status = init_parse(argc, argv, &o);

    if (status >= 0)
        return status;
    status = 1;
    ca_dir = fs_path_join(o.dir, "ca");
    tls_dir = fs_path_join(o.dir, "tls");
    cfg_path = fs_path_join(o.dir, "kipuka.toml");
    if (fs_exists(cfg_path)) {
        fprintf(stderr, "kipuka: %s exists: this directory is already initialised\n", cfg_path);
        goto out;
    }
    if (fs_mkdirs(ca_dir, 0700) != KP_OK || fs_mkdirs(tls_dir, 0700) != KP_OK) {
        fprintf(stderr, "kipuka: cannot create %s\n", o.dir);
        goto out;
    }
    if (init_ca(&o, ca_dir, &chain) != KP_OK)
        goto out;
    p = fs_path_join(o.dir, "otp.key");
    if (otp_key_create(p) != KP_OK) {
        fprintf(stderr, "kipuka: cannot write %s (exists?)\n", p);
        goto out;
    }
    if (init_config(&o, chain, cfg_path) != KP_OK)
        goto out;
    cfg = cli_config_load(cfg_path);
    if (cfg == NULL || ca_load(&cfg->labels[0], &ca) != KP_OK)
        goto out;
    if (init_tls_cert(&o, ca, tls_dir) != KP_OK)
        goto out;
    st = cli_store_open(cfg);
    if (st == NULL)
        goto out;
    fprintf(stderr, "kipuka: initialised %s (config %s)\n", o.dir, cfg_path);
    status = 0;
out:
    store_close(st);
    ca_free(ca);
    config_free(cfg);
    free(ca_dir);
    free(tls_dir);
    free(cfg_path);
    free(chain);
    free(p);
    return status;
}
