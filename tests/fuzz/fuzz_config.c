/* config_load on the input as a kipuka.toml. The file is written to this
 * process's scratch directory, so relative paths resolve there. A load
 * either fails with a "FILE[:LINE]: reason" message or yields a config that
 * keeps the rules config.c promises: bounds, absolute paths, valid labels. */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/xalloc.h"
#include "support.h"

static const char label_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

static void check_path(const char *path)
{
    FUZZ_CHECK(path != NULL);
    FUZZ_CHECK(path[0] == '\0' || path[0] == '/');
}

static void check_config(const struct kp_config *cfg)
{
    FUZZ_CHECK(cfg->port >= 0 && cfg->port <= 65535);
    FUZZ_CHECK(cfg->max_body_bytes >= 1024 && cfg->read_timeout >= 1 && cfg->idle_timeout >= 1);
    FUZZ_CHECK(cfg->listen != NULL && cfg->listen[0] != '\0');
    FUZZ_CHECK(cfg->tls_cert != NULL && cfg->tls_cert[0] == '/');
    FUZZ_CHECK(cfg->tls_key != NULL && cfg->tls_key[0] == '/');
    check_path(cfg->tls_client_ca);
    FUZZ_CHECK(cfg->otp_key_file != NULL && cfg->otp_key_file[0] == '/');
    FUZZ_CHECK(strncmp(cfg->store_url, "sqlite:/", 8) == 0);
    FUZZ_CHECK(cfg->est_base_path[0] == '/' && strstr(cfg->est_base_path, "//") == NULL);
    FUZZ_CHECK(strcmp(cfg->tls_min_version, cfg->tls_max_version) <= 0);
    FUZZ_CHECK(cfg->nlabels >= 1 && cfg->labels != NULL);
    for (size_t i = 0; i < cfg->nlabels; i++) {
        const struct label_cfg *l = &cfg->labels[i];
        size_t n = strlen(l->name);
        FUZZ_CHECK(n >= 1 && n <= 40 && strspn(l->name, label_chars) == n);
        FUZZ_CHECK(config_label(cfg, l->name) == l); /* names are unique */
        FUZZ_CHECK(l->ca_cert[0] == '/' && l->ca_key[0] == '/');
        check_path(l->ca_chain);
        FUZZ_CHECK(l->key_types != 0 && l->key_types < (1u << KEY__MAX));
        FUZZ_CHECK(l->ekus < (1u << EKU__MAX));
        FUZZ_CHECK(l->max_validity_days >= 1 && l->max_validity_days <= 3650);
        FUZZ_CHECK(l->max_sans >= 0 && l->max_sans <= 1000);
        FUZZ_CHECK(l->csrattrs_extra != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *path;
    struct kp_config *cfg = NULL;
    char *errmsg = NULL;
    enum kp_err rc;

    if (path == NULL) {
        fuzz_quiet();
        path = xasprintf("%s/kipuka.toml", fuzz_scratch_dir());
    }
    fuzz_write_file(path, data, size);
    rc = config_load(path, &cfg, &errmsg);
    if (rc == KP_OK) {
        FUZZ_CHECK(cfg != NULL && errmsg == NULL);
        check_config(cfg);
        config_free(cfg);
    } else {
        FUZZ_CHECK(rc == KP_ERR_CONFIG && cfg == NULL);
        FUZZ_CHECK(errmsg != NULL && strncmp(errmsg, path, strlen(path)) == 0);
        free(errmsg);
    }
    return 0;
}
