/* profile_apply and ca_issue with a CA made here (ca_create_root, written as
 * PEM and read back with ca_load) and CSRs built here with the OpenSSL API or
 * read from tests/data/csr/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/profile.h"
#include "core/xalloc.h"
#include "pki/csr.h"

#define ALL_KEY_TYPES ((1u << KEY__MAX) - 1)
#define DAY 86400

struct fixture {
    char dir[64];
    EVP_PKEY *ca_key;  /* P-256 */
    struct ca *ca;     /* 20 years, loaded with ca_load */
    EVP_PKEY *dev_key; /* P-256, signs the CSRs built here */
    struct label_cfg label;
    /* per test, freed by fx_reset */
    struct csr *csr;
    X509 *cert;
    struct ca *tmp_ca;
    EVP_PKEY *tmp_key;
};

/* ---- helpers ---- */

static char *data_path(const char *name)
{
    const char *dir = getenv("KP_TEST_DATA");
    const char *unit;

    if (dir != NULL && dir[0] != '\0')
        return xasprintf("%s/%s", dir, name);
    unit = strstr(__FILE__, "unit/test_profile.c");
    if (unit == NULL)
        return xasprintf("tests/data/%s", name);
    return xasprintf("%.*sdata/%s", (int)(unit - __FILE__), __FILE__, name);
}

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(k);
    return k;
}

static X509_NAME *name_of(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    return n;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert != NULL)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    if (key != NULL)
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    if (key != NULL)
        assert_int_equal(chmod(path, 0600), 0); /* a key file others may read is refused */
}

/* ca_load over PEM files dir/NAME.crt and dir/NAME.key; returns its result. */
static enum kp_err ca_from_files(const struct fixture *fx, const char *name, X509 *cert,
                                 EVP_PKEY *key, struct ca **out)
{
    char *crt = xasprintf("%s/%s.crt", fx->dir, name);
    char *kf = xasprintf("%s/%s.key", fx->dir, name);
    struct label_cfg cfg = {.name = (char *)name, .ca_cert = crt, .ca_chain = "", .ca_key = kf};
    enum kp_err rc;

    write_pem(crt, cert, NULL);
    write_pem(kf, NULL, key);
    rc = ca_load(&cfg, out);
    free(crt);
    free(kf);
    return rc;
}

/* A self-signed P-256 CA valid for days (from now - 300 s). */
static struct ca *ca_make(const struct fixture *fx, const char *name, EVP_PKEY *key, long days)
{
    X509_NAME *subj = name_of(name);
    X509 *root = NULL;
    struct ca *ca = NULL;

    assert_int_equal(ca_create_root(key, subj, days, &root), KP_OK);
    assert_int_equal(ca_from_files(fx, name, root, key, &ca), KP_OK);
    X509_NAME_free(subj);
    X509_free(root);
    return ca;
}

static time_t ca_not_after(const struct ca *ca)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &tm), 1);
    return timegm(&tm);
}

/* A subject attribute for csr_build: field name or dotted OID, value, and
 * string type (V_ASN1_*; 0 for UTF8String). */
struct rdn {
    const char *field;
    const char *value;
    int type;
};

/* Build, sign and parse a CSR. rdns ends with {NULL}; san is an OpenSSL
 * config string ("DNS:a.example,IP:192.0.2.1") or NULL. */
static struct csr *csr_build(EVP_PKEY *key, const struct rdn *rdns, const char *san)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    struct csr *csr = NULL;
    int len;

    assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
    for (size_t i = 0; rdns != NULL && rdns[i].field != NULL; i++) {
        /* a plain string type skips OpenSSL's own size table, so the
         * profile is what judges lengths */
        if (X509_NAME_add_entry_by_txt(name, rdns[i].field,
                                       rdns[i].type ? rdns[i].type : V_ASN1_UTF8STRING,
                                       (const unsigned char *)rdns[i].value, -1, -1, 0) != 1)
            fail_msg("cannot add %s=%s", rdns[i].field, rdns[i].value);
    }
    assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (san != NULL) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        if (ext == NULL)
            fail_msg("bad SAN config string %s", san);
        sk_X509_EXTENSION_push(exts, ext);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    len = i2d_X509_REQ(req, &der);
    assert_true(len > 0);
    if (csr_parse(der, (size_t)len, &csr) != KP_OK)
        fail_msg("csr_parse refused the request built with SAN %s", san ? san : "(none)");
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return csr;
}

static struct csr *csr_file(const char *file)
{
    char *rel = xasprintf("csr/%s", file);
    char *path = data_path(rel);
    FILE *f = fopen(path, "rb");
    unsigned char buf[8192];
    size_t n;
    struct csr *csr = NULL;

    if (f == NULL)
        fail_msg("cannot open %s (set KP_TEST_DATA)", path);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (csr_parse(buf, n, &csr) != KP_OK)
        fail_msg("csr_parse refused %s", path);
    free(path);
    free(rel);
    return csr;
}

/* Replace the fixture's CSR (freed by fx_reset). */
static struct csr *fx_csr(struct fixture *fx, struct csr *csr)
{
    csr_free(fx->csr);
    fx->csr = csr;
    return csr;
}

static const struct rdn cn_only[] = {{"CN", "dev-1.example", 0}, {NULL, NULL, 0}};

/* profile_apply on the fixture CA; on KP_OK the template is checked to
 * borrow from the CSR. */
static enum kp_err apply(struct fixture *fx, const struct ca *ca, time_t now, struct ca_template *t,
                         const char **why)
{
    enum kp_err rc;

    *why = "unset";
    rc = profile_apply(&fx->label, ca, fx->csr, now, t, why);
    if (rc == KP_OK) {
        assert_null(*why);
        assert_ptr_equal(t->subject, fx->csr->subject);
        assert_ptr_equal(t->sans, fx->csr->sans);
        assert_ptr_equal(t->pubkey, fx->csr->pubkey);
    } else {
        assert_non_null(*why);
        assert_string_not_equal(*why, "unset");
    }
    return rc;
}

