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
    /* Under either policy a challengePassword is the binding (RFC 7030 3.5):
     * one that is not base64 of this connection's binding, whatever its length
     * or shape, is refused, so a binding replayed from another connection (or
     * cut to another size) never passes for a plain password. */
    if (binding == NULL || binding_len == 0 ||
        base64_decode((const char *)challenge, challenge_len, &decoded, &decoded_len) != KP_OK)
        goto out;
    if (decoded_len == binding_len && CRYPTO_memcmp(decoded, binding, binding_len) == 0)
        rc = KP_OK;
out:
    free(decoded);
    return rc;
}
