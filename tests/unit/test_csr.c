/* csr_parse and friends against real requests from tests/data/csr/ (made by
 * tests/data/make-csrs.sh) and requests built here with odd attributes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "pki/csr.h"
#include "pki/keygen.h"
#include "pki/spki.h"

/* tests/data, from $KP_TEST_DATA or next to this source file. */
static char *data_path(const char *name)
{
    const char *dir = getenv("KP_TEST_DATA");
    const char *unit;

    if (dir != NULL && dir[0] != '\0')
        return xasprintf("%s/%s", dir, name);
    unit = strstr(__FILE__, "unit/test_csr.c");
    if (unit == NULL)
        return xasprintf("tests/data/%s", name);
    return xasprintf("%.*sdata/%s", (int)(unit - __FILE__), __FILE__, name);
}

static unsigned char *load(const char *name, size_t *len)
{
    char *path = data_path(name);
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL)
        fail_msg("cannot open %s (set KP_TEST_DATA)", path);
    for (;;) {
        size_t got;
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = xrealloc(buf, cap);
        }
        got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    free(path);
    *len = n;
    return buf;
}

/* Parse a file from tests/data/csr/; returns the result, *out only on KP_OK. */
static enum kp_err parse_file(const char *name, struct csr **out)
{
    char *rel = xasprintf("csr/%s", name);
    size_t len;
    unsigned char *der = load(rel, &len);
    enum kp_err rc = csr_parse(der, len, out);

    free(der);
    free(rel);
    return rc;
}

/* The same file read by OpenSSL's own PKCS#10 parser: the reference that
 * csr_parse's decoding (pki/csr.c, which leaves out its key decoder) is
 * held to. */
static X509_REQ *openssl_req(const char *name)
{
    char *rel = xasprintf("csr/%s", name);
    size_t len;
    unsigned char *der = load(rel, &len);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);

    assert_non_null(req);
    free(der);
    free(rel);
    return req;
}

static void expect_rejected(const char *name, enum kp_err want)
{
    struct csr *c = NULL;
    enum kp_err rc = parse_file(name, &c);

    if (rc != want)
        fail_msg("%s: got %d, want %d", name, (int)rc, (int)want);
    assert_null(c);
}

static void check_string(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* ---- accepted key types ---- */

struct valid_case {
    const char *file;
    int key_type;
    int key_bits;
    const char *subject;
    const char *sans;
};

static const struct valid_case valid_cases[] = {
    {"ec-p256.der", KEY_EC_P256, 256, "CN=ec-p256.example", "DNS:ec-p256.example, IP:192.0.2.1"},
    {"ec-p384.der", KEY_EC_P384, 384, "CN=ec-p384.example", "DNS:ec-p384.example, IP:192.0.2.1"},
    {"rsa-2048.der", KEY_RSA_2048, 2048, "CN=rsa-2048.example",
     "DNS:rsa-2048.example, IP:192.0.2.1"},
    {"rsa-3072.der", KEY_RSA_3072, 3072, "CN=rsa-3072.example",
     "DNS:rsa-3072.example, IP:192.0.2.1"},
    {"rsa-4096.der", KEY_RSA_4096, 4096, "CN=rsa-4096.example",
     "DNS:rsa-4096.example, IP:192.0.2.1"},
};

static void test_valid_requests_parse_with_their_key_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *v = &valid_cases[i];
        struct csr *c = NULL;
        X509_REQ *req = openssl_req(v->file);
        enum kp_err rc = parse_file(v->file, &c);
        if (rc != KP_OK)
            fail_msg("%s: rc %d", v->file, (int)rc);
        assert_non_null(c);
        assert_non_null(c->req);
        assert_non_null(c->pubkey);
        /* the key built from its numbers is the one OpenSSL decodes */
        if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), c->pubkey) != 1)
            fail_msg("%s: key differs from OpenSSL's reading", v->file);
        X509_REQ_free(req);
        assert_int_equal(c->key_type, v->key_type);
        assert_int_equal(c->key_bits, v->key_bits);
        check_string(csr_name_string(c->subject), v->subject);
        assert_non_null(c->sans);
        check_string(csr_sans_string(c->sans), v->sans);
        assert_null(c->challenge);
        assert_int_equal(c->challenge_len, 0);
        csr_free(c);
    }
}

/* ---- keys that parse but that no label accepts ---- */

static void expect_unknown_key(const char *file, int bits)
{
    struct csr *c = NULL;
    assert_int_equal(parse_file(file, &c), KP_OK);
    assert_non_null(c);
    assert_int_equal(c->key_type, -1);
    if (bits > 0)
        assert_int_equal(c->key_bits, bits);
    assert_non_null(c->sans);
    csr_free(c);
}

static void test_rsa_1024_parses_with_unknown_key_type(void **state)
{
    (void)state;
    expect_unknown_key("rsa-1024.der", 1024);
}

static void test_ec_p521_parses_with_unknown_key_type(void **state)
{
    (void)state;
    expect_unknown_key("ec-p521.der", 521);
}

static void test_ed25519_parses_with_unknown_key_type(void **state)
{
    (void)state;
    expect_unknown_key("ed25519.der", 0);
}

static void test_explicit_curve_parameters_are_not_p256(void **state)
{
    (void)state;
    expect_unknown_key("ec-p256-explicit.der", 0);
}

/* ---- attributes ---- */

