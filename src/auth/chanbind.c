#include "auth/chanbind.h"

#include <openssl/crypto.h>
#include <stdlib.h>

#include "core/base64.h"

enum kp_err chanbind_check(enum cb_policy policy, const unsigned char *challenge,
                           size_t challenge_len, const unsigned char *binding, size_t binding_len)
{
    unsigned char *decoded = NULL;
    size_t decoded_len = 0;
    enum kp_err rc = KP_ERR_CHANNEL_BINDING;

    if (challenge == NULL) {
        rc = policy == CB_REQUIRED ? KP_ERR_CHANNEL_BINDING : KP_OK;
        goto out;
    }
    /* Under the optional policy a challengePassword that is not base64 of a value
     * the size of this connection's binding is taken as a plain password and ignored;
     * one that has that shape but differs is a replayed or forged binding. */
    if (base64_decode((const char *)challenge, challenge_len, &decoded, &decoded_len) != KP_OK) {
        rc = policy == CB_REQUIRED ? KP_ERR_CHANNEL_BINDING : KP_OK;
        goto out;
    }
    if (binding != NULL && decoded_len == binding_len &&
        CRYPTO_memcmp(decoded, binding, binding_len) == 0)
        rc = KP_OK;
    else if (policy == CB_OPTIONAL && (binding == NULL || decoded_len != binding_len))
        rc = KP_OK; /* not shaped like a binding of this connection: a plain password */
out:
    free(decoded);
    return rc;
}