static void expect_policy(struct fixture *fx, struct csr *csr, enum kp_err want, const char *what)
{
    struct ca_template t;
    const char *why;
    enum kp_err rc;

    fx_csr(fx, csr);
    rc = apply(fx, fx->ca, time(NULL), &t, &why);
    if (rc != want)
        fail_msg("%s: rc %d (%s), want %d", what, (int)rc, rc == KP_OK ? "accepted" : why,
                 (int)want);
}

static void expect_san(struct fixture *fx, const char *san, enum kp_err want)
{
    expect_policy(fx, csr_build(fx->dev_key, cn_only, san), want, san);
}

static void label_defaults(struct label_cfg *l)
{
    memset(l, 0, sizeof(*l));
    l->name = "test";
    l->key_types = ALL_KEY_TYPES;
    l->max_validity_days = 398;
    l->ekus = 1u << EKU_CLIENT_AUTH;
    l->allow_otp = true;
    l->allow_mtls = true;
    l->channel_binding = CB_OPTIONAL;
    l->mtls_subject_match = true;
    l->max_sans = 20;
}

/* ---- fixture ---- */

static int fx_setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kp-test-profile-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    fx->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx->dev_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (fx->ca_key == NULL || fx->dev_key == NULL)
        return -1;
    *state = fx;
    /* 20 years: past the last step of the BR schedule */
    fx->ca = ca_make(fx, "root", fx->ca_key, 20 * 365);
    label_defaults(&fx->label);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int fx_reset(void **state)
{
    struct fixture *fx = *state;
    csr_free(fx->csr);
    X509_free(fx->cert);
    ca_free(fx->tmp_ca);
    EVP_PKEY_free(fx->tmp_key);
    fx->csr = NULL;
    fx->cert = NULL;
    fx->tmp_ca = NULL;
    fx->tmp_key = NULL;
    label_defaults(&fx->label);
    return 0;
}

static int fx_teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    fx_reset(state);
    ca_free(fx->ca);
    EVP_PKEY_free(fx->ca_key);
    EVP_PKEY_free(fx->dev_key);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ---- the CA/B BR schedule ---- */

static time_t utc(int y, int mon, int d, int h, int min, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = min,
                    .tm_sec = s};
    return timegm(&tm);
}

static void test_br_max_days_changes_exactly_at_each_step(void **state)
{
    (void)state;
    assert_int_equal(profile_br_max_days(utc(2026, 3, 14, 23, 59, 59)), 398);
    assert_int_equal(profile_br_max_days(utc(2026, 3, 15, 0, 0, 0)), 200);
    assert_int_equal(profile_br_max_days(utc(2027, 3, 14, 23, 59, 59)), 200);
    assert_int_equal(profile_br_max_days(utc(2027, 3, 15, 0, 0, 0)), 100);
    assert_int_equal(profile_br_max_days(utc(2029, 3, 14, 23, 59, 59)), 100);
    assert_int_equal(profile_br_max_days(utc(2029, 3, 15, 0, 0, 0)), 47);
}

static void test_br_max_days_before_and_long_after_the_schedule(void **state)
{
    (void)state;
    assert_int_equal(profile_br_max_days(0), 398);
    assert_int_equal(profile_br_max_days(utc(2020, 1, 1, 0, 0, 0)), 398);
    assert_int_equal(profile_br_max_days(utc(2028, 1, 1, 0, 0, 0)), 100);
    assert_int_equal(profile_br_max_days(utc(2040, 1, 1, 0, 0, 0)), 47);
}

/* ---- key types ---- */

static const char *const accepted_files[KEY__MAX] = {
    [KEY_EC_P256] = "ec-p256.der",   [KEY_EC_P384] = "ec-p384.der",
    [KEY_RSA_2048] = "rsa-2048.der", [KEY_RSA_3072] = "rsa-3072.der",
    [KEY_RSA_4096] = "rsa-4096.der",
};

static void test_allowed_key_types_pass(void **state)
{
    struct fixture *fx = *state;
    for (int k = 0; k < KEY__MAX; k++) {
        struct csr *csr = csr_file(accepted_files[k]);
        assert_int_equal(csr->key_type, k);
        expect_policy(fx, csr, KP_OK, accepted_files[k]);
    }
    /* and a key generated here */
    expect_policy(fx, csr_build(fx->dev_key, cn_only, "DNS:dev-1.example"), KP_OK, "built");
}

static void test_key_type_outside_the_label_set_is_refused(void **state)
{
    struct fixture *fx = *state;
    for (int allowed = 0; allowed < KEY__MAX; allowed++) {
        fx->label.key_types = 1u << allowed;
        for (int k = 0; k < KEY__MAX; k++)
            expect_policy(fx, csr_file(accepted_files[k]), k == allowed ? KP_OK : KP_ERR_KEY_TYPE,
                          accepted_files[k]);
    }
    fx->label.key_types = (1u << KEY_RSA_2048) | (1u << KEY_RSA_3072);
    expect_policy(fx, csr_build(fx->dev_key, cn_only, NULL), KP_ERR_KEY_TYPE, "P-256 built");
}

static void test_weak_or_unknown_keys_are_refused_as_key_type(void **state)
{
    static const char *const files[] = {"rsa-1024.der", "ec-p521.der", "ed25519.der",
                                        "ec-p256-explicit.der"};
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct csr *csr = csr_file(files[i]);
        assert_int_equal(csr->key_type, -1);
        expect_policy(fx, csr, KP_ERR_KEY_TYPE, files[i]);
    }
    fx->tmp_key = ec_key("P-521");
    expect_policy(fx, csr_build(fx->tmp_key, cn_only, "DNS:p521.example"), KP_ERR_KEY_TYPE,
                  "P-521 built");
}

/* ---- subject ---- */