static void test_challenge_password_is_extracted(void **state)
{
    struct csr *c = NULL;
    (void)state;
    assert_int_equal(parse_file("challenge.der", &c), KP_OK);
    assert_int_equal(c->key_type, KEY_EC_P256);
    assert_non_null(c->challenge);
    assert_int_equal(c->challenge_len, strlen("s3cret-otp-value"));
    assert_memory_equal(c->challenge, "s3cret-otp-value", c->challenge_len);
    check_string(csr_sans_string(c->sans),
                 "DNS:challenge.example, IP:2001:db8::1, email:ops@challenge.example");
    csr_free(c);
}

static void test_request_without_san_has_null_sans(void **state)
{
    struct csr *c = NULL;
    (void)state;
    assert_int_equal(parse_file("nosan.der", &c), KP_OK);
    assert_null(c->sans);
    check_string(csr_sans_string(c->sans), "");
    check_string(csr_name_string(c->subject), "CN=nosan.example,O=Kipuka Test");
    csr_free(c);
}

/* ---- hostile files ---- */

static void test_broken_signature_is_rejected(void **state)
{
    (void)state;
    expect_rejected("bad-signature.der", KP_ERR_CSR_SIGNATURE);
}

static void test_truncated_der_is_rejected(void **state)
{
    (void)state;
    expect_rejected("truncated.der", KP_ERR_CSR);
}

static void test_trailing_garbage_is_rejected(void **state)
{
    (void)state;
    expect_rejected("trailing-garbage.der", KP_ERR_CSR);
}

static void test_empty_file_is_rejected(void **state)
{
    (void)state;
    expect_rejected("empty.der", KP_ERR_CSR);
}

static void test_random_junk_is_rejected(void **state)
{
    (void)state;
    expect_rejected("junk.der", KP_ERR_CSR);
}

static void test_request_over_max_size_is_rejected(void **state)
{
    (void)state;
    /* oversize-30k.der is well formed and correctly signed: size alone. */
    expect_rejected("oversize-30k.der", KP_ERR_CSR);
}

static void test_malformed_san_extension_is_rejected(void **state)
{
    (void)state;
    expect_rejected("bad-san.der", KP_ERR_CSR);
}

static void test_dns_name_with_nul_is_rejected(void **state)
{
    (void)state;
    expect_rejected("san-nul.der", KP_ERR_CSR);
}

static void test_null_and_zero_length_input_are_rejected(void **state)
{
    struct csr *c = NULL;
    unsigned char byte = 0x30;
    (void)state;
    assert_int_equal(csr_parse(NULL, 0, &c), KP_ERR_CSR);
    assert_int_equal(csr_parse(&byte, 0, &c), KP_ERR_CSR);
    assert_int_equal(csr_parse(&byte, 1, &c), KP_ERR_CSR);
    assert_null(c);
}

static void test_length_just_over_max_is_rejected(void **state)
{
    struct csr *c = NULL;
    size_t len;
    unsigned char *der = load("csr/ec-p256.der", &len);
    unsigned char *big = xcalloc(CSR_MAX_DER + 1, 1);
    (void)state;
    memcpy(big, der, len);
    assert_int_equal(csr_parse(big, CSR_MAX_DER + 1, &c), KP_ERR_CSR);
    assert_null(c);
    free(big);
    free(der);
}

static void test_every_truncation_is_rejected(void **state)
{
    size_t len;
    unsigned char *der = load("csr/challenge.der", &len);
    (void)state;
    for (size_t n = 1; n < len; n++) {
        /* A copy of exactly n bytes, so ASan sees any over-read. */
        unsigned char *cut = xmalloc(n);
        struct csr *c = NULL;
        memcpy(cut, der, n);
        if (csr_parse(cut, n, &c) == KP_OK)
            fail_msg("prefix of %zu bytes accepted", n);
        assert_null(c);
        free(cut);
    }
    free(der);
}

static void test_bit_flips_never_crash_or_leak(void **state)
{
    size_t len;
    unsigned char *der = load("csr/challenge.der", &len);
    (void)state;
    for (size_t i = 0; i < len; i++) {
        struct csr *c = NULL;
        enum kp_err rc;
        der[i] ^= 0x01;
        rc = csr_parse(der, len, &c);
        assert_true(rc == KP_OK || rc == KP_ERR_CSR || rc == KP_ERR_CSR_SIGNATURE);
        assert_true((rc == KP_OK) == (c != NULL));
        csr_free(c);
        der[i] ^= 0x01;
    }
    free(der);
}

/* ---- requests built here ---- */

typedef void (*req_tweak)(X509_REQ *req);

/* Replace every encoding of OID from_nid in der by to_nid (same length).
 * OpenSSL refuses to add a second attribute of one type, so tests add a
 * stand-in and rename it in the encoding. */
static void patch_oid(unsigned char *der, size_t len, int from_nid, int to_nid)
{
    unsigned char from[32], to[32], *p;
    int nf, nt, hits = 0;

    p = from;
    nf = i2d_ASN1_OBJECT(OBJ_nid2obj(from_nid), &p);
    p = to;
    nt = i2d_ASN1_OBJECT(OBJ_nid2obj(to_nid), &p);
    assert_true(nf > 0 && nf == nt);
    for (size_t i = 0; i + (size_t)nf <= len; i++) {
        if (memcmp(der + i, from, (size_t)nf) == 0) {
            memcpy(der + i, to, (size_t)nf);
            hits++;
        }
    }
    assert_true(hits > 0);
}

