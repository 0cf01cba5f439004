/* The auth layer: HTTP Basic parsing (RFC 7617), OTP generation, hashing and
 * key files, the RFC 7030 3.5 channel-binding check, and what an OTP may
 * certify (otpbind), the DTLS PSK file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/basic.h"
#include "auth/chanbind.h"
#include "auth/otp.h"
#include "auth/otpbind.h"
#include "auth/psk.h"
#include "core/base64.h"
#include "core/xalloc.h"

static const char otp_alphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";

struct fixture {
    char dir[64];
    char *user, *pass; /* last basic_parse result, freed by fx_reset */
    char *path;
};

static int fx_setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kp-test-auth-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int fx_teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void fx_clear(struct fixture *fx)
{
    free(fx->user);
    free(fx->pass);
    free(fx->path);
    fx->user = fx->pass = fx->path = NULL;
}

static int fx_reset(void **state)
{
    fx_clear(*state);
    return 0;
}

static char *fx_file(struct fixture *fx, const char *name)
{
    free(fx->path);
    fx->path = xasprintf("%s/%s", fx->dir, name);
    return fx->path;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0); /* a key file others may read is refused */
}

/* ---- basic_parse ---- */

static void expect_basic(struct fixture *fx, const char *header, const char *user, const char *pass)
{
    enum kp_err rc;

    fx_clear(fx);
    rc = basic_parse(header, &fx->user, &fx->pass);
    if (rc != KP_OK)
        fail_msg("\"%s\": rc %d", header, (int)rc);
    assert_string_equal(fx->user, user);
    assert_string_equal(fx->pass, pass);
}

static void expect_basic_refused(struct fixture *fx, const char *header)
{
    enum kp_err rc;

    fx_clear(fx);
    rc = basic_parse(header, &fx->user, &fx->pass);
    if (rc != KP_ERR_UNAUTHORIZED)
        fail_msg("\"%.60s\": rc %d, want KP_ERR_UNAUTHORIZED", header ? header : "(null)", (int)rc);
    assert_null(fx->user);
    assert_null(fx->pass);
}

/* "Basic " + base64(raw) (raw_len bytes, may hold NULs). */
static char *basic_of(const void *raw, size_t raw_len)
{
    char *b64 = base64_encode(raw, raw_len, NULL);
    char *h;
    b64[strcspn(b64, "\n")] = '\0'; /* short inputs: one line */
    h = xasprintf("Basic %s", b64);
    free(b64);
    return h;
}

static void test_basic_header_yields_user_and_password(void **state)
{
    expect_basic(*state, "Basic ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=", "device-001", "a7f3b9c2d1e4");
}

static void test_basic_scheme_is_case_insensitive(void **state)
{
    expect_basic(*state, "basic ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=", "device-001", "a7f3b9c2d1e4");
    expect_basic(*state, "BASIC ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=", "device-001", "a7f3b9c2d1e4");
    expect_basic(*state, "bAsIc\tZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=", "device-001", "a7f3b9c2d1e4");
    expect_basic(*state, "Basic    ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=", "device-001", "a7f3b9c2d1e4");
}

static void test_password_containing_colons_is_kept_whole(void **state)
{
    char *h = basic_of("dev:pa:ss:word:", 15);
    expect_basic(*state, h, "dev", "pa:ss:word:");
    free(h);
}

static void test_basic_without_colon_is_refused(void **state)
{
    char *h = basic_of("device-001", 10);
    expect_basic_refused(*state, h);
    free(h);
}

static void test_basic_with_empty_user_is_refused(void **state)
{
    char *h = basic_of(":secret", 7);
    expect_basic_refused(*state, h);
    free(h);
}

static void test_other_schemes_are_refused(void **state)
{
    expect_basic_refused(*state, "Bearer x");
    expect_basic_refused(*state, "Bearer ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=");
    expect_basic_refused(*state, "Digest username=\"a\"");
    expect_basic_refused(*state, "BasicZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=");
    expect_basic_refused(*state, "Basicx ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=");
    expect_basic_refused(*state, "Basic");
    expect_basic_refused(*state, "Basic ");
    expect_basic_refused(*state, "Basic    ");
    expect_basic_refused(*state, "");
    expect_basic_refused(*state, NULL);
}

static void test_basic_with_bad_base64_is_refused(void **state)
{
    expect_basic_refused(*state, "Basic ZGV2aWNl*TAwMTphN2YzYjljMmQxZTQ=");
    expect_basic_refused(*state, "Basic ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ=x");
    expect_basic_refused(*state, "Basic ZGV2aWNlLTAw==MTphN2YzYjljMmQxZTQ=");
    expect_basic_refused(*state, "Basic ZGV2aWNlLTAwMTphN2YzYjljMmQxZTQ= ,realm");
}

static void test_basic_with_nul_inside_is_refused(void **state)
{
    char *h = basic_of("dev\0ice:secret", 14);
    expect_basic_refused(*state, h);
    free(h);
    h = basic_of("device:sec\0ret", 14);
    expect_basic_refused(*state, h);
    free(h);
}

