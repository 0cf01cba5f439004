/* Key pair generation for the CA, the TLS server and /serverkeygen. */
#ifndef KP_KEYGEN_H
#define KP_KEYGEN_H

#include <openssl/evp.h>

#include "core/config.h"
#include "core/err.h"

/* Generate a key of the given type (EC P-256/P-384, RSA 2048/3072/4096). */
enum kp_err keygen_generate(enum key_type type, EVP_PKEY **out);

#endif