static void test_allowed_subject_attributes_pass(void **state)
{
    static const struct rdn all[] = {{"CN", "dev-1.example", 0},
                                     {"O", "Kipuka", V_ASN1_PRINTABLESTRING},
                                     {"OU", "Ops", 0},
                                     {"C", "NZ", V_ASN1_PRINTABLESTRING},
                                     {"ST", "Auckland", 0},
                                     {"L", "Auckland", 0},
                                     {"serialNumber", "42", V_ASN1_PRINTABLESTRING},
                                     {"DC", "example", V_ASN1_IA5STRING},
                                     {"UID", "dev1", 0},
                                     {"emailAddress", "ops@example.com", V_ASN1_IA5STRING},
                                     {NULL, NULL, 0}};
    struct fixture *fx = *state;
    expect_policy(fx, csr_build(fx->dev_key, all, NULL), KP_OK, "all allowed attributes");
}

static void test_subject_attribute_outside_the_allowed_list_is_refused(void **state)
{
    static const struct rdn title[] = {{"CN", "dev", 0}, {"title", "boss", 0}, {NULL, NULL, 0}};
    static const struct rdn custom[] = {
        {"CN", "dev", 0}, {"1.3.6.1.4.1.55555.1", "x", 0}, {NULL, NULL, 0}};
    static const struct rdn given[] = {{"GN", "Ana", 0}, {NULL, NULL, 0}};
    struct fixture *fx = *state;

    expect_policy(fx, csr_build(fx->dev_key, title, NULL), KP_ERR_POLICY, "title");
    expect_policy(fx, csr_build(fx->dev_key, custom, NULL), KP_ERR_POLICY, "custom OID");
    expect_policy(fx, csr_build(fx->dev_key, given, NULL), KP_ERR_POLICY, "givenName");
}

static void test_subject_values_must_be_1_to_64_characters(void **state)
{
    char v65[66], v64[65];
    struct rdn rdns[] = {{"CN", v65, 0}, {NULL, NULL, 0}};
    static const struct rdn empty[] = {{"O", "", 0}, {"CN", "x", 0}, {NULL, NULL, 0}};
    static const struct rdn country[] = {
        {"CN", "x", 0}, {"C", "NZL", V_ASN1_PRINTABLESTRING}, {NULL, NULL, 0}};
    struct fixture *fx = *state;

    memset(v65, 'a', 65);
    v65[65] = '\0';
    memset(v64, 'a', 64);
    v64[64] = '\0';
    expect_policy(fx, csr_build(fx->dev_key, rdns, NULL), KP_ERR_POLICY, "CN of 65");
    rdns[0].value = v64;
    expect_policy(fx, csr_build(fx->dev_key, rdns, NULL), KP_OK, "CN of 64");
    expect_policy(fx, csr_build(fx->dev_key, empty, NULL), KP_ERR_POLICY, "empty O");
    expect_policy(fx, csr_build(fx->dev_key, country, NULL), KP_ERR_POLICY, "C=NZL");
}

/* Like expect_policy, and the reason must contain reason. */
static void expect_refused(struct fixture *fx, struct csr *csr, enum kp_err want, const char *what,
                           const char *reason)
{
    struct ca_template t;
    const char *why;
    enum kp_err rc;

    fx_csr(fx, csr);
    rc = apply(fx, fx->ca, time(NULL), &t, &why);
    if (rc != want)
        fail_msg("%s: rc %d (%s), want %d", what, (int)rc, rc == KP_OK ? "accepted" : why,
                 (int)want);
    if (strstr(why, reason) == NULL)
        fail_msg("%s: reason \"%s\" does not mention \"%s\"", what, why, reason);
}

/* One attribute (and a CN unless field is CN) with value and string type. */
static void expect_attr(struct fixture *fx, const char *field, const char *value, int type,
                        enum kp_err want)
{
    struct rdn rdns[] = {{field, value, type}, {"CN", "attr.example", 0}, {NULL, NULL, 0}};
    char what[160];

    if (strcmp(field, "CN") == 0)
        rdns[1].field = NULL;
    snprintf(what, sizeof(what), "%s=%s (type %d)", field, value, type);
    expect_policy(fx, csr_build(fx->dev_key, rdns, NULL), want, what);
}

/* RFC 5280 4.1.2.4: DirectoryString is PrintableString or UTF8String for
 * new certificates; BMPString, T61String, IA5String (outside DC and
 * emailAddress) and UniversalString are refused. */
static void test_subject_strings_must_be_printable_or_utf8(void **state)
{
    struct fixture *fx = *state;

    expect_attr(fx, "CN", "dev.example", V_ASN1_PRINTABLESTRING, KP_OK);
    expect_attr(fx, "CN", "dev.example", V_ASN1_UTF8STRING, KP_OK);
    expect_attr(fx, "CN", "dev.example", V_ASN1_T61STRING, KP_ERR_POLICY);
    expect_attr(fx, "CN", "dev.example", V_ASN1_IA5STRING, KP_ERR_POLICY);
    expect_attr(fx, "O", "Kipuka", V_ASN1_T61STRING, KP_ERR_POLICY);
    expect_refused(fx, csr_file("hostile-cn-bmp.der"), KP_ERR_POLICY, "BMPString CN",
                   "PrintableString or UTF8String");
}