/* "Basic" + spaces spaces + base64 of 750 bytes (1000 characters). */
static char *basic_of_length(size_t spaces)
{
    unsigned char raw[750];
    char *b64, *h;

    memset(raw, 'p', sizeof(raw));
    memcpy(raw, "u:", 2);
    b64 = base64_encode(raw, sizeof(raw), NULL);
    /* unwrap the 64-column lines: one header line */
    {
        size_t o = 0;
        for (size_t i = 0; b64[i]; i++)
            if (b64[i] != '\n')
                b64[o++] = b64[i];
        b64[o] = '\0';
    }
    assert_int_equal(strlen(b64), 1000);
    h = xasprintf("Basic%*s%s", (int)spaces, "", b64);
    free(b64);
    return h;
}

static void test_basic_header_over_1024_characters_is_refused(void **state)
{
    struct fixture *fx = *state;
    char *h = basic_of_length(19);

    assert_int_equal(strlen(h), 1024);
    fx_clear(fx);
    assert_int_equal(basic_parse(h, &fx->user, &fx->pass), KP_OK);
    assert_string_equal(fx->user, "u");
    assert_int_equal(strlen(fx->pass), 748);
    free(h);

    h = basic_of_length(20);
    assert_int_equal(strlen(h), 1025);
    expect_basic_refused(fx, h);
    free(h);
}

/* ---- OTPs ---- */

static void test_generated_otp_is_20_characters_of_the_alphabet(void **state)
{
    char seen[256] = {0};
    char otp[OTP_LEN + 1];
    (void)state;

    for (int n = 0; n < 1000; n++) {
        memset(otp, 'X', sizeof(otp));
        assert_int_equal(otp_generate(otp), KP_OK);
        assert_int_equal(strlen(otp), 20);
        for (size_t i = 0; i < OTP_LEN; i++) {
            if (strchr(otp_alphabet, otp[i]) == NULL)
                fail_msg("'%c' in \"%s\" is not in the alphabet", otp[i], otp);
            seen[(unsigned char)otp[i]] = 1;
        }
    }
    /* 20000 draws: every one of the 32 letters turns up */
    for (size_t i = 0; i < strlen(otp_alphabet); i++)
        if (!seen[(unsigned char)otp_alphabet[i]])
            fail_msg("'%c' never generated", otp_alphabet[i]);
}

static void test_two_generated_otps_differ(void **state)
{
    char a[OTP_LEN + 1], b[OTP_LEN + 1];
    (void)state;
    assert_int_equal(otp_generate(a), KP_OK);
    assert_int_equal(otp_generate(b), KP_OK);
    assert_string_not_equal(a, b);
}

static void test_otp_hash_is_hmac_sha256_under_the_key(void **state)
{
    /* RFC 4231 4.3 (test case 2): a short key is zero-padded, so "Jefe" and
     * "Jefe" + 28 zero bytes are the same HMAC key. */
    static const unsigned char want[STORE_OTP_HASH_LEN] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
        0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
        0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    unsigned char key[OTP_KEY_LEN] = {'J', 'e', 'f', 'e'};
    unsigned char got[STORE_OTP_HASH_LEN];
    const char *data = "what do ya want for nothing?";
    (void)state;

    otp_hash(key, data, strlen(data), got);
    assert_memory_equal(got, want, sizeof(want));
}

