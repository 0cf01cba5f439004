/* A real deployment for the harnesses that drive whole layers (fuzz_est,
 * fuzz_admin): in the scratch directory, an EC P-256 root CA (ca.crt, ca.key;
 * also tls.crt, tls.key), otp.key, the given kipuka.toml, its SQLite store
 * and the EST core on them. */
#ifndef KP_FUZZ_DEPLOYMENT_H
#define KP_FUZZ_DEPLOYMENT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "auth/otp.h"
#include "core/config.h"
#include "est/est.h"
#include "store/store.h"

struct fuzz_deployment {
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    unsigned char otp_key[OTP_KEY_LEN];
    struct kp_config *cfg;
    struct store *store;
    struct est_services *svc;
    struct est_server *est;
};

/* Aborts (FUZZ_CHECK) on any failure. ca_cn names the CA. */
struct fuzz_deployment *fuzz_deployment_new(const char *ca_cn, const char *config_text);
void fuzz_deployment_free(struct fuzz_deployment *d);

#endif