/* X.680 41.4: A-Z a-z 0-9 space ' ( ) + , - . / : = ? and nothing else. */
static void test_printable_string_holds_only_its_alphabet(void **state)
{
    static const char *const bad[] = {"dev@example", "dev_1", "a*b", "a&b", "a;b", "a\"b", "a!"};
    struct fixture *fx = *state;

    expect_attr(fx, "O", "Kipuka Ltd. (NZ) + 'ops', -/:=?", V_ASN1_PRINTABLESTRING, KP_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_attr(fx, "O", bad[i], V_ASN1_PRINTABLESTRING, KP_ERR_POLICY);
    expect_refused(fx, csr_file("hostile-cn-printable-at.der"), KP_ERR_POLICY, "CN with @",
                   "alphabet");
}

/* No C0, DEL or C1 control, no bidi override or isolate, no BOM. */
static void test_utf8_control_characters_are_refused(void **state)
{
    static const char *const bad[] = {
        "a\x1b[2Jb",    "a\tb",          "a\x7f",         "a\xc2\x85",
        "a\xc2\x9b",    "a\xe2\x80\xae", "a\xe2\x81\xa6", ("\xef\xbb\xbf" /* a BOM, then */ "a"),
        "a\xef\xbf\xbf"};
    struct fixture *fx = *state;

    expect_attr(fx, "O", "K\xc4\x81inga Ora \xf0\x9f\x8c\x8b", 0, KP_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_attr(fx, "O", bad[i], 0, KP_ERR_POLICY);
    expect_refused(fx, csr_file("hostile-cn-nul.der"), KP_ERR_POLICY, "CN with NUL",
                   "control character");
    expect_refused(fx, csr_file("hostile-cn-escape.der"), KP_ERR_POLICY, "CN with ESC",
                   "control character");
}

/* RFC 5280 A.1 and CA/B BR 7.1.4.2.2: two upper-case letters of ISO 3166-1
 * (or XX), as a PrintableString. */
static void test_country_must_be_an_iso_3166_code(void **state)
{
    static const char *const good[] = {"NZ", "US", "DE", "AD", "ZW", "XX"};
    static const char *const bad[] = {"ZZ", "UK", "EU", "nz", "Nz", "N", "U$", "1A", "AA"};
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        expect_attr(fx, "C", good[i], V_ASN1_PRINTABLESTRING, KP_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_attr(fx, "C", bad[i], V_ASN1_PRINTABLESTRING, KP_ERR_POLICY);
    expect_attr(fx, "C", "NZ", V_ASN1_UTF8STRING, KP_ERR_POLICY);
    expect_refused(fx, csr_file("hostile-country-dollar.der"), KP_ERR_POLICY, "C=U$", "alphabet");
    expect_refused(fx, csr_file("hostile-country-zz.der"), KP_ERR_POLICY, "C=ZZ", "ISO 3166");
}

static void test_at_most_one_of_each_attribute_but_ou_and_dc(void **state)
{
    static const struct rdn two_cn[] = {
        {"CN", "a.example", 0}, {"CN", "b.example", 0}, {NULL, NULL, 0}};
    static const struct rdn two_o[] = {{"O", "A", 0}, {"O", "B", 0}, {NULL, NULL, 0}};
    static const struct rdn two_ou[] = {
        {"OU", "A", 0}, {"OU", "B", 0}, {"CN", "x", 0}, {NULL, NULL, 0}};
    static const struct rdn two_dc[] = {{"DC", "example", V_ASN1_IA5STRING},
                                        {"DC", "com", V_ASN1_IA5STRING},
                                        {"CN", "x", 0},
                                        {NULL, NULL, 0}};
    struct fixture *fx = *state;

    expect_refused(fx, csr_build(fx->dev_key, two_cn, NULL), KP_ERR_POLICY, "two CN",
                   "more than one commonName");
    expect_refused(fx, csr_file("hostile-two-cn.der"), KP_ERR_POLICY, "two CN file",
                   "more than one commonName");
    expect_policy(fx, csr_build(fx->dev_key, two_o, NULL), KP_ERR_POLICY, "two O");
    expect_policy(fx, csr_build(fx->dev_key, two_ou, NULL), KP_OK, "two OU");
    expect_policy(fx, csr_build(fx->dev_key, two_dc, NULL), KP_OK, "two DC");
}

static void test_multi_valued_rdn_is_refused(void **state)
{
    expect_refused(*state, csr_file("hostile-multi-rdn.der"), KP_ERR_POLICY, "CN+O",
                   "multi-valued");
}

/* RFC 5280 A.1 upper bounds, in characters: CN, O, OU, serialNumber 64;
 * L, ST 128. */
static void test_each_attribute_has_its_upper_bound(void **state)
{
    static const struct {
        const char *field;
        int max, type;
    } bounds[] = {{"CN", 64, 0}, {"O", 64, 0},   {"OU", 64, 0},
                  {"L", 128, 0}, {"ST", 128, 0}, {"serialNumber", 64, V_ASN1_PRINTABLESTRING}};
    struct fixture *fx = *state;
    char v[300], e[300];

    for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
        memset(v, 'a', sizeof(v));
        v[bounds[i].max] = '\0';
        expect_attr(fx, bounds[i].field, v, bounds[i].type, KP_OK);
        v[bounds[i].max] = 'a';
        v[bounds[i].max + 1] = '\0';
        expect_attr(fx, bounds[i].field, v, bounds[i].type, KP_ERR_POLICY);
    }
    /* characters, not bytes: 64 two-byte characters fit a CN */
    for (int i = 0; i < 64; i++)
        memcpy(e + 2 * i, "\xc3\xa9", 2);
    e[128] = '\0';
    expect_attr(fx, "CN", e, 0, KP_OK);
    memcpy(e + 128, "\xc3\xa9", 3);
    expect_attr(fx, "CN", e, 0, KP_ERR_POLICY);
}

static void test_serial_number_must_be_printable(void **state)
{
    struct fixture *fx = *state;
    expect_attr(fx, "serialNumber", "A-42", V_ASN1_PRINTABLESTRING, KP_OK);
    expect_attr(fx, "serialNumber", "A-42", V_ASN1_UTF8STRING, KP_ERR_POLICY);
}

/* domainComponent: one DNS label; emailAddress: a plain mail address; both
 * IA5String. */
static void test_dc_and_email_address_are_ia5_with_checked_content(void **state)
{
    static const char *const bad_dc[] = {"ex.ample", "-x", "x-", "a b", "a_b"};
    static const char *const bad_mail[] = {"no-at", "a@b@c", "@b", "a@", "a b@c", "a\x7f@b"};
    struct fixture *fx = *state;

    expect_attr(fx, "DC", "ex-ample", V_ASN1_IA5STRING, KP_OK);
    expect_attr(fx, "DC", "example", V_ASN1_UTF8STRING, KP_ERR_POLICY);
    for (size_t i = 0; i < sizeof(bad_dc) / sizeof(bad_dc[0]); i++)
        expect_attr(fx, "DC", bad_dc[i], V_ASN1_IA5STRING, KP_ERR_POLICY);
    expect_attr(fx, "emailAddress", "ops@example.com", V_ASN1_IA5STRING, KP_OK);
    expect_attr(fx, "emailAddress", "ops@example.com", V_ASN1_UTF8STRING, KP_ERR_POLICY);
    for (size_t i = 0; i < sizeof(bad_mail) / sizeof(bad_mail[0]); i++)
        expect_attr(fx, "emailAddress", bad_mail[i], V_ASN1_IA5STRING, KP_ERR_POLICY);
}

/* The request's key and signature, checked before anything is issued. */
static void test_unsound_keys_and_weak_signatures_are_refused(void **state)
{
    static const struct {
        const char *file;
        enum kp_err want;
        const char *reason;
    } cases[] = {
        {"hostile-rsa-e1.der", KP_ERR_KEY_TYPE, "exponent"},
        {"hostile-rsa-e3.der", KP_ERR_KEY_TYPE, "exponent"},
        {"hostile-rsa-params.der", KP_ERR_KEY_TYPE, "NULL"},
        {"hostile-ec-hybrid.der", KP_ERR_KEY_TYPE, "compressed"},
        {"hostile-sha1.der", KP_ERR_POLICY, "SHA-1"},
        {"hostile-md5.der", KP_ERR_POLICY, "MD5"},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_refused(fx, csr_file(cases[i].file), cases[i].want, cases[i].file, cases[i].reason);
    expect_policy(fx, csr_file("ec-compressed.der"), KP_OK, "compressed point");
}

static void test_csr_without_subject_or_san_is_refused(void **state)
{
    struct fixture *fx = *state;
    expect_policy(fx, csr_build(fx->dev_key, NULL, NULL), KP_ERR_POLICY, "empty");
    expect_policy(fx, csr_build(fx->dev_key, NULL, "DNS:only-san.example"), KP_OK, "SAN only");
}

/* ---- subjectAltName ---- */

static void test_too_many_sans_is_refused(void **state)
{
    struct fixture *fx = *state;
    fx->label.max_sans = 3;
    expect_san(fx, "DNS:a.example,DNS:b.example,IP:192.0.2.1", KP_OK);
    expect_san(fx, "DNS:a.example,DNS:b.example,IP:192.0.2.1,email:x@example.com", KP_ERR_POLICY);
    fx->label.max_sans = 0;
    expect_san(fx, "DNS:a.example", KP_ERR_POLICY);
    expect_policy(fx, csr_build(fx->dev_key, cn_only, NULL), KP_OK, "no SAN, max 0");
}

static void test_allowed_san_types_pass(void **state)
{
    struct fixture *fx = *state;
    expect_san(fx,
               "DNS:a.example,IP:192.0.2.1,IP:2001:db8::1,email:ops@example.com,"
               "URI:https://device.example/1",
               KP_OK);
}

static void test_other_name_san_is_refused(void **state)
{
    struct fixture *fx = *state;
    expect_san(fx, "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com", KP_ERR_POLICY);
    expect_san(fx, "DNS:a.example,otherName:1.3.6.1.5.5.7.8.4;UTF8:x", KP_ERR_POLICY);
    expect_san(fx, "RID:1.2.3.4", KP_ERR_POLICY);
}

static void test_invalid_dns_names_are_refused(void **state)
{
    static const char *const bad[] = {
        "DNS:a..b",           "DNS:*.x",    "DNS:*.example.com",
        "DNS:.lead.example",  "DNS:trail.", "DNS:under_score.example",
        "DNS:sp ace.example", "DNS:a/b",
    };
    struct fixture *fx = *state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_san(fx, bad[i], KP_ERR_POLICY);
}

static void test_valid_dns_names_pass(void **state)
{
    static const char *const good[] = {
        "DNS:a",         "DNS:a.example",       "DNS:xn--bcher-kva.example",
        "DNS:1.example", "DNS:A-B.Example.COM", "DNS:a-b-c.d-e.example"};
    struct fixture *fx = *state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        expect_san(fx, good[i], KP_OK);
}

/* Accepted ones among names (each "DNS:..."), comma separated, or "". */
static void expect_all_refused(struct fixture *fx, const char *const *names, size_t n)
{
    char accepted[512] = "";
    struct ca_template t;
    const char *why;

    for (size_t i = 0; i < n; i++) {
        fx_csr(fx, csr_build(fx->dev_key, cn_only, names[i]));
        if (apply(fx, fx->ca, time(NULL), &t, &why) != KP_ERR_POLICY)
            snprintf(accepted + strlen(accepted), sizeof(accepted) - strlen(accepted), "%s%s",
                     accepted[0] ? ", " : "", names[i]);
    }
    if (accepted[0] != '\0')
        fail_msg("accepted: %s", accepted);
}

/* profile.c cites RFC 5280 4.2.1.6 preferred name syntax (RFC 1034 3.5 as
 * relaxed by RFC 1123 2.1): a label does not start or end with '-'. */
static void test_dns_labels_starting_or_ending_with_hyphen_are_refused(void **state)
{
    static const char *const bad[] = {"DNS:-", "DNS:-a.example", "DNS:a-.example",
                                      "DNS:a.-.example"};
    expect_all_refused(*state, bad, sizeof(bad) / sizeof(bad[0]));
}

/* RFC 1034 3.5: a label is at most 63 characters. */
static void test_dns_label_over_63_characters_is_refused(void **state)
{
    struct fixture *fx = *state;
    char name[100];

    snprintf(name, sizeof(name), "DNS:%.63s.example",
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop");
    expect_san(fx, name, KP_OK);
    snprintf(name, sizeof(name), "DNS:%.64s.example",
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop");
    expect_san(fx, name, KP_ERR_POLICY);
}

/* rfc822Name: one '@', visible ASCII; URI: a scheme, then visible ASCII. */
static void test_email_and_uri_sans_are_checked(void **state)
{
    static const char *const bad[] = {"email:no-at",  "email:a@b@c",   "email:@b",
                                      "email:a@",     "URI:no-scheme", "URI:1http://x",
                                      "URI::nothing", "URI:http:",     "URI:ht_tp://x"};
    struct fixture *fx = *state;

    expect_san(fx, "email:ops@example.com,URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
               KP_OK);
    expect_all_refused(fx, bad, sizeof(bad) / sizeof(bad[0]));
}

/* ---- validity ---- */

static void expect_validity(struct fixture *fx, const struct ca *ca, time_t now, long days,
                            time_t cap)
{
    struct ca_template t;
    const char *why;
    time_t want;

    assert_int_equal(apply(fx, ca, now, &t, &why), KP_OK);
    assert_int_equal(t.not_before, now - 300);
    want = t.not_before + (time_t)days * DAY - 1;
    if (cap != 0 && want > cap)
        want = cap;
    if (t.not_after != want)
        fail_msg("now %lld: not_after %lld, want %lld (%ld days)", (long long)now,
                 (long long)t.not_after, (long long)want, days);
    assert_int_equal(t.ekus, fx->label.ekus);
}

static void test_validity_is_capped_by_max_validity_days(void **state)
{
    struct fixture *fx = *state;
    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    fx->label.max_validity_days = 30;
    expect_validity(fx, fx->ca, time(NULL), 30, 0);
    fx->label.max_validity_days = 1;
    expect_validity(fx, fx->ca, time(NULL), 1, 0);
    fx->label.max_validity_days = 46;
    expect_validity(fx, fx->ca, utc(2030, 1, 1, 0, 0, 0), 46, 0);
}

static void test_validity_is_capped_by_the_br_schedule(void **state)
{
    struct fixture *fx = *state;
    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    fx->label.max_validity_days = 3650;
    expect_validity(fx, fx->ca, utc(2026, 3, 14, 23, 59, 59), 398, 0);
    expect_validity(fx, fx->ca, utc(2026, 3, 15, 0, 0, 0), 200, 0);
    expect_validity(fx, fx->ca, utc(2027, 3, 15, 0, 0, 0), 100, 0);
    expect_validity(fx, fx->ca, utc(2029, 3, 15, 0, 0, 0), 47, 0);
    expect_validity(fx, fx->ca, time(NULL), profile_br_max_days(time(NULL)), 0);
}

static void test_validity_is_capped_by_the_ca_not_after(void **state)
{
    struct fixture *fx = *state;
    time_t end;

    fx->tmp_key = ec_key("P-256");
    fx->tmp_ca = ca_make(fx, "short", fx->tmp_key, 10);
    end = ca_not_after(fx->tmp_ca);
    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    expect_validity(fx, fx->tmp_ca, time(NULL), 398, end);
    /* one second before the CA ends, still one second to give */
    expect_validity(fx, fx->tmp_ca, end - 1, 398, end);
}

static void test_expired_ca_is_unavailable(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    const char *why;
    time_t end;

    fx->tmp_key = ec_key("P-256");
    fx->tmp_ca = ca_make(fx, "expiring", fx->tmp_key, 10);
    end = ca_not_after(fx->tmp_ca);
    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    assert_int_equal(apply(fx, fx->tmp_ca, end, &t, &why), KP_ERR_UNAVAILABLE);
    assert_int_equal(apply(fx, fx->tmp_ca, end + 11 * DAY, &t, &why), KP_ERR_UNAVAILABLE);

    /* a CA created already expired */
    ca_free(fx->tmp_ca);
    fx->tmp_ca = ca_make(fx, "expired", fx->tmp_key, -1);
    assert_int_equal(apply(fx, fx->tmp_ca, time(NULL), &t, &why), KP_ERR_UNAVAILABLE);
}

/* ---- ca_issue on the template ---- */

/* Issue for the fixture CSR with a fresh serial; leaves the cert in fx->cert. */
static X509 *issue(struct fixture *fx, struct ca *ca, struct ca_template *t)
{
    const char *why;
    assert_int_equal(apply(fx, ca, time(NULL), t, &why), KP_OK);
    assert_int_equal(ca_serial_random(t->serial), KP_OK);
    X509_free(fx->cert);
    fx->cert = NULL;
    X509 *issued = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;

    assert_int_equal(ca_issue(ca, t, &issued), KP_OK);
    assert_non_null(issued);
    /* examined as clients see it: ca_issue's object carries the key as bytes */
    len = i2d_X509(issued, &der);
    assert_true(len > 0);
    p = der;
    fx->cert = d2i_X509(NULL, &p, len);
    assert_non_null(fx->cert);
    OPENSSL_free(der);
    X509_free(issued);
    return fx->cert;
}

static void check_key_usage(X509 *cert, uint32_t want)
{
    int crit = -1;
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    assert_int_equal(X509_get_key_usage(cert), want);
}

static void test_issued_certificate_is_a_critical_ca_false_end_entity(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    BASIC_CONSTRAINTS *bc;
    int crit = -1;
    X509 *cert;

    fx_csr(fx, csr_build(fx->dev_key, cn_only, "DNS:dev-1.example"));
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(X509_get_version(cert), X509_VERSION_3);
    bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_int_equal(bc->ca, 0);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_check_ca(cert), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert), fx->csr->subject), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(fx->ca->cert)),
                     0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->dev_key), 1);
}

