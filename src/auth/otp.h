/* One-time passwords for first enrollment (RFC 7030 3.2.3 HTTP Basic).
 * Stored only as HMAC-SHA256 under a server key; compared by that hash. */
#ifndef KP_OTP_H
#define KP_OTP_H

#include <stddef.h>

#include "core/err.h"
#include "store/store.h"

#define OTP_KEY_LEN 32
#define OTP_LEN 20 /* characters; 100 bits from a 32-letter alphabet */

/* A fresh OTP from the CSPRNG, NUL-terminated. */
enum kp_err otp_generate(char out[OTP_LEN + 1]);
/* Keyed hash of an OTP as stored. */
void otp_hash(const unsigned char key[OTP_KEY_LEN], const char *otp, size_t otp_len,
              unsigned char out[STORE_OTP_HASH_LEN]);
/* Read the key file (exactly OTP_KEY_LEN bytes, hex encoded). */
enum kp_err otp_key_load(const char *path, unsigned char key[OTP_KEY_LEN]);
/* Create a new key file, mode 0600; KP_ERR_EXISTS if it exists. */
enum kp_err otp_key_create(const char *path);

#endif