static void test_otp_hash_is_deterministic_and_key_dependent(void **state)
{
    unsigned char k1[OTP_KEY_LEN], k2[OTP_KEY_LEN];
    unsigned char h1[STORE_OTP_HASH_LEN], h2[STORE_OTP_HASH_LEN], h3[STORE_OTP_HASH_LEN],
        h4[STORE_OTP_HASH_LEN];
    (void)state;

    memset(k1, 0x11, sizeof(k1));
    memcpy(k2, k1, sizeof(k2));
    k2[31] ^= 1;
    otp_hash(k1, "abcdefghijkmnpqrstuv", 20, h1);
    otp_hash(k1, "abcdefghijkmnpqrstuv", 20, h2);
    otp_hash(k2, "abcdefghijkmnpqrstuv", 20, h3);
    otp_hash(k1, "abcdefghijkmnpqrstuw", 20, h4);
    assert_memory_equal(h1, h2, sizeof(h1));
    assert_memory_not_equal(h1, h3, sizeof(h1));
    assert_memory_not_equal(h1, h4, sizeof(h1));
    /* only otp_len bytes count */
    otp_hash(k1, "abcdefghijkmnpqrstuvXYZ", 20, h2);
    assert_memory_equal(h1, h2, sizeof(h1));
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void test_otp_key_create_writes_a_0600_hex_key(void **state)
{
    struct fixture *fx = *state;
    const char *path = fx_file(fx, "create.key");
    struct stat st;
    char text[100] = {0};
    FILE *f;
    size_t n;

    assert_int_equal(otp_key_create(path), KP_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    assert_int_equal(n, OTP_KEY_LEN * 2 + 1);
    assert_int_equal(text[OTP_KEY_LEN * 2], '\n');
    for (size_t i = 0; i < OTP_KEY_LEN * 2; i++)
        assert_true(hexval(text[i]) >= 0);
}

static void test_otp_key_create_refuses_to_overwrite(void **state)
{
    struct fixture *fx = *state;
    const char *path = fx_file(fx, "existing.key");
    static const char mine[] = "do not touch\n";
    char text[64] = {0};
    FILE *f;

    write_bytes(path, mine, strlen(mine));
    assert_int_equal(otp_key_create(path), KP_ERR_EXISTS);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(text, 1, sizeof(text) - 1, f), strlen(mine));
    fclose(f);
    assert_string_equal(text, mine);

    path = fx_file(fx, "twice.key");
    assert_int_equal(otp_key_create(path), KP_OK);
    assert_int_equal(otp_key_create(path), KP_ERR_EXISTS);
}

static void test_otp_key_load_returns_the_created_key(void **state)
{
    struct fixture *fx = *state;
    const char *path = fx_file(fx, "roundtrip.key");
    unsigned char key[OTP_KEY_LEN], again[OTP_KEY_LEN], want[OTP_KEY_LEN];
    char text[100] = {0};
    FILE *f;

    assert_int_equal(otp_key_create(path), KP_OK);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(text, 1, sizeof(text) - 1, f), OTP_KEY_LEN * 2 + 1);
    fclose(f);
    for (size_t i = 0; i < OTP_KEY_LEN; i++)
        want[i] = (unsigned char)(hexval(text[2 * i]) << 4 | hexval(text[2 * i + 1]));

    assert_int_equal(otp_key_load(path, key), KP_OK);
    assert_memory_equal(key, want, OTP_KEY_LEN);
    assert_int_equal(otp_key_load(path, again), KP_OK);
    assert_memory_equal(key, again, OTP_KEY_LEN);

    /* two created keys differ */
    path = fx_file(fx, "roundtrip2.key");
    assert_int_equal(otp_key_create(path), KP_OK);
    assert_int_equal(otp_key_load(path, again), KP_OK);
    assert_memory_not_equal(key, again, OTP_KEY_LEN);
}

static void test_otp_key_load_accepts_crlf_ending(void **state)
{
    struct fixture *fx = *state;
    const char *path = fx_file(fx, "crlf.key");
    char text[OTP_KEY_LEN * 2 + 3];
    unsigned char key[OTP_KEY_LEN];

    for (size_t i = 0; i < OTP_KEY_LEN * 2; i++)
        text[i] = "0123456789abcdef"[i % 16];
    memcpy(text + OTP_KEY_LEN * 2, "\r\n", 2);
    write_bytes(path, text, sizeof(text) - 1);
    assert_int_equal(otp_key_load(path, key), KP_OK);
    assert_int_equal(key[0], 0x01);
    assert_int_equal(key[7], 0xef);
}

static void test_otp_key_load_refuses_a_file_others_may_read(void **state)
{
    struct fixture *fx = *state;
    const char *path = fx_file(fx, "loose.key");
    char text[OTP_KEY_LEN * 2 + 1];
    unsigned char key[OTP_KEY_LEN];

    memset(text, 'a', OTP_KEY_LEN * 2);
    text[OTP_KEY_LEN * 2] = '\n';
    write_bytes(path, text, sizeof(text));
    assert_int_equal(otp_key_load(path, key), KP_OK);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(otp_key_load(path, key), KP_ERR_CONFIG);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(otp_key_load(path, key), KP_ERR_CONFIG);
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(otp_key_load(path, key), KP_OK);
}

static void expect_bad_key_file(struct fixture *fx, const char *content, size_t len)
{
    const char *path = fx_file(fx, "bad.key");
    unsigned char key[OTP_KEY_LEN];

    remove(path);
    write_bytes(path, content, len);
    if (otp_key_load(path, key) == KP_OK)
        fail_msg("key file \"%.*s\" accepted", (int)len, content);
}

static void test_bad_otp_key_file_is_rejected(void **state)
{
    struct fixture *fx = *state;
    char text[200];
    unsigned char key[OTP_KEY_LEN];

    memset(text, 'a', sizeof(text));
    expect_bad_key_file(fx, "", 0);
    expect_bad_key_file(fx, "\n", 1);
    expect_bad_key_file(fx, text, OTP_KEY_LEN * 2 - 1); /* one short */
    expect_bad_key_file(fx, text, OTP_KEY_LEN * 2 + 1); /* one too many */
    expect_bad_key_file(fx, text, OTP_KEY_LEN);         /* raw 32 bytes, not hex */
    text[10] = 'g';
    expect_bad_key_file(fx, text, OTP_KEY_LEN * 2);
    text[10] = ' ';
    expect_bad_key_file(fx, text, OTP_KEY_LEN * 2);
    text[10] = '\0';
    expect_bad_key_file(fx, text, OTP_KEY_LEN * 2);
    expect_bad_key_file(fx, text, sizeof(text)); /* much too long */

    assert_int_equal(otp_key_load(fx_file(fx, "missing.key"), key), KP_ERR_IO);
}