static void test_key_usage_follows_the_key_type(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;

    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    check_key_usage(issue(fx, fx->ca, &t), KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
    fx_csr(fx, csr_file("ec-p384.der"));
    check_key_usage(issue(fx, fx->ca, &t), KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
    fx_csr(fx, csr_file("rsa-2048.der"));
    check_key_usage(issue(fx, fx->ca, &t), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
}

static void test_extended_key_usage_follows_the_label(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    X509 *cert;

    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);

    fx->label.ekus = (1u << EKU_CLIENT_AUTH) | (1u << EKU_SERVER_AUTH) | (1u << EKU_CODE_SIGNING) |
                     (1u << EKU_EMAIL_PROTECTION);
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(X509_get_extended_key_usage(cert),
                     XKU_SSL_CLIENT | XKU_SSL_SERVER | XKU_CODE_SIGN | XKU_SMIME);

    fx->label.ekus = 0; /* no extension at all */
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(X509_get_ext_by_NID(cert, NID_ext_key_usage, -1), -1);
}

static void test_key_identifiers_link_to_the_ca(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    const ASN1_OCTET_STRING *ski, *aki, *ca_ski;
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int mdlen = 0;
    X509 *cert;

    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    cert = issue(fx, fx->ca, &t);
    ski = X509_get0_subject_key_id(cert);
    aki = X509_get0_authority_key_id(cert);
    ca_ski = X509_get0_subject_key_id(fx->ca->cert);
    assert_non_null(ski);
    assert_non_null(aki);
    assert_non_null(ca_ski);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ca_ski), 0);
    /* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits */
    assert_int_equal(X509_pubkey_digest(cert, EVP_sha1(), md, &mdlen), 1);
    assert_int_equal(ASN1_STRING_length(ski), (int)mdlen);
    assert_memory_equal(ASN1_STRING_get0_data(ski), md, mdlen);
    assert_int_equal(ASN1_OCTET_STRING_cmp(ski, ca_ski) != 0, 1);
}

