#include "deployment.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "core/xalloc.h"
#include "support.h"

struct fuzz_deployment *fuzz_deployment_new(const char *ca_cn, const char *config_text)
{
    struct fuzz_deployment *d = xcalloc(1, sizeof(*d));
    const char *dir = fuzz_scratch_dir();
    X509_NAME *subj = X509_NAME_new();
    char *path, *errmsg = NULL;

    d->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FUZZ_CHECK(d->ca_key != NULL && subj != NULL);
    FUZZ_CHECK(X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)ca_cn,
                                          -1, -1, 0) == 1);
    FUZZ_CHECK(ca_create_root(d->ca_key, subj, 3650, &d->ca_cert) == KP_OK);
    X509_NAME_free(subj);
    fuzz_write_pem(dir, "ca.crt", d->ca_cert, NULL);
    fuzz_write_pem(dir, "ca.key", NULL, d->ca_key);
    fuzz_write_pem(dir, "tls.crt", d->ca_cert, NULL);
    fuzz_write_pem(dir, "tls.key", NULL, d->ca_key);

    path = xasprintf("%s/otp.key", dir);
    FUZZ_CHECK(otp_key_create(path) == KP_OK);
    FUZZ_CHECK(otp_key_load(path, d->otp_key) == KP_OK);
    free(path);

    path = xasprintf("%s/kipuka.toml", dir);
    fuzz_write_file(path, config_text, strlen(config_text));
    if (config_load(path, &d->cfg, &errmsg) != KP_OK) {
        fprintf(stderr, "config_load: %s\n", errmsg);
        FUZZ_CHECK(!"config_load");
    }
    free(path);
    FUZZ_CHECK(store_open(d->cfg->store_url, &d->store) == KP_OK);
    d->svc = est_services_new(d->store, d->cfg->auth_fail_window);
    if (est_server_new(d->cfg, d->svc, &d->est, &errmsg) != KP_OK) {
        fprintf(stderr, "est_server_new: %s\n", errmsg);
        FUZZ_CHECK(!"est_server_new");
    }
    return d;
}

void fuzz_deployment_free(struct fuzz_deployment *d)
{
    if (d == NULL)
        return;
    est_server_free(d->est);
    est_services_free(d->svc);
    store_close(d->store);
    config_free(d->cfg);
    X509_free(d->ca_cert);
    EVP_PKEY_free(d->ca_key);
    OPENSSL_cleanse(d->otp_key, sizeof(d->otp_key));
    free(d);
}