/* ---- channel binding ---- */

/* base64 of bytes as a client puts it in challengePassword (no newline). */
static char *cb_text(const unsigned char *b, size_t len)
{
    char *s = base64_encode(b, len, NULL);
    s[strcspn(s, "\n")] = '\0';
    return s;
}

static void fill(unsigned char *b, size_t len, unsigned char seed)
{
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(seed + i * 13);
}

static enum kp_err cb_check(enum cb_policy p, const char *challenge, const unsigned char *binding,
                            size_t binding_len)
{
    return chanbind_check(p, (const unsigned char *)challenge, challenge ? strlen(challenge) : 0,
                          binding, binding_len);
}

static void test_absent_challenge_passes_when_binding_is_optional(void **state)
{
    unsigned char b[32];
    (void)state;
    fill(b, sizeof(b), 1);
    assert_int_equal(chanbind_check(CB_OPTIONAL, NULL, 0, b, sizeof(b)), KP_OK);
    assert_int_equal(chanbind_check(CB_OPTIONAL, NULL, 0, NULL, 0), KP_OK);
}

static void test_absent_challenge_fails_when_binding_is_required(void **state)
{
    unsigned char b[32];
    (void)state;
    fill(b, sizeof(b), 1);
    assert_int_equal(chanbind_check(CB_REQUIRED, NULL, 0, b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    assert_int_equal(chanbind_check(CB_REQUIRED, NULL, 0, NULL, 0), KP_ERR_CHANNEL_BINDING);
}

static void test_correct_binding_passes_for_tls_unique_and_exporter_sizes(void **state)
{
    static const size_t sizes[] = {12, 32};
    (void)state;

    for (size_t i = 0; i < 2; i++) {
        unsigned char b[32];
        char *c;
        fill(b, sizes[i], (unsigned char)(7 + i));
        c = cb_text(b, sizes[i]);
        assert_int_equal(cb_check(CB_OPTIONAL, c, b, sizes[i]), KP_OK);
        assert_int_equal(cb_check(CB_REQUIRED, c, b, sizes[i]), KP_OK);
        free(c);
    }
}

static void test_wrong_binding_of_the_right_size_fails_even_when_optional(void **state)
{
    static const size_t sizes[] = {12, 32};
    (void)state;

    for (size_t i = 0; i < 2; i++) {
        unsigned char b[32], other[32];
        char *c;
        fill(b, sizes[i], 3);
        memcpy(other, b, sizes[i]);
        other[sizes[i] - 1] ^= 0x01; /* last byte differs */
        c = cb_text(other, sizes[i]);
        assert_int_equal(cb_check(CB_OPTIONAL, c, b, sizes[i]), KP_ERR_CHANNEL_BINDING);
        assert_int_equal(cb_check(CB_REQUIRED, c, b, sizes[i]), KP_ERR_CHANNEL_BINDING);
        free(c);
    }
}

static void test_plain_password_is_refused_under_either_policy(void **state)
{
    unsigned char b[32];
    (void)state;
    fill(b, sizeof(b), 9);

    /* not base64 at all */
    assert_int_equal(cb_check(CB_OPTIONAL, "s3cret-otp!", b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    assert_int_equal(cb_check(CB_REQUIRED, "s3cret-otp!", b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    /* valid base64, but of 6 bytes: not this connection's 32-byte binding */
    assert_int_equal(cb_check(CB_OPTIONAL, "password", b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    assert_int_equal(cb_check(CB_REQUIRED, "password", b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    /* an empty challengePassword */
    assert_int_equal(cb_check(CB_OPTIONAL, "", b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    assert_int_equal(cb_check(CB_REQUIRED, "", b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
}

static void test_binding_of_another_size_does_not_match_even_when_optional(void **state)
{
    unsigned char b[32];
    char *c;
    (void)state;

    /* the right first 12 bytes while the connection's binding is 32 bytes long */
    fill(b, sizeof(b), 5);
    c = cb_text(b, 12);
    assert_int_equal(cb_check(CB_OPTIONAL, c, b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    assert_int_equal(cb_check(CB_REQUIRED, c, b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
    free(c);
    /* a longer value that starts with the whole binding */
    {
        unsigned char longer[40];
        memcpy(longer, b, sizeof(b));
        memset(longer + sizeof(b), 0, sizeof(longer) - sizeof(b));
        c = cb_text(longer, sizeof(longer));
        assert_int_equal(cb_check(CB_OPTIONAL, c, b, sizeof(b)), KP_ERR_CHANNEL_BINDING);
        free(c);
    }
}

static void test_challenge_without_a_connection_binding_is_refused(void **state)
{
    unsigned char b[12];
    char *c;
    (void)state;

    fill(b, sizeof(b), 2);
    c = cb_text(b, sizeof(b));
    assert_int_equal(cb_check(CB_OPTIONAL, c, NULL, 0), KP_ERR_CHANNEL_BINDING);
    assert_int_equal(cb_check(CB_REQUIRED, c, NULL, 0), KP_ERR_CHANNEL_BINDING);
    free(c);
}

/* ---- otpbind: what an OTP may certify ---- */

static X509_NAME *name_of(const char *const *pairs)
{
    X509_NAME *n = X509_NAME_new();
    for (; pairs[0] != NULL; pairs += 2)
        assert_int_equal(X509_NAME_add_entry_by_txt(n, pairs[0], MBSTRING_UTF8,
                                                    (const unsigned char *)pairs[1], -1, -1, 0),
                         1);
    return n;
}

/* GENERAL_NAMES from "DNS:a,IP:1.2.3.4" through OpenSSL's own config parser. */
static GENERAL_NAMES *gens(const char *list)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, list);
    GENERAL_NAMES *g;

    assert_non_null(ext);
    g = X509V3_EXT_d2i(ext);
    X509_EXTENSION_free(ext);
    assert_non_null(g);
    return g;
}

static enum kp_err bind_check(const struct otpbind_rules *r, const char *const *subject,
                              const char *sans, const char **why)
{
    X509_NAME *n = name_of(subject);
    GENERAL_NAMES *g = sans ? gens(sans) : NULL;
    enum kp_err rc = otpbind_check(r, n, g, why);

    X509_NAME_free(n);
    GENERAL_NAMES_free(g);
    return rc;
}

static void test_entity_ids_an_otp_cannot_authenticate_with_are_refused(void **state)
{
    char longid[OTPBIND_ENTITY_MAX + 2];

    (void)state;
    assert_null(otpbind_entity_check("device-001"));
    assert_null(otpbind_entity_check("Ünïcode device 7"));
    assert_non_null(otpbind_entity_check(""));
    assert_non_null(otpbind_entity_check(NULL));
    assert_non_null(strstr(otpbind_entity_check("dev:1"), "':'"));
    assert_non_null(otpbind_entity_check("dev\n1"));
    assert_non_null(otpbind_entity_check("dev\x01"));
    assert_non_null(otpbind_entity_check("dev\x7f"));
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_non_null(otpbind_entity_check(longid));
    longid[OTPBIND_ENTITY_MAX] = '\0';
    assert_null(otpbind_entity_check(longid));
}

static void test_bound_subject_is_parsed_and_written_back_the_same(void **state)
{
    char *c = NULL, *c2 = NULL;

    (void)state;
    assert_null(otpbind_subject_parse("/CN=a\\/b.example.com/O=Ex\\\\ample/C=FR", &c));
    assert_string_equal(c, "/CN=a\\/b.example.com/O=Ex\\\\ample/C=FR");
    assert_null(otpbind_subject_parse(c, &c2));
    assert_string_equal(c, c2);
    free(c);
    free(c2);
    c = NULL;
    assert_null(otpbind_subject_parse("/commonName=x/2.5.4.10=y", &c));
    assert_string_equal(c, "/CN=x/O=y");
    free(c);
    c = NULL;
    assert_non_null(otpbind_subject_parse("CN=x", &c));
    assert_non_null(otpbind_subject_parse("/", &c));
    assert_non_null(otpbind_subject_parse("/CN=", &c));
    assert_non_null(otpbind_subject_parse("/CN", &c));
    assert_non_null(otpbind_subject_parse("/CN=x\\", &c));
    assert_non_null(otpbind_subject_parse("/NOPE=x", &c));
    assert_non_null(otpbind_subject_parse("/C=FRA", &c));
    assert_non_null(otpbind_subject_parse("/CN=a\tb", &c));
    assert_null(c);
}

static void test_bound_sans_are_parsed_into_one_canonical_list(void **state)
{
    const char *ok[] = {"DNS:Printer-7.Example.COM", "ip:192.0.2.7", "IP:2001:DB8:0::1",
                        "email:ops@example.com", "URI:https://example.com/x"};
    const char *bad[][1] = {{"RID:1.2.3"},      {"DNS:"},           {"DNS:a b"},
                            {"DNS:-a.example"}, {"DNS:a..example"}, {"IP:300.1.1.1"},
                            {"email:nobody"},   {"URI:x,y"},        {"novalue"}};
    const char *many[OTPBIND_SANS_MAX + 1];
    char *c = NULL;

    (void)state;
    assert_null(otpbind_sans_parse(ok, 5, &c));
    assert_string_equal(c, "DNS:printer-7.example.com,IP:192.0.2.7,IP:2001:db8::1,"
                           "email:ops@example.com,URI:https://example.com/x");
    free(c);
    c = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_non_null(otpbind_sans_parse(bad[i], 1, &c));
    for (size_t i = 0; i < OTPBIND_SANS_MAX + 1; i++)
        many[i] = "DNS:a.example";
    assert_non_null(otpbind_sans_parse(many, OTPBIND_SANS_MAX + 1, &c));
    assert_non_null(otpbind_sans_parse(many, 0, &c));
    assert_null(c);
}

static void test_entity_rule_allows_only_the_entity_and_names_under_it(void **state)
{
    struct otpbind_rules r = {.entity = "device-001", .entity_rule = true};
    const char *cn_fqdn[] = {"CN", "device-001.example.com", "O", "Example", NULL};
    const char *cn_bare[] = {"CN", "device-001", NULL};
    const char *cn_other[] = {"CN", "device-002.example.com", NULL};
    const char *cn_prefix[] = {"CN", "device-0011.example.com", NULL};
    const char *cn_dotonly[] = {"CN", "device-001.", NULL};
    const char *cn_two[] = {"CN", "device-001.example.com", "CN", "bank.example", NULL};
    const char *no_cn[] = {"O", "Example", NULL};
    const char *why = NULL;

    (void)state;
    assert_int_equal(bind_check(&r, cn_fqdn, NULL, &why), KP_OK);
    assert_int_equal(bind_check(&r, cn_bare, "DNS:device-001,DNS:device-001.lan", &why), KP_OK);
    assert_int_equal(bind_check(&r, cn_other, NULL, &why), KP_ERR_FORBIDDEN);
    assert_non_null(strstr(why, "CN"));
    assert_int_equal(bind_check(&r, cn_prefix, NULL, &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, cn_dotonly, NULL, &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, cn_two, NULL, &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, no_cn, NULL, &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, cn_fqdn, "DNS:www.bank.example", &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, cn_fqdn, "DNS:*.device-001.example.com", &why),
                     KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, cn_fqdn, "IP:192.0.2.1", &why), KP_ERR_FORBIDDEN);
    assert_non_null(strstr(why, "non-DNS"));
    assert_int_equal(bind_check(&r, cn_fqdn, "email:device-001@example.com", &why),
                     KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, cn_fqdn, "URI:urn:device-001", &why), KP_ERR_FORBIDDEN);
    r.entity_rule = false; /* otp_subject = "any" */
    assert_int_equal(bind_check(&r, cn_other, "IP:192.0.2.1,DNS:www.bank.example", &why), KP_OK);
}

static void test_the_ca_name_is_never_certified(void **state)
{
    const char *ca[] = {"CN", "kipuka demo CA", NULL};
    X509_NAME *ca_name = name_of(ca);
    struct otpbind_rules r = {
        .entity = "kipuka demo CA", .entity_rule = true, .ca_subject = ca_name};
    const char *why = NULL;

    (void)state;
    assert_int_equal(bind_check(&r, ca, NULL, &why), KP_ERR_FORBIDDEN);
    assert_non_null(strstr(why, "CA"));
    r.entity_rule = false;
    assert_int_equal(bind_check(&r, ca, NULL, &why), KP_ERR_FORBIDDEN);
    X509_NAME_free(ca_name);
}

static void test_bound_subject_and_sans_replace_the_label_rule(void **state)
{
    struct otpbind_rules r = {.entity = "device-001", .entity_rule = true};
    const char *printer[] = {"CN", "printer-7.example.com", "O", "Example", NULL};
    const char *printer_no_o[] = {"CN", "printer-7.example.com", NULL};
    const char *printer_case[] = {"CN", "Printer-7.example.com", "O", "EXAMPLE", NULL};
    const char *device[] = {"CN", "device-001.example.com", NULL};
    const char *why = NULL;
    char *subject = NULL, *sans = NULL;
    const char *list[] = {"DNS:printer-7.example.com", "IP:192.0.2.7"};

    (void)state;
    assert_null(otpbind_subject_parse("/CN=printer-7.example.com/O=Example", &subject));
    assert_null(otpbind_sans_parse(list, 2, &sans));
    r.subject = subject;
    r.sans = sans;
    assert_int_equal(bind_check(&r, printer, "DNS:printer-7.example.com,IP:192.0.2.7", &why),
                     KP_OK);
    assert_int_equal(bind_check(&r, printer, "IP:192.0.2.7", &why), KP_OK);
    assert_int_equal(bind_check(&r, printer, NULL, &why), KP_OK);
    /* RFC 5280 7.1 name matching: case and spacing of strings do not count */
    assert_int_equal(bind_check(&r, printer_case, "DNS:PRINTER-7.example.com", &why), KP_OK);
    assert_int_equal(bind_check(&r, printer_no_o, NULL, &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, device, NULL, &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, printer, "DNS:evil.example", &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, printer, "IP:192.0.2.8", &why), KP_ERR_FORBIDDEN);
    r.entity_rule = false; /* bound on an otp_subject = "any" label too */
    assert_int_equal(bind_check(&r, device, NULL, &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, printer, "email:a@example.com", &why), KP_ERR_FORBIDDEN);
    /* only SANs bound: the subject follows the label's rule */
    r.subject = NULL;
    r.entity_rule = true;
    assert_int_equal(bind_check(&r, printer, "IP:192.0.2.7", &why), KP_ERR_FORBIDDEN);
    assert_int_equal(bind_check(&r, device, "IP:192.0.2.7", &why), KP_OK);
    free(subject);
    free(sans);
}

/* ---- psk_table_load ---- */

#define KEY16 "000102030405060708090a0b0c0d0e0f"
#define SECRET_HEX "5ec4e75ec4e75ec4e75ec4e75ec4e75e"

static struct label_cfg psk_labels[] = {{.name = "default"}, {.name = "iot"}};
static const struct kp_config psk_cfg = {.labels = psk_labels, .nlabels = 2};

static struct psk_table *psk_load_text(struct fixture *fx, const char *text, size_t len, char **err)
{
    const char *path = fx_file(fx, "coap-psk");
    struct psk_table *t = NULL;

    remove(path);
    write_bytes(path, text, len);
    *err = NULL;
    if (psk_table_load(path, &psk_cfg, &t, err) != KP_OK)
        assert_null(t);
    return t;
}

static void test_psk_file_entries_are_found_by_identity(void **state)
{
    struct fixture *fx = *state;
    char *err = NULL, id128[129];
    char *text;
    struct psk_table *t;
    const struct psk_entry *e;
    static const unsigned char key16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

    memset(id128, 'd', 128);
    id128[128] = '\0';
    text = xasprintf("# IDENTITY LABEL HEXKEY\n"
                     "\n"
                     "device-001 default " KEY16 "\n"
                     "  \tsensor.7\tiot\t" SECRET_HEX SECRET_HEX "  # no: a trailing field\n");
    t = psk_load_text(fx, text, strlen(text), &err);
    assert_null(t);
    assert_non_null(err);
    assert_non_null(strstr(err, ":4: expected IDENTITY LABEL HEXKEY"));
    free(err);
    free(text);

    text = xasprintf("# IDENTITY LABEL HEXKEY\n"
                     "\n"
                     "device-001 default " KEY16 "\r\n"
                     "  \tsensor.7\tiot\t" SECRET_HEX SECRET_HEX "\n"
                     "%s iot " KEY16 KEY16 KEY16 KEY16,
                     id128);
    t = psk_load_text(fx, text, strlen(text), &err);
    free(text);
    if (t == NULL) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err ? err : "?");
        free(err);
        fail_msg("refused: %s", why);
    }
    assert_int_equal(psk_count(t), 3);
    e = psk_find(t, "device-001", 10);
    assert_non_null(e);
    assert_string_equal(e->identity, "device-001");
    assert_string_equal(e->label, "default");
    assert_int_equal(e->key_len, 16);
    assert_memory_equal(e->key, key16, 16);
    e = psk_find(t, "sensor.7xyz", 8); /* the length counts, not a NUL */
    assert_non_null(e);
    assert_string_equal(e->label, "iot");
    assert_int_equal(e->key_len, 32);
    assert_int_equal(e->key[0], 0x5e);
    e = psk_find(t, id128, 128);
    assert_non_null(e);
    assert_int_equal(e->key_len, 64);
    assert_null(psk_find(t, "device-00", 9));
    assert_null(psk_find(t, "device-0011", 11));
    assert_null(psk_find(t, "DEVICE-001", 10));
    assert_null(psk_find(t, "", 0));
    assert_null(psk_find(NULL, "device-001", 10));
    psk_table_free(t);
    psk_table_free(NULL);

    t = psk_load_text(fx, "# nothing yet\n", 14, &err);
    assert_non_null(t);
    assert_int_equal(psk_count(t), 0);
    assert_null(psk_find(t, "device-001", 10));
    psk_table_free(t);
}

/* The line is refused with "PATH:LINE: reason" and the key never appears. */
static void expect_psk_refused(struct fixture *fx, const char *text, size_t len, int line,
                               const char *reason)
{
    char *err = NULL, want[600], got[600];
    struct psk_table *t = psk_load_text(fx, text, len, &err);

    psk_table_free(t);
    snprintf(got, sizeof(got), "%s", err ? err : "(accepted)");
    free(err);
    if (t != NULL)
        fail_msg("accepted: %.*s", (int)(len > 200 ? 200 : len), text);
    snprintf(want, sizeof(want), "%s:%d: ", fx->path, line);
    if (strncmp(got, want, strlen(want)) != 0 || strstr(got, reason) == NULL)
        fail_msg("got \"%s\", want \"%s...%s\"", got, want, reason);
    if (strstr(got, "5ec4e7") != NULL || strstr(got, "0a0b0c") != NULL)
        fail_msg("the message shows key material: %s", got);
}

static void test_bad_psk_lines_are_refused_with_their_line_never_the_key(void **state)
{
    struct fixture *fx = *state;
    const char *good = "device-001 default " SECRET_HEX "\n";
    char id129[130], *text, longline[700];

#define REFUSED(body, line, reason)                                                                \
    do {                                                                                           \
        text = xasprintf("%s%s", good, body);                                                      \
        expect_psk_refused(fx, text, strlen(text), line, reason);                                  \
        free(text);                                                                                \
    } while (0)
    REFUSED("device-002 default " SECRET_HEX "zz\n", 2, "the key is not hex");
    REFUSED("device-002 default 5ec4e75ec4e75ec4e75ec4e75ec4e7g5\n", 2, "the key is not hex");
    REFUSED("device-002 default " SECRET_HEX "0\n", 2, "odd number of hex digits");
    REFUSED("device-002 default 5ec4e75ec4e75ec4e75ec4e75ec4e7\n", 2, "16 to 64 bytes");
    REFUSED("device-002 default " SECRET_HEX SECRET_HEX SECRET_HEX SECRET_HEX "5e\n", 2,
            "16 to 64 bytes");
    REFUSED("device-002 other " SECRET_HEX "\n", 2, "no such label");
    REFUSED("\n# again\ndevice-001 iot " SECRET_HEX "\n", 4, "identity already given on line 1");
    REFUSED("device:002 default " SECRET_HEX "\n", 2, "cannot contain ':'");
    REFUSED("device-\x01 default " SECRET_HEX "\n", 2, "printable ASCII");
    REFUSED("device-\xc3\xa9 default " SECRET_HEX "\n", 2, "printable ASCII");
    REFUSED("device-002 default\n", 2, "expected IDENTITY LABEL HEXKEY");
    REFUSED("device-002 default " SECRET_HEX " extra\n", 2, "expected IDENTITY LABEL HEXKEY");
    memset(id129, 'd', 129);
    id129[129] = '\0';
    text = xasprintf("%s %s default " SECRET_HEX "\n", good, id129);
    expect_psk_refused(fx, text, strlen(text), 2, "1 to 128 bytes");
    free(text);
    memset(longline, ' ', sizeof(longline));
    memcpy(longline, good, strlen(good) - 1);
    memcpy(longline + 600, "\n", 2);
    REFUSED(longline, 2, "line longer than 512 bytes");
    text = xasprintf("%sdevice-002 default " SECRET_HEX "\n", good);
    text[strlen(good) + 3] = '\0';
    expect_psk_refused(fx, text, strlen(good) + 20 + 32 + 1, 2, "a NUL byte");
    free(text);
#undef REFUSED
}

static void test_psk_file_others_may_read_is_refused(void **state)
{
    struct fixture *fx = *state;
    const char *text = "device-001 default " KEY16 "\n";
    char *err = NULL;
    struct psk_table *t = psk_load_text(fx, text, strlen(text), &err);

    assert_non_null(t);
    psk_table_free(t);
    t = NULL;
    assert_int_equal(chmod(fx->path, 0644), 0);
    assert_int_equal(psk_table_load(fx->path, &psk_cfg, &t, &err), KP_ERR_CONFIG);
    assert_null(t);
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_int_equal(chmod(fx->path, 0640), 0);
    assert_int_equal(psk_table_load(fx->path, &psk_cfg, &t, &err), KP_ERR_CONFIG);
    free(err);
    err = NULL;
    assert_int_equal(chmod(fx->path, 0400), 0);
    assert_int_equal(psk_table_load(fx->path, &psk_cfg, &t, &err), KP_OK);
    psk_table_free(t);
}

#define T(f) cmocka_unit_test_teardown(f, fx_reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_basic_header_yields_user_and_password),
        T(test_basic_scheme_is_case_insensitive),
        T(test_password_containing_colons_is_kept_whole),
        T(test_basic_without_colon_is_refused),
        T(test_basic_with_empty_user_is_refused),
        T(test_other_schemes_are_refused),
        T(test_basic_with_bad_base64_is_refused),
        T(test_basic_with_nul_inside_is_refused),
        T(test_basic_header_over_1024_characters_is_refused),
        T(test_generated_otp_is_20_characters_of_the_alphabet),
        T(test_two_generated_otps_differ),
        T(test_otp_hash_is_hmac_sha256_under_the_key),
        T(test_otp_hash_is_deterministic_and_key_dependent),
        T(test_otp_key_create_writes_a_0600_hex_key),
        T(test_otp_key_create_refuses_to_overwrite),
        T(test_otp_key_load_returns_the_created_key),
        T(test_otp_key_load_accepts_crlf_ending),
        T(test_otp_key_load_refuses_a_file_others_may_read),
        T(test_bad_otp_key_file_is_rejected),
        T(test_absent_challenge_passes_when_binding_is_optional),
        T(test_absent_challenge_fails_when_binding_is_required),
        T(test_correct_binding_passes_for_tls_unique_and_exporter_sizes),
        T(test_wrong_binding_of_the_right_size_fails_even_when_optional),
        T(test_plain_password_is_refused_under_either_policy),
        T(test_binding_of_another_size_does_not_match_even_when_optional),
        T(test_challenge_without_a_connection_binding_is_refused),
        T(test_entity_ids_an_otp_cannot_authenticate_with_are_refused),
        T(test_bound_subject_is_parsed_and_written_back_the_same),
        T(test_bound_sans_are_parsed_into_one_canonical_list),
        T(test_entity_rule_allows_only_the_entity_and_names_under_it),
        T(test_the_ca_name_is_never_certified),
        T(test_bound_subject_and_sans_replace_the_label_rule),
        T(test_psk_file_entries_are_found_by_identity),
        T(test_bad_psk_lines_are_refused_with_their_line_never_the_key),
        T(test_psk_file_others_may_read_is_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