static void test_issued_sans_equal_the_csr_sans(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    GENERAL_NAMES *sans;
    int crit = -1;
    X509 *cert;

    fx_csr(fx, csr_build(fx->dev_key, cn_only,
                         "DNS:dev-1.example,IP:192.0.2.7,IP:2001:db8::7,email:d@example.com"));
    cert = issue(fx, fx->ca, &t);
    sans = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    assert_non_null(sans);
    assert_int_equal(crit, 0);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 4);
    assert_int_equal(csr_sans_equal(sans, fx->csr->sans), 1);
    GENERAL_NAMES_free(sans);

    /* empty subject: the SAN extension is critical (RFC 5280 4.2.1.6) */
    fx_csr(fx, csr_build(fx->dev_key, NULL, "DNS:only.example"));
    cert = issue(fx, fx->ca, &t);
    sans = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    assert_non_null(sans);
    assert_int_equal(crit, 1);
    GENERAL_NAMES_free(sans);

    /* no SAN requested: none issued */
    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(X509_get_ext_by_NID(cert, NID_subject_alt_name, -1), -1);
}

static void test_serial_is_20_positive_octets(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    unsigned char prev[CA_SERIAL_LEN] = {0};

    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    for (int i = 0; i < 50; i++) {
        X509 *cert = issue(fx, fx->ca, &t);
        const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
        unsigned char *der = NULL;
        int len = i2d_ASN1_INTEGER((ASN1_INTEGER *)sn, &der);
        char *hex;

        /* INTEGER, length 20, no sign padding: 02 14 <20 octets>, first < 0x80 */
        assert_int_equal(len, 22);
        assert_int_equal(der[0], 0x02);
        assert_int_equal(der[1], 20);
        assert_true(der[2] >= 0x01 && der[2] <= 0x7f);
        assert_memory_equal(der + 2, t.serial, CA_SERIAL_LEN);
        assert_memory_not_equal(der + 2, prev, CA_SERIAL_LEN);
        memcpy(prev, der + 2, CA_SERIAL_LEN);
        OPENSSL_free(der);
        hex = ca_serial_hex(cert);
        assert_int_equal(strlen(hex), 40);
        free(hex);
    }
}

