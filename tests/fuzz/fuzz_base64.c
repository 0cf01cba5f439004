/* base64_decode and base64_or_der (RFC 8951 tolerant base64): any input is
 * either refused or decodes to bytes that survive an encode/decode round
 * trip; base64_encode always writes 64-character lines. */
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "support.h"

static int alphabet_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

/* base64_encode's output shape: full 64-character lines, a shorter last one,
 * each ended by "\n". */
static void check_encoding(const char *enc, size_t enc_len, size_t in_len)
{
    size_t line = 0;

    FUZZ_CHECK(strlen(enc) == enc_len);
    FUZZ_CHECK(enc_len == (in_len + 2) / 3 * 4 + ((in_len + 2) / 3 * 4 + 63) / 64);
    for (size_t i = 0; i < enc_len; i++) {
        if (enc[i] == '\n') {
            FUZZ_CHECK(line > 0 && (line == 64 || i == enc_len - 1));
            line = 0;
        } else {
            FUZZ_CHECK(alphabet_char(enc[i]));
            line++;
        }
    }
    FUZZ_CHECK(line == 0);
}

/* decode(encode(x)) == x. x is never empty: empty input has no encoding
 * base64_decode accepts (it refuses an empty body). */
static void check_round_trip(const unsigned char *x, size_t n)
{
    unsigned char *dec = NULL;
    size_t enc_len = 0, dec_len = 0;
    char *enc = base64_encode(x, n, &enc_len);

    check_encoding(enc, enc_len, n);
    FUZZ_CHECK(base64_decode(enc, enc_len, &dec, &dec_len) == KP_OK);
    FUZZ_CHECK(dec_len == n && memcmp(dec, x, n) == 0);
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *out = NULL;
    size_t out_len = 0;
    enum kp_err rc = base64_decode((const char *)data, size, &out, &out_len);
    int decoded = rc == KP_OK;

    if (decoded) {
        /* four characters make at most three bytes, and something was there */
        FUZZ_CHECK(out_len > 0 && out_len <= size / 4 * 3 + 2);
        check_round_trip(out, out_len);
        free(out);
        out = NULL;
    } else {
        FUZZ_CHECK(rc == KP_ERR_BASE64);
        FUZZ_CHECK(out == NULL);
    }
    if (size > 0)
        check_round_trip(data, size);

    rc = base64_or_der(data, size, &out, &out_len);
    if (rc == KP_OK) {
        /* base64 wins; otherwise only a SEQUENCE is taken raw, unchanged */
        FUZZ_CHECK(decoded || (size >= 2 && data[0] == 0x30 && out_len == size &&
                               memcmp(out, data, size) == 0));
        free(out);
    } else {
        FUZZ_CHECK(rc == KP_ERR_BASE64 && !decoded);
        FUZZ_CHECK(size < 2 || data[0] != 0x30);
    }
    return 0;
}
