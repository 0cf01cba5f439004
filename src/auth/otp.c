#include "auth/otp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/log.h"

/* 32 letters without look-alikes (no 0/O, 1/l/I), so OTPs survive being read aloud. */
static const char otp_alphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";

enum kp_err otp_generate(char out[OTP_LEN + 1])
{
    unsigned char raw[OTP_LEN];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        log_openssl("RAND_bytes failed");
        return KP_ERR_INTERNAL;
    }
    for (size_t i = 0; i < OTP_LEN; i++)
        out[i] = otp_alphabet[raw[i] & 31]; /* 32 letters: no modulo bias */
    out[OTP_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return KP_OK;
}

void otp_hash(const unsigned char key[OTP_KEY_LEN], const char *otp, size_t otp_len,
              unsigned char out[STORE_OTP_HASH_LEN])
{
    unsigned int len = STORE_OTP_HASH_LEN;
    HMAC(EVP_sha256(), key, OTP_KEY_LEN, (const unsigned char *)otp, otp_len, out, &len);
}

enum kp_err otp_key_load(const char *path, unsigned char key[OTP_KEY_LEN])
{
    enum kp_err rc = KP_ERR_CONFIG;
    char *text = NULL;
    size_t len = 0;

    rc = fs_secret_check("OTP key file", path);
    if (rc != KP_OK)
        goto out;
    rc = KP_ERR_CONFIG;
    if (fs_read_file(path, 256, &text, &len) != KP_OK) {
        log_error("cannot read OTP key file %s", path);
        rc = KP_ERR_IO;
        goto out;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len != OTP_KEY_LEN * 2) {
        log_error("OTP key file %s: expected %d hex characters", path, OTP_KEY_LEN * 2);
        goto out;
    }
    for (size_t i = 0; i < OTP_KEY_LEN; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)(text[2 * i])),
            lo = OPENSSL_hexchar2int((unsigned char)(text[2 * i + 1]));
        if (hi < 0 || lo < 0) {
            log_error("OTP key file %s: not lowercase hex", path);
            goto out;
        }
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    rc = KP_OK;
out:
    if (text)
        OPENSSL_clear_free(text, len);
    return rc;
}

enum kp_err otp_key_create(const char *path)
{
    unsigned char key[OTP_KEY_LEN];
    char hex[OTP_KEY_LEN * 2 + 2];
    enum kp_err rc;

    if (RAND_bytes(key, sizeof(key)) != 1)
        return KP_ERR_INTERNAL;
    for (size_t i = 0; i < OTP_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[OTP_KEY_LEN * 2] = '\n';
    hex[OTP_KEY_LEN * 2 + 1] = '\0';
    rc = fs_write_new(path, 0600, hex, OTP_KEY_LEN * 2 + 1);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}