static void test_serial_random_is_positive_and_never_shorter(void **state)
{
    unsigned char s[CA_SERIAL_LEN];
    (void)state;
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(ca_serial_random(s), KP_OK);
        assert_true(s[0] >= 0x01 && s[0] <= 0x7f);
    }
}

static void test_issued_certificate_verifies_with_the_ca_key(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *cert;
    int ok;

    fx_csr(fx, csr_build(fx->dev_key, cn_only, "DNS:dev-1.example"));
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(X509_verify(cert, fx->ca_key), 1);
    assert_true(X509_verify(cert, fx->dev_key) != 1);
    ERR_clear_error();
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);

    /* and chains to the CA as a TLS client certificate */
    assert_int_equal(X509_STORE_add_cert(store, fx->ca->cert), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    ok = X509_verify_cert(ctx);
    if (ok != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

static void test_issued_validity_is_the_template_validity(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    struct tm tm;
    X509 *cert;

    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    fx->label.max_validity_days = 7;
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm), 1);
    assert_int_equal(timegm(&tm), t.not_before);
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm), 1);
    assert_int_equal(timegm(&tm), t.not_after);
    assert_int_equal(t.not_after - t.not_before, 7 * DAY - 1);
}

/* The certificate's SubjectPublicKeyInfo comes from the key, not from the
 * request: a compressed point is issued uncompressed. */
static void test_issued_key_is_encoded_from_the_parsed_key(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    const unsigned char *bits;
    unsigned char *mine = NULL, *theirs = NULL;
    int len, n, m;
    X509 *cert;

    fx_csr(fx, csr_file("ec-compressed.der"));
    cert = issue(fx, fx->ca, &t);
    assert_int_equal(X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, X509_get_X509_PUBKEY(cert)),
                     1);
    assert_int_equal(len, 65);
    assert_int_equal(bits[0], 0x04);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->csr->pubkey), 1);

    fx_csr(fx, csr_file("rsa-2048.der"));
    cert = issue(fx, fx->ca, &t);
    n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &mine);
    m = i2d_PUBKEY(fx->csr->pubkey, &theirs);
    assert_int_equal(n, m);
    assert_memory_equal(mine, theirs, (size_t)n);
    OPENSSL_free(mine);
    OPENSSL_free(theirs);
}