static unsigned char *sign_to_der(X509_REQ *req, EVP_PKEY *key, size_t *len)
{
    unsigned char *der = NULL;
    int n;

    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* A signed request with CN=built.example, changed by tweak before signing.
 * With from_nid != 0, attribute OID from_nid then becomes to_nid (and the
 * request is signed again). */
static unsigned char *build_req(EVP_PKEY *key, req_tweak tweak, int from_nid, int to_nid,
                                size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    unsigned char *der;
    const unsigned char *p;

    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, 0), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                                (const unsigned char *)"built.example", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (tweak != NULL)
        tweak(req);
    der = sign_to_der(req, key, len);
    X509_REQ_free(req);
    if (from_nid == 0)
        return der;
    patch_oid(der, *len, from_nid, to_nid);
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)*len);
    assert_non_null(req);
    OPENSSL_free(der);
    der = sign_to_der(req, key, len);
    X509_REQ_free(req);
    return der;
}

static enum kp_err parse_built_patched(req_tweak tweak, int from_nid, int to_nid, struct csr **out)
{
    EVP_PKEY *key = NULL;
    size_t len;
    unsigned char *der;
    enum kp_err rc;

    assert_int_equal(keygen_generate(KEY_EC_P256, &key), KP_OK);
    der = build_req(key, tweak, from_nid, to_nid, &len);
    rc = csr_parse(der, len, out);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    return rc;
}

static enum kp_err parse_built(req_tweak tweak, struct csr **out)
{
    return parse_built_patched(tweak, 0, 0, out);
}

static void add_challenge(X509_REQ *req, int type, const char *value)
{
    assert_int_equal(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, type,
                                               (const unsigned char *)value, (int)strlen(value)),
                     1);
}

static void tweak_two_challenge_values(X509_REQ *req)
{
    X509_ATTRIBUTE *a = X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_challengePassword,
                                                     V_ASN1_PRINTABLESTRING, "one", 3);
    assert_non_null(a);
    assert_int_equal(X509_ATTRIBUTE_set1_data(a, V_ASN1_PRINTABLESTRING, "two", 3), 1);
    assert_int_equal(X509_REQ_add1_attr(req, a), 1);
    X509_ATTRIBUTE_free(a);
}

/* The unstructuredAddress becomes a second challengePassword. */
static void tweak_two_challenge_attributes(X509_REQ *req)
{
    add_challenge(req, V_ASN1_UTF8STRING, "one");
    assert_int_equal(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_unstructuredAddress,
                                               V_ASN1_UTF8STRING, (const unsigned char *)"two", 3),
                     1);
}

static void tweak_integer_challenge(X509_REQ *req)
{
    add_challenge(req, V_ASN1_INTEGER, "\x05");
}

static void tweak_ia5_challenge(X509_REQ *req)
{
    add_challenge(req, V_ASN1_IA5STRING, "ia5-otp");
}

static void tweak_printable_challenge(X509_REQ *req)
{
    add_challenge(req, V_ASN1_PRINTABLESTRING, "printable-otp");
}

/* extensionRequest attribute holding these extensions, added nid times. */
static void add_ext_req(X509_REQ *req, int nid, STACK_OF(X509_EXTENSION) * exts)
{
    unsigned char *der = NULL;
    int n = i2d_X509_EXTENSIONS(exts, &der);
    assert_true(n > 0);
    assert_int_equal(X509_REQ_add1_attr_by_NID(req, nid, V_ASN1_SEQUENCE, der, n), 1);
    OPENSSL_free(der);
}

static STACK_OF(X509_EXTENSION) * san_exts(const char *value, int copies)
{
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    for (int i = 0; i < copies; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, value);
        assert_non_null(e);
        assert_true(sk_X509_EXTENSION_push(exts, e) > 0);
    }
    return exts;
}

static void tweak_two_extension_requests(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *a = san_exts("DNS:a.example", 1);
    STACK_OF(X509_EXTENSION) *b = san_exts("DNS:b.example", 1);
    add_ext_req(req, NID_ext_req, a);
    add_ext_req(req, NID_SMIMECapabilities, b); /* becomes a second extensionRequest */
    sk_X509_EXTENSION_pop_free(a, X509_EXTENSION_free);
    sk_X509_EXTENSION_pop_free(b, X509_EXTENSION_free);
}

static void tweak_ms_and_pkcs9_extension_requests(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *a = san_exts("DNS:a.example", 1);
    STACK_OF(X509_EXTENSION) *b = san_exts("DNS:b.example", 1);
    add_ext_req(req, NID_ext_req, a);
    add_ext_req(req, NID_ms_ext_req, b);
    sk_X509_EXTENSION_pop_free(a, X509_EXTENSION_free);
    sk_X509_EXTENSION_pop_free(b, X509_EXTENSION_free);
}

