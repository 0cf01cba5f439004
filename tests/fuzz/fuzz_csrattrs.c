/* CsrAttrs (RFC 7030 4.5.2, RFC 8951 3.3) both ways. The whole input goes to
 * csrattrs_check, as a client's /csrattrs answer would. The same bytes also
 * describe a csrattrs_spec, whose encoding csrattrs_check must accept with
 * the element count the spec implies:
 *
 *   byte 0   bits 0-4: key_types (1u << enum key_type); bit 5:
 *            challenge_password; bit 6: request_san; bit 7: extra OIDs
 *   byte 1   (with extra OIDs) bit 7 set: the bytes from 2 up to a NUL (at
 *            most EXTRA_TEXT_MAX) are csrattrs_extra as configuration text,
 *            which may be refused; bit 7 clear: (byte 1 & 3) + 1 OIDs are
 *            built from 6 bytes each (arc0 = b0 % 3, arc1 = b1 % 40, arc2 =
 *            big-endian b2..b5) and must be accepted. Missing bytes are 0. */
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/xalloc.h"
#include "pki/csrattrs.h"
#include "support.h"

#define EXTRA_TEXT_MAX 512
#define EXTRA_BUILT_MAX 4

static uint8_t byte_at(const uint8_t *data, size_t size, size_t i)
{
    return i < size ? data[i] : 0;
}

/* Elements csrattrs_encode writes for the spec without its extra OIDs. */
static size_t spec_count(const struct csrattrs_spec *spec)
{
    const unsigned ec = (1u << KEY_EC_P256) | (1u << KEY_EC_P384);
    const unsigned rsa = (1u << KEY_RSA_2048) | (1u << KEY_RSA_3072) | (1u << KEY_RSA_4096);

    return (spec->challenge_password ? 1 : 0) + ((spec->key_types & ec) != 0) +
           ((spec->key_types & rsa) != 0) + (spec->request_san ? 1 : 0);
}

/* OIDs in a csrattrs_extra text that csrattrs_encode accepted. */
static size_t extra_count(const char *text)
{
    size_t n = 1;

    if (strspn(text, " \t") == strlen(text))
        return 0;
    for (const char *p = text; *p != '\0'; p++)
        n += *p == ',';
    return n;
}

static void check_spec(const uint8_t *data, size_t size)
{
    struct csrattrs_spec spec = {0};
    unsigned char *der = NULL;
    size_t der_len = 0, count = 0, want;
    char *extra = NULL;
    int text_mode = 0;
    uint8_t flags = byte_at(data, size, 0);
    enum kp_err rc;

    spec.key_types = flags & 0x1f;
    spec.challenge_password = (flags & 0x20) != 0;
    spec.request_san = (flags & 0x40) != 0;
    want = spec_count(&spec);
    if (flags & 0x80) {
        uint8_t how = byte_at(data, size, 1);
        text_mode = (how & 0x80) != 0;
        if (text_mode) {
            size_t n = size > 2 ? size - 2 : 0;
            extra =
                fuzz_cstring(data + (size > 2 ? 2 : 0), n < EXTRA_TEXT_MAX ? n : EXTRA_TEXT_MAX);
        } else {
            size_t noids = (how & 3) + 1, off = 2;
            char oids[EXTRA_BUILT_MAX * 40] = "";
            for (size_t i = 0; i < noids; i++, off += 6) {
                unsigned long arc2 = ((unsigned long)byte_at(data, size, off + 2) << 24) |
                                     ((unsigned long)byte_at(data, size, off + 3) << 16) |
                                     ((unsigned long)byte_at(data, size, off + 4) << 8) |
                                     byte_at(data, size, off + 5);
                size_t used = strlen(oids);
                snprintf(oids + used, sizeof(oids) - used, "%s%u.%u.%lu", i > 0 ? ", " : "",
                         byte_at(data, size, off) % 3, byte_at(data, size, off + 1) % 40, arc2);
            }
            extra = xstrdup(oids);
        }
        spec.extra_oids = extra;
    }

    rc = csrattrs_encode(&spec, &der, &der_len);
    if (text_mode && rc == KP_ERR_CONFIG) {
        FUZZ_CHECK(der == NULL);
        goto out;
    }
    FUZZ_CHECK(rc == KP_OK);
    if (extra != NULL)
        want += extra_count(extra);
    FUZZ_CHECK(der != NULL && der_len >= 2 && der[0] == 0x30);
    FUZZ_CHECK(csrattrs_check(der, der_len, &count) == KP_OK);
    FUZZ_CHECK(count == want);
out:
    free(der);
    free(extra);
    ERR_clear_error();
}

/* csrattrs_check promises DER (RFC 7030 4.5.2): what it accepts must be its
 * own DER re-encoding, so no BER (indefinite or long-form lengths, a
 * primitive SEQUENCE tag) gets through. */
static void check_der(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)size);
    unsigned char *der = NULL;
    int n;

    FUZZ_CHECK(seq != NULL && p == data + size);
    n = i2d_ASN1_SEQUENCE_ANY(seq, &der);
    FUZZ_CHECK(n > 0 && (size_t)n == size && memcmp(der, data, size) == 0);
    OPENSSL_free(der);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    size_t count = (size_t)-1;
    enum kp_err rc;

    if (!quiet) {
        fuzz_quiet();
        quiet = 1;
    }
    rc = csrattrs_check(data, size, &count);
    if (rc == KP_OK) {
        /* SEQUENCE header, then at least two bytes per element */
        FUZZ_CHECK(size >= 2 && count <= (size - 2) / 2);
        check_der(data, size);
    } else {
        FUZZ_CHECK(rc == KP_ERR_BAD_REQUEST && count == (size_t)-1);
    }
    FUZZ_CHECK(ERR_peek_error() == 0);
    check_spec(data, size);
    return 0;
}
