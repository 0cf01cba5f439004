/* kipuka cert list|show: what the CA has issued, from the store. */
#include <ctype.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

static const char cert_usage[] = "usage: kipuka cert list [--label L]\n"
                                 "       kipuka cert show SERIAL\n"
                                 "\n"
                                 "  --label L   only certificates issued under this label\n"
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
        case 'l': label = optarg; break;
        case 'c': path = optarg; break;
        case 'h': fputs(cert_usage, stdout); return 0;
        default: fputs(cert_usage, stderr); return 2;
        }
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0) {
        fprintf(stderr, "kipuka: unknown cert command \"%s\"\n\n%s", sub, cert_usage);
        return 2;
    }
    if (strcmp(sub, "show") == 0 && optind + 1 >= argc) {
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
        printf("%-40s %-14s %-7s %-20s %-5s %s\n", "SERIAL", "LABEL", "STATUS", "NOT AFTER",
               "AUTH", "SUBJECT");
        status = store_cert_list(st, label, cert_print_row, NULL) == KP_OK ? 0 : 1;
    } else {
        status = cert_show(st, argv[optind + 1]);
    }
out:
    store_close(st);
    config_free(cfg);
    return status;
}