/* A template made straight from a request (no profile) gets no request bytes: the
 * parameters of an rsaEncryption key are written as NULL. */
static void test_ca_issue_never_copies_the_request_spki(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t = {0};
    const X509_ALGOR *alg;
    const ASN1_OBJECT *obj;
    const void *pval;
    unsigned char *der = NULL;
    const unsigned char *p;
    X509 *issued = NULL, *cert;
    int ptype, len;

    fx_csr(fx, csr_file("hostile-rsa-params.der"));
    t.subject = fx->csr->subject;
    t.pubkey = fx->csr->pubkey;
    t.not_before = time(NULL);
    t.not_after = t.not_before + DAY;
    assert_int_equal(ca_serial_random(t.serial), KP_OK);
    assert_int_equal(ca_issue(fx->ca, &t, &issued), KP_OK);
    len = i2d_X509(issued, &der);
    assert_true(len > 0);
    p = der;
    cert = d2i_X509(NULL, &p, len);
    assert_non_null(cert);
    assert_int_equal(
        X509_PUBKEY_get0_param(NULL, NULL, NULL, (X509_ALGOR **)&alg, X509_get_X509_PUBKEY(cert)),
        1);
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    assert_int_equal(OBJ_obj2nid(obj), NID_rsaEncryption);
    assert_int_equal(ptype, V_ASN1_NULL);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->csr->pubkey), 1);
    X509_free(cert);
    X509_free(issued);
    OPENSSL_free(der);
}

/* ---- ca_load ---- */

static void test_ca_load_refuses_a_key_that_does_not_match(void **state)
{
    struct fixture *fx = *state;
    X509_NAME *subj = name_of("mismatch");
    X509 *root = NULL;

    fx->tmp_key = ec_key("P-256");
    assert_int_equal(ca_create_root(fx->ca_key, subj, 30, &root), KP_OK);
    assert_int_equal(ca_from_files(fx, "mismatch", root, fx->tmp_key, &fx->tmp_ca), KP_ERR_CONFIG);
    assert_null(fx->tmp_ca);
    X509_NAME_free(subj);
    X509_free(root);
}

static void test_ca_load_refuses_an_end_entity_certificate(void **state)
{
    struct fixture *fx = *state;
    struct ca_template t;
    X509 *leaf;

    fx_csr(fx, csr_build(fx->dev_key, cn_only, NULL));
    leaf = issue(fx, fx->ca, &t);
    assert_int_equal(ca_from_files(fx, "leaf", leaf, fx->dev_key, &fx->tmp_ca), KP_ERR_CONFIG);
    assert_null(fx->tmp_ca);
}

static void test_ca_load_builds_the_cacerts_answer(void **state)
{
    struct fixture *fx = *state;
    assert_non_null(fx->ca->cert);
    assert_int_equal(sk_X509_num(fx->ca->chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(fx->ca->chain, 0), fx->ca->cert), 0);
    assert_non_null(fx->ca->cacerts_der);
    assert_true(fx->ca->cacerts_der_len > 100);
    assert_int_equal(fx->ca->cacerts_der[0], 0x30);
}

#define T(f) cmocka_unit_test_teardown(f, fx_reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_br_max_days_changes_exactly_at_each_step),
        T(test_br_max_days_before_and_long_after_the_schedule),
        T(test_allowed_key_types_pass),
        T(test_key_type_outside_the_label_set_is_refused),
        T(test_weak_or_unknown_keys_are_refused_as_key_type),
        T(test_allowed_subject_attributes_pass),
        T(test_subject_attribute_outside_the_allowed_list_is_refused),
        T(test_subject_values_must_be_1_to_64_characters),
        T(test_subject_strings_must_be_printable_or_utf8),
        T(test_printable_string_holds_only_its_alphabet),
        T(test_utf8_control_characters_are_refused),
        T(test_country_must_be_an_iso_3166_code),
        T(test_at_most_one_of_each_attribute_but_ou_and_dc),
        T(test_multi_valued_rdn_is_refused),
        T(test_each_attribute_has_its_upper_bound),
        T(test_serial_number_must_be_printable),
        T(test_dc_and_email_address_are_ia5_with_checked_content),
        T(test_unsound_keys_and_weak_signatures_are_refused),
        T(test_csr_without_subject_or_san_is_refused),
        T(test_too_many_sans_is_refused),
        T(test_allowed_san_types_pass),
        T(test_email_and_uri_sans_are_checked),
        T(test_other_name_san_is_refused),
        T(test_invalid_dns_names_are_refused),
        T(test_valid_dns_names_pass),
        T(test_dns_labels_starting_or_ending_with_hyphen_are_refused),
        T(test_dns_label_over_63_characters_is_refused),
        T(test_validity_is_capped_by_max_validity_days),
        T(test_validity_is_capped_by_the_br_schedule),
        T(test_validity_is_capped_by_the_ca_not_after),
        T(test_expired_ca_is_unavailable),
        T(test_issued_certificate_is_a_critical_ca_false_end_entity),
        T(test_key_usage_follows_the_key_type),
        T(test_extended_key_usage_follows_the_label),
        T(test_key_identifiers_link_to_the_ca),
        T(test_issued_sans_equal_the_csr_sans),
        T(test_serial_is_20_positive_octets),
        T(test_serial_random_is_positive_and_never_shorter),
        T(test_issued_certificate_verifies_with_the_ca_key),
        T(test_issued_key_is_encoded_from_the_parsed_key),
        T(test_ca_issue_never_copies_the_request_spki),
        T(test_issued_validity_is_the_template_validity),
        T(test_ca_load_refuses_a_key_that_does_not_match),
        T(test_ca_load_refuses_an_end_entity_certificate),
        T(test_ca_load_builds_the_cacerts_answer),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