static void tweak_two_san_extensions(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = san_exts("DNS:a.example", 2);
    add_ext_req(req, NID_ext_req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void tweak_ip_of_five_bytes(X509_REQ *req)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e;

    assert_int_equal(ASN1_OCTET_STRING_set(ip, (const unsigned char *)"\x7f\0\0\1\1", 5), 1);
    GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    assert_true(sk_GENERAL_NAME_push(names, gn) > 0);
    e = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
    assert_non_null(e);
    assert_true(sk_X509_EXTENSION_push(exts, e) > 0);
    add_ext_req(req, NID_ext_req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(names);
}

static void tweak_ms_extension_request_only(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = san_exts("DNS:ms.example", 1);
    add_ext_req(req, NID_ms_ext_req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void expect_built_rejected(req_tweak tweak)
{
    struct csr *c = NULL;
    assert_int_equal(parse_built(tweak, &c), KP_ERR_CSR);
    assert_null(c);
}

static void test_multivalued_challenge_password_is_rejected(void **state)
{
    (void)state;
    expect_built_rejected(tweak_two_challenge_values);
}

static void test_repeated_challenge_password_is_rejected(void **state)
{
    struct csr *c = NULL;
    (void)state;
    assert_int_equal(parse_built_patched(tweak_two_challenge_attributes,
                                         NID_pkcs9_unstructuredAddress, NID_pkcs9_challengePassword,
                                         &c),
                     KP_ERR_CSR);
    assert_null(c);
}

static void test_non_string_challenge_password_is_rejected(void **state)
{
    (void)state;
    expect_built_rejected(tweak_integer_challenge);
}

static void test_challenge_password_string_types_are_accepted(void **state)
{
    struct csr *c = NULL;
    (void)state;
    assert_int_equal(parse_built(tweak_ia5_challenge, &c), KP_OK);
    assert_int_equal(c->challenge_len, 7);
    assert_memory_equal(c->challenge, "ia5-otp", 7);
    assert_null(c->sans);
    csr_free(c);
    c = NULL;
    assert_int_equal(parse_built(tweak_printable_challenge, &c), KP_OK);
    assert_int_equal(c->challenge_len, 13);
    assert_memory_equal(c->challenge, "printable-otp", 13);
    csr_free(c);
}

static void test_two_extension_requests_are_rejected(void **state)
{
    struct csr *c = NULL;
    (void)state;
    assert_int_equal(
        parse_built_patched(tweak_two_extension_requests, NID_SMIMECapabilities, NID_ext_req, &c),
        KP_ERR_CSR);
    assert_null(c);
    expect_built_rejected(tweak_ms_and_pkcs9_extension_requests);
}

static void test_duplicate_san_extension_is_rejected(void **state)
{
    (void)state;
    expect_built_rejected(tweak_two_san_extensions);
}

static void test_ip_san_of_wrong_length_is_rejected(void **state)
{
    (void)state;
    expect_built_rejected(tweak_ip_of_five_bytes);
}

static void test_microsoft_extension_request_sans_are_seen(void **state)
{
    struct csr *c = NULL;
    (void)state;
    /* OpenSSL copies extensions from either OID; so must our SAN view. */
    assert_int_equal(parse_built(tweak_ms_extension_request_only, &c), KP_OK);
    check_string(csr_sans_string(c->sans), "DNS:ms.example");
    csr_free(c);
}

static void test_generated_keys_classify_as_their_type(void **state)
{
    static const int types[] = {KEY_EC_P256, KEY_EC_P384, KEY_RSA_2048, KEY_RSA_3072};
    static const int bits[] = {256, 384, 2048, 3072};
    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EVP_PKEY *key = NULL;
        struct csr *c = NULL;
        size_t len;
        unsigned char *der;
        assert_int_equal(keygen_generate((enum key_type)types[i], &key), KP_OK);
        der = build_req(key, NULL, 0, 0, &len);
        assert_int_equal(csr_parse(der, len, &c), KP_OK);
        assert_int_equal(c->key_type, types[i]);
        assert_int_equal(c->key_bits, bits[i]);
        csr_free(c);
        OPENSSL_free(der);
        EVP_PKEY_free(key);
    }
}

static void test_keygen_rejects_unknown_type(void **state)
{
    EVP_PKEY *key = NULL;
    (void)state;
    assert_int_equal(keygen_generate(KEY__MAX, &key), KP_ERR_INTERNAL);
    assert_null(key);
}

/* ---- names ---- */

static GENERAL_NAME *gn_new(int type, const char *value)
{
    GENERAL_NAME *gn = a2i_GENERAL_NAME(NULL, NULL, NULL, type, value, 0);
    assert_non_null(gn);
    return gn;
}

static GENERAL_NAMES *names_of(int n, ...)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        int type = va_arg(ap, int);
        const char *value = va_arg(ap, const char *);
        assert_true(sk_GENERAL_NAME_push(names, gn_new(type, value)) > 0);
    }
    va_end(ap);
    return names;
}

static void test_sans_equal_ignores_order(void **state)
{
    GENERAL_NAMES *a =
        names_of(3, GEN_DNS, "a.example", GEN_IPADD, "192.0.2.1", GEN_EMAIL, "x@example.org");
    GENERAL_NAMES *b =
        names_of(3, GEN_EMAIL, "x@example.org", GEN_DNS, "a.example", GEN_IPADD, "192.0.2.1");
    (void)state;
    assert_int_equal(csr_sans_equal(a, b), 1);
    assert_int_equal(csr_sans_equal(b, a), 1);
    assert_int_equal(csr_sans_equal(a, a), 1);
    GENERAL_NAMES_free(a);
    GENERAL_NAMES_free(b);
}

static void test_sans_equal_sees_differences(void **state)
{
    GENERAL_NAMES *a = names_of(2, GEN_DNS, "a.example", GEN_DNS, "b.example");
    GENERAL_NAMES *b = names_of(2, GEN_DNS, "a.example", GEN_DNS, "c.example");
    GENERAL_NAMES *c = names_of(1, GEN_DNS, "a.example");
    GENERAL_NAMES *d = names_of(2, GEN_DNS, "a.example", GEN_URI, "b.example");
    /* Same set, different multiplicity. */
    GENERAL_NAMES *e =
        names_of(3, GEN_DNS, "a.example", GEN_DNS, "a.example", GEN_DNS, "b.example");
    GENERAL_NAMES *f =
        names_of(3, GEN_DNS, "a.example", GEN_DNS, "b.example", GEN_DNS, "b.example");
    (void)state;
    assert_int_equal(csr_sans_equal(a, b), 0);
    assert_int_equal(csr_sans_equal(a, c), 0);
    assert_int_equal(csr_sans_equal(c, a), 0);
    assert_int_equal(csr_sans_equal(a, d), 0);
    assert_int_equal(csr_sans_equal(e, f), 0);
    assert_int_equal(csr_sans_equal(e, e), 1);
    GENERAL_NAMES_free(a);
    GENERAL_NAMES_free(b);
    GENERAL_NAMES_free(c);
    GENERAL_NAMES_free(d);
    GENERAL_NAMES_free(e);
    GENERAL_NAMES_free(f);
}

static void test_sans_equal_null_equals_empty(void **state)
{
    GENERAL_NAMES *empty = GENERAL_NAMES_new();
    GENERAL_NAMES *one = names_of(1, GEN_DNS, "a.example");
    (void)state;
    assert_int_equal(csr_sans_equal(NULL, NULL), 1);
    assert_int_equal(csr_sans_equal(NULL, empty), 1);
    assert_int_equal(csr_sans_equal(empty, NULL), 1);
    assert_int_equal(csr_sans_equal(NULL, one), 0);
    assert_int_equal(csr_sans_equal(one, NULL), 0);
    GENERAL_NAMES_free(empty);
    GENERAL_NAMES_free(one);
}

/* The fingerprint of a freshly signed request for key, cn, san and challenge
 * (san and challenge may be NULL). */
static void fingerprint_of(EVP_PKEY *key, const char *cn, const char *san, const char *challenge,
                           char fp[CSR_FINGERPRINT_HEX])
{
    X509_REQ *req = X509_REQ_new();
    struct csr *c = NULL;
    unsigned char *der;
    size_t len;

    assert_int_equal(X509_REQ_set_version(req, 0), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (san != NULL) {
        STACK_OF(X509_EXTENSION) *exts = san_exts(san, 1);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (challenge != NULL)
        add_challenge(req, MBSTRING_UTF8, challenge);
    der = sign_to_der(req, key, &len);
    X509_REQ_free(req);
    assert_int_equal(csr_parse(der, len, &c), KP_OK);
    assert_int_equal(csr_fingerprint(c, fp), KP_OK);
    assert_int_equal(strlen(fp), CSR_FINGERPRINT_HEX - 1);
    csr_free(c);
    OPENSSL_free(der);
}

static void test_fingerprint_ignores_the_signature_and_challenge(void **state)
{
    EVP_PKEY *key = NULL, *other = NULL;
    char a[CSR_FINGERPRINT_HEX], b[CSR_FINGERPRINT_HEX];
    (void)state;

    assert_int_equal(keygen_generate(KEY_EC_P256, &key), KP_OK);
    assert_int_equal(keygen_generate(KEY_EC_P256, &other), KP_OK);
    fingerprint_of(key, "fp.example", "DNS:a.example, IP:192.0.2.1", NULL, a);
    /* signed again (ECDSA: another signature), with a challenge, SANs reordered */
    fingerprint_of(key, "fp.example", "DNS:a.example, IP:192.0.2.1", NULL, b);
    assert_string_equal(a, b);
    fingerprint_of(key, "fp.example", "DNS:a.example, IP:192.0.2.1", "binding-of-conn-2", b);
    assert_string_equal(a, b);
    fingerprint_of(key, "fp.example", "IP:192.0.2.1, DNS:a.example", NULL, b);
    assert_string_equal(a, b);
    /* another key, subject or SAN set is another request */
    fingerprint_of(other, "fp.example", "DNS:a.example, IP:192.0.2.1", NULL, b);
    assert_string_not_equal(a, b);
    fingerprint_of(key, "fp2.example", "DNS:a.example, IP:192.0.2.1", NULL, b);
    assert_string_not_equal(a, b);
    fingerprint_of(key, "fp.example", "DNS:a.example", NULL, b);
    assert_string_not_equal(a, b);
    fingerprint_of(key, "fp.example", "DNS:a.example, IP:192.0.2.1, IP:192.0.2.1", NULL, b);
    assert_string_not_equal(a, b);
    fingerprint_of(key, "fp.example", NULL, NULL, b);
    assert_string_not_equal(a, b);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_sans_join_puts_one_name_a_line(void **state)
{
    GENERAL_NAMES *names =
        names_of(3, GEN_DNS, "a.example", GEN_URI, "urn:x,\ny", GEN_IPADD, "192.0.2.1");
    (void)state;
    check_string(csr_sans_join(names, "\n"), "DNS:a.example\nURI:urn:x,\\x0ay\nIP:192.0.2.1");
    GENERAL_NAMES_free(names);
    check_string(csr_sans_join(NULL, "\n"), "");
}

static void test_sans_string_formats_each_name_type(void **state)
{
    GENERAL_NAMES *names =
        names_of(6, GEN_DNS, "a.example", GEN_IPADD, "127.0.0.1", GEN_IPADD, "2001:db8:0:0:0:0:0:1",
                 GEN_EMAIL, "x@y.example", GEN_URI, "https://a.example/p", GEN_RID, "1.2.3.4");
    X509_NAME *dn = X509_NAME_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    (void)state;
    X509_NAME_add_entry_by_txt(dn, "CN", MBSTRING_ASC, (const unsigned char *)"dir", -1, -1, 0);
    GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);
    sk_GENERAL_NAME_push(names, gn);
    check_string(csr_sans_string(names),
                 "DNS:a.example, IP:127.0.0.1, IP:2001:db8::1, email:x@y.example, "
                 "URI:https://a.example/p, RID:1.2.3.4, DirName:CN=dir");
    GENERAL_NAMES_free(names);
    check_string(csr_sans_string(NULL), "");
}

static void test_sans_string_escapes_control_bytes(void **state)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    (void)state;
    ASN1_STRING_set(s, "a\0b,\n", 5);
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    sk_GENERAL_NAME_push(names, gn);
    check_string(csr_sans_string(names), "DNS:a\\x00b,\\x0a");
    GENERAL_NAMES_free(names);
}

static void test_name_string_is_rfc2253(void **state)
{
    X509_NAME *n = X509_NAME_new();
    (void)state;
    X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"NZ", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Kipuka", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"a,b+c", -1, -1, 0);
    check_string(csr_name_string(n), "CN=a\\,b\\+c,O=Kipuka,C=NZ");
    X509_NAME_free(n);
    n = X509_NAME_new();
    check_string(csr_name_string(n), "");
    X509_NAME_free(n);
    check_string(csr_name_string(NULL), "");
}

/* ---- what a certificate may take from a request: key and signature ---- */

/* csr_check_key on a file that parses; want KP_OK, or a refusal whose
 * reason contains what. */
static void expect_key_check(const char *file, enum kp_err want, const char *what)
{
    struct csr *c = NULL;
    const char *why = NULL;
    enum kp_err rc;

    if (parse_file(file, &c) != KP_OK)
        fail_msg("%s does not parse", file);
    rc = csr_check_key(c, &why);
    if (rc != want)
        fail_msg("%s: key check %d (%s), want %d", file, (int)rc, why ? why : "-", (int)want);
    if (what != NULL && (why == NULL || strstr(why, what) == NULL))
        fail_msg("%s: reason \"%s\" does not mention \"%s\"", file, why ? why : "", what);
    csr_free(c);
}

static void test_sound_keys_pass_the_key_check(void **state)
{
    static const char *const files[] = {"ec-p256.der",  "ec-p384.der",  "rsa-2048.der",
                                        "rsa-3072.der", "rsa-4096.der", "ec-compressed.der"};
    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        expect_key_check(files[i], KP_OK, NULL);
}

/* CA/B BR 6.1.6: e = 1 needs no private key at all (the signature is the
 * padded digest), e = 3 is under the 2^16+1 the BR ask for. */
static void test_rsa_exponents_1_and_3_are_refused(void **state)
{
    (void)state;
    expect_key_check("hostile-rsa-e1.der", KP_ERR_KEY_TYPE, "exponent");
    expect_key_check("hostile-rsa-e3.der", KP_ERR_KEY_TYPE, "exponent");
}

/* RFC 3279 2.3.1: rsaEncryption parameters are NULL. */
static void test_rsa_key_with_non_null_parameters_is_refused(void **state)
{
    (void)state;
    expect_key_check("hostile-rsa-params.der", KP_ERR_KEY_TYPE, "NULL");
}

/* RFC 5480 2.2: only uncompressed (04) and compressed (02, 03) points. */
static void test_ec_hybrid_point_is_refused(void **state)
{
    (void)state;
    expect_key_check("hostile-ec-hybrid.der", KP_ERR_KEY_TYPE, "compressed");
}

static void test_other_curves_and_explicit_parameters_fail_the_key_check(void **state)
{
    (void)state;
    expect_key_check("ec-p521.der", KP_ERR_KEY_TYPE, "curve");
    expect_key_check("ec-p256-explicit.der", KP_ERR_KEY_TYPE, "name its curve");
    expect_key_check("ed25519.der", KP_ERR_KEY_TYPE, "algorithm");
}

/* csr_check_signature_alg on a request built here with digest md. */
static enum kp_err sig_check_built(enum key_type type, const EVP_MD *md, const char **why)
{
    EVP_PKEY *key = NULL;
    X509_REQ *req = X509_REQ_new();
    unsigned char *der = NULL;
    struct csr *c = NULL;
    enum kp_err rc;
    int len;

    assert_int_equal(keygen_generate(type, &key), KP_OK);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                                (const unsigned char *)"sig.example", -1, -1, 0),
                     1);
    assert_true(X509_REQ_sign(req, key, md) > 0);
    len = i2d_X509_REQ(req, &der);
    assert_true(len > 0);
    assert_int_equal(csr_parse(der, (size_t)len, &c), KP_OK);
    *why = NULL;
    rc = csr_check_signature_alg(c, why);
    csr_free(c);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

static void test_sha2_signatures_pass(void **state)
{
    const char *why;
    (void)state;
    assert_int_equal(sig_check_built(KEY_EC_P256, EVP_sha256(), &why), KP_OK);
    assert_int_equal(sig_check_built(KEY_EC_P384, EVP_sha384(), &why), KP_OK);
    assert_int_equal(sig_check_built(KEY_RSA_2048, EVP_sha512(), &why), KP_OK);
    assert_int_equal(sig_check_built(KEY_RSA_2048, EVP_sha256(), &why), KP_OK);
}

static void test_sha1_md5_and_sha224_signatures_are_refused(void **state)
{
    const char *why;
    struct csr *c = NULL;
    (void)state;
    assert_int_equal(sig_check_built(KEY_EC_P256, EVP_sha1(), &why), KP_ERR_POLICY);
    assert_non_null(strstr(why, "SHA-1"));
    assert_int_equal(sig_check_built(KEY_RSA_2048, EVP_sha1(), &why), KP_ERR_POLICY);
    assert_non_null(strstr(why, "SHA-1"));
    assert_int_equal(sig_check_built(KEY_RSA_2048, EVP_md5(), &why), KP_ERR_POLICY);
    assert_non_null(strstr(why, "MD5"));
    assert_int_equal(sig_check_built(KEY_EC_P256, EVP_sha224(), &why), KP_ERR_POLICY);
    /* the checked-in ones, signed outside OpenSSL */
    assert_int_equal(parse_file("hostile-sha1.der", &c), KP_OK);
    assert_int_equal(csr_check_signature_alg(c, &why), KP_ERR_POLICY);
    csr_free(c);
    c = NULL;
    assert_int_equal(parse_file("hostile-md5.der", &c), KP_OK);
    assert_int_equal(csr_check_signature_alg(c, &why), KP_ERR_POLICY);
    csr_free(c);
}

/* OpenSSL checks UTF8String while parsing a name: an overlong '/' is no
 * request at all. */
static void test_subject_with_invalid_utf8_is_malformed(void **state)
{
    (void)state;
    expect_rejected("hostile-cn-overlong.der", KP_ERR_CSR);
}

/* The subject is a copy of the request's, in DER, RDN grouping kept. */
static void test_subject_is_a_der_copy_of_the_request_subject(void **state)
{
    struct csr *c = NULL;
    X509_REQ *req = openssl_req("hostile-multi-rdn.der");
    const X509_NAME *orig = X509_REQ_get_subject_name(req);
    (void)state;

    assert_int_equal(parse_file("hostile-multi-rdn.der", &c), KP_OK);
    assert_ptr_not_equal(c->subject, orig);
    assert_int_equal(X509_NAME_cmp(c->subject, orig), 0);
    assert_int_equal(X509_NAME_entry_count(c->subject), 2);
    assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(c->subject, 0)),
                     X509_NAME_ENTRY_set(X509_NAME_get_entry(c->subject, 1)));
    X509_REQ_free(req);
    csr_free(c);
}

