/* kipuka cert list|show: what the CA has issued, from the store. */
#include <ctype.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "pki/kek.h"
#include "pki/serverkey.h"

static const char cert_usage[] = "usage: kipuka cert list [--label L]\n"
                                 "       kipuka cert show SERIAL\n"
                                 "       kipuka cert key SERIAL\n"
                                 "\n"
                                 "  --label L   only certificates issued under this label\n"
                                 "key prints the archived serverkeygen key (PKCS#8 PEM) of a\n"
                                 "certificate whose label has serverkeygen_archive = true;\n"
                                 "it is audited.\n"
                                 "  -c FILE     config file (default " CLI_DEFAULT_CONFIG ")\n";

static void cert_print_row(const struct store_cert *c, void *arg)
{
    char nb[32];
    (void)arg;
    printf("%-40s %-14s %-7s %-20s %-5s %s\n", c->serial, c->label, c->status,
           cli_time(c->not_after, nb, sizeof(nb)), c->auth_method, c->subject);
}

/* Accept serials as operators paste them: "serial=4A:1F..." or upper case. */
static void cert_serial_normalize(const char *in, char *out, size_t len)
{
    size_t o = 0;
    if (strncasecmp(in, "serial=", 7) == 0)
        in += 7;
    for (; *in && o + 1 < len; in++) {
        if (*in == ':')
            continue;
        out[o++] = (char)tolower((unsigned char)*in);
    }
    out[o] = '\0';
}

static int cert_show(struct store *st, const char *raw_serial)
{
    char serial[128];
    struct store_cert *c = NULL;
    const unsigned char *p;
    X509 *x = NULL;
    char t[32];
    enum kp_err rc;

    cert_serial_normalize(raw_serial, serial, sizeof(serial));
    rc = store_cert_get(st, serial, &c);

    if (rc != KP_OK) {
        fprintf(stderr, "kipuka: %s\n",
                rc == KP_ERR_NOT_FOUND ? "no certificate with that serial" : "store error");
        return 1;
    }
    printf("Serial:      %s\nLabel:       %s\nStatus:      %s\nSubject:     %s\n"
           "SANs:        %s\n",
           c->serial, c->label, c->status, c->subject, c->sans);
    printf("Not before:  %s\n", cli_time(c->not_before, t, sizeof(t)));
    printf("Not after:   %s\n", cli_time(c->not_after, t, sizeof(t)));
    printf("Issued:      %s\nRequester:   %s (%s)\n\n", cli_time(c->issued_at, t, sizeof(t)),
           c->requester, c->auth_method);
    p = c->der;
    x = d2i_X509(NULL, &p, (long)c->der_len);
    if (x != NULL) {
        X509_print_ex_fp(stdout, x, XN_FLAG_ONELINE, X509_FLAG_NO_SIGDUMP | X509_FLAG_NO_PUBKEY);
        PEM_write_X509(stdout, x);
    }
    X509_free(x);
    store_cert_free(c);
    return x != NULL ? 0 : 1;
}

/* Recover an archived serverkeygen key with the label's archive key file. */
static int cert_key(const struct kp_config *cfg, struct store *st, const char *raw_serial)
{
    char serial[128], by[96];
    struct store_cert *c = NULL;
    const struct label_cfg *l;
    struct kek_table *keys = NULL;
    unsigned char *cms = NULL, *p8der = NULL;
    const unsigned char *p;
    size_t cms_len = 0, p8_len = 0;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    struct store_audit ev = {.event = "key.recover", .peer = "cli"};
    int status = 1;

    cert_serial_normalize(raw_serial, serial, sizeof(serial));
    if (store_cert_get(st, serial, &c) != KP_OK) {
        fprintf(stderr, "kipuka: no certificate with that serial\n");
        goto out;
    }
    if (store_key_archive_get(st, serial, &cms, &cms_len) != KP_OK) {
        fprintf(stderr, "kipuka: no archived key for %s\n", serial);
        goto out;
    }
    l = config_label(cfg, c->label);
    if (l == NULL || l->serverkeygen_archive_key_file[0] == '\0' ||
        kek_load(l->serverkeygen_archive_key_file, &keys) != KP_OK) {
        fprintf(stderr, "kipuka: label %s has no usable serverkeygen_archive_key_file\n", c->label);
        goto out;
    }
    if (serverkey_open_kek(cms, cms_len, keys, &p8der, &p8_len) != KP_OK) {
        fprintf(stderr, "kipuka: the archive key file cannot open this key\n");
        goto out;
    }
    p = p8der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)p8_len);
    if (p8 == NULL) {
        fprintf(stderr, "kipuka: the archived key is not PKCS#8\n");
        goto out;
    }
    ev.outcome = "ok";
    ev.label = c->label;
    ev.subject = cli_operator(by, sizeof(by));
    ev.detail = serial;
    if (store_audit_add(st, &ev) != KP_OK) {
        fprintf(stderr, "kipuka: cannot write the audit row; key not shown\n");
        goto out;
    }
    status = PEM_write_PKCS8_PRIV_KEY_INFO(stdout, p8) == 1 ? 0 : 1;
    fflush(stdout);
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (p8der != NULL)
        OPENSSL_clear_free(p8der, p8_len);
    free(cms);
    kek_free(keys);
    store_cert_free(c);
    return status;
}

int cmd_cert(int argc, char **argv)
{
    static const struct option opts[] = {{"label", required_argument, NULL, 'l'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = CLI_DEFAULT_CONFIG, *label = NULL, *sub;
    struct kp_config *cfg = NULL;
    struct store *st = NULL;
    int status = 2, c;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cert_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    sub = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            label = optarg;
            break;
        case 'c':
            path = optarg;
            break;
        case 'h':
            fputs(cert_usage, stdout);
            return 0;
        default:
            fputs(cert_usage, stderr);
            return 2;
        }
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "key") != 0) {
        fprintf(stderr, "kipuka: unknown cert command \"%s\"\n\n%s", sub, cert_usage);
        return 2;
    }
    if (strcmp(sub, "list") != 0 && optind + 1 >= argc) {
        fputs(cert_usage, stderr);
        return 2;
    }
    cfg = cli_config_load(path);
    st = cfg ? cli_store_open(cfg) : NULL;
    if (st == NULL) {
        status = 1;
        goto out;
    }
    if (strcmp(sub, "list") == 0) {
        printf("%-40s %-14s %-7s %-20s %-5s %s\n", "SERIAL", "LABEL", "STATUS", "NOT AFTER", "AUTH",
               "SUBJECT");
        status = store_cert_list(st, label, cert_print_row, NULL) == KP_OK ? 0 : 1;
    } else if (strcmp(sub, "key") == 0) {
        status = cert_key(cfg, st, argv[optind + 1]);
    } else {
        status = cert_show(st, argv[optind + 1]);
    }
out:
    store_close(st);
    config_free(cfg);
    return status;
}