/* A BER constructed UTF8String in the request comes out primitive: what a
 * certificate gets is DER, whatever the request's encoding was. */
static void test_ber_subject_is_reencoded_as_der(void **state)
{
    static const unsigned char want[] = {0x0c, 0x0b, 'b', 'e', 'r', '.', 'e',
                                         'x',  'a',  'm', 'p', 'l', 'e'};
    unsigned char *mine = NULL, *theirs = NULL;
    struct csr *c = NULL;
    X509_REQ *req = openssl_req("cn-ber-constructed.der");
    int n, m;
    (void)state;

    assert_int_equal(parse_file("cn-ber-constructed.der", &c), KP_OK);
    check_string(csr_name_string(c->subject), "CN=ber.example");
    n = i2d_X509_NAME(c->subject, &mine);
    m = i2d_X509_NAME(X509_REQ_get_subject_name(req), &theirs);
    assert_true(n > 0 && m > 0);
    /* the request's own bytes keep the constructed string (tag 0x2c) */
    assert_int_equal(m, 28);
    assert_int_equal(theirs[11], 0x2c);
    assert_int_equal(n, 11 + (int)sizeof(want));
    assert_memory_equal(mine + n - sizeof(want), want, sizeof(want));
    OPENSSL_free(mine);
    OPENSSL_free(theirs);
    X509_REQ_free(req);
    csr_free(c);
}

/* spki_set: DER from the key's numbers, equal to OpenSSL's own encoding of
 * the same key, EC points uncompressed. */
static unsigned char *spki_der(const EVP_PKEY *key, int *len)
{
    X509_PUBKEY *pub = X509_PUBKEY_new();
    unsigned char *der = NULL;

    assert_non_null(pub);
    assert_int_equal(spki_set(pub, key), 1);
    *len = i2d_X509_PUBKEY(pub, &der);
    assert_true(*len > 0);
    X509_PUBKEY_free(pub);
    return der;
}

static void test_spki_is_encoded_from_the_key(void **state)
{
    static const int types[] = {KEY_EC_P256, KEY_EC_P384, KEY_RSA_2048};
    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EVP_PKEY *key = NULL;
        unsigned char *mine, *theirs = NULL;
        int n, m;
        assert_int_equal(keygen_generate((enum key_type)types[i], &key), KP_OK);
        mine = spki_der(key, &n);
        m = i2d_PUBKEY(key, &theirs);
        assert_int_equal(n, m);
        assert_memory_equal(mine, theirs, (size_t)n);
        OPENSSL_free(mine);
        OPENSSL_free(theirs);
        EVP_PKEY_free(key);
    }
}

static void test_spki_of_a_compressed_point_is_uncompressed(void **state)
{
    struct csr *c = NULL;
    X509_REQ *req = openssl_req("ec-compressed.der");
    unsigned char *der;
    const unsigned char *p, *bits;
    X509_PUBKEY *back;
    EVP_PKEY *key;
    int len, blen;
    (void)state;

    assert_int_equal(parse_file("ec-compressed.der", &c), KP_OK);
    assert_int_equal(c->key_type, KEY_EC_P256);
    assert_int_equal(
        X509_PUBKEY_get0_param(NULL, &bits, &blen, NULL, X509_REQ_get_X509_PUBKEY(req)), 1);
    assert_int_equal(blen, 33);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), c->pubkey), 1);
    X509_REQ_free(req);
    der = spki_der(c->pubkey, &len);
    p = der;
    back = d2i_X509_PUBKEY(NULL, &p, len);
    assert_non_null(back);
    assert_int_equal(X509_PUBKEY_get0_param(NULL, &bits, &blen, NULL, back), 1);
    assert_int_equal(blen, 65);
    assert_int_equal(bits[0], 0x04);
    key = X509_PUBKEY_get0(back);
    assert_non_null(key);
    assert_int_equal(EVP_PKEY_eq(key, c->pubkey), 1);
    X509_PUBKEY_free(back);
    OPENSSL_free(der);
    csr_free(c);
}

static void test_spki_of_other_key_types_goes_through_openssl(void **state)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    unsigned char *mine, *theirs = NULL;
    int n, m;
    (void)state;

    assert_non_null(key);
    mine = spki_der(key, &n);
    m = i2d_PUBKEY(key, &theirs);
    assert_int_equal(n, m);
    assert_memory_equal(mine, theirs, (size_t)n);
    OPENSSL_free(mine);
    OPENSSL_free(theirs);
    EVP_PKEY_free(key);
}

static void test_free_accepts_null(void **state)
{
    (void)state;
    csr_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests_parse_with_their_key_type),
        cmocka_unit_test(test_rsa_1024_parses_with_unknown_key_type),
        cmocka_unit_test(test_ec_p521_parses_with_unknown_key_type),
        cmocka_unit_test(test_ed25519_parses_with_unknown_key_type),
        cmocka_unit_test(test_explicit_curve_parameters_are_not_p256),
        cmocka_unit_test(test_challenge_password_is_extracted),
        cmocka_unit_test(test_request_without_san_has_null_sans),
        cmocka_unit_test(test_broken_signature_is_rejected),
        cmocka_unit_test(test_truncated_der_is_rejected),
        cmocka_unit_test(test_trailing_garbage_is_rejected),
        cmocka_unit_test(test_empty_file_is_rejected),
        cmocka_unit_test(test_random_junk_is_rejected),
        cmocka_unit_test(test_request_over_max_size_is_rejected),
        cmocka_unit_test(test_malformed_san_extension_is_rejected),
        cmocka_unit_test(test_dns_name_with_nul_is_rejected),
        cmocka_unit_test(test_null_and_zero_length_input_are_rejected),
        cmocka_unit_test(test_length_just_over_max_is_rejected),
        cmocka_unit_test(test_every_truncation_is_rejected),
        cmocka_unit_test(test_bit_flips_never_crash_or_leak),
        cmocka_unit_test(test_multivalued_challenge_password_is_rejected),
        cmocka_unit_test(test_repeated_challenge_password_is_rejected),
        cmocka_unit_test(test_non_string_challenge_password_is_rejected),
        cmocka_unit_test(test_challenge_password_string_types_are_accepted),
        cmocka_unit_test(test_two_extension_requests_are_rejected),
        cmocka_unit_test(test_duplicate_san_extension_is_rejected),
        cmocka_unit_test(test_ip_san_of_wrong_length_is_rejected),
        cmocka_unit_test(test_microsoft_extension_request_sans_are_seen),
        cmocka_unit_test(test_generated_keys_classify_as_their_type),
        cmocka_unit_test(test_keygen_rejects_unknown_type),
        cmocka_unit_test(test_sans_equal_ignores_order),
        cmocka_unit_test(test_sans_equal_sees_differences),
        cmocka_unit_test(test_sans_equal_null_equals_empty),
        cmocka_unit_test(test_fingerprint_ignores_the_signature_and_challenge),
        cmocka_unit_test(test_sans_join_puts_one_name_a_line),
        cmocka_unit_test(test_sans_string_formats_each_name_type),
        cmocka_unit_test(test_sans_string_escapes_control_bytes),
        cmocka_unit_test(test_name_string_is_rfc2253),
        cmocka_unit_test(test_sound_keys_pass_the_key_check),
        cmocka_unit_test(test_rsa_exponents_1_and_3_are_refused),
        cmocka_unit_test(test_rsa_key_with_non_null_parameters_is_refused),
        cmocka_unit_test(test_ec_hybrid_point_is_refused),
        cmocka_unit_test(test_other_curves_and_explicit_parameters_fail_the_key_check),
        cmocka_unit_test(test_sha2_signatures_pass),
        cmocka_unit_test(test_sha1_md5_and_sha224_signatures_are_refused),
        cmocka_unit_test(test_subject_with_invalid_utf8_is_malformed),
        cmocka_unit_test(test_subject_is_a_der_copy_of_the_request_subject),
        cmocka_unit_test(test_ber_subject_is_reencoded_as_der),
        cmocka_unit_test(test_spki_is_encoded_from_the_key),
        cmocka_unit_test(test_spki_of_a_compressed_point_is_uncompressed),
        cmocka_unit_test(test_spki_of_other_key_types_goes_through_openssl),
        cmocka_unit_test(test_free_accepts_null),
    };
    /* KP_TEST_DEBUG=1 shows why each hostile input was refused. */
    if (getenv("KP_TEST_DEBUG") != NULL)
        log_setup(LOG_DEBUG, LOG_TEXT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
