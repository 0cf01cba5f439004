/* The HTTP glue of EST without a server: headers into an est_request
 * (media types, Basic credentials, base64 or DER bodies) and est_answers
 * and admin_responses into what HTTP sends (RFC 7030 4, RFC 8951). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/xalloc.h"
#include "http/est_input.h"
#include "http/media.h"
#include "http/reply.h"

#define CT_CERTS "application/pkcs7-mime; smime-type=certs-only"

static void test_media_type_ignores_case_spaces_and_parameters(void **state)
{
    (void)state;
    assert_true(http_media_is("application/pkcs10", "application/pkcs10"));
    assert_true(http_media_is("  Application/PKCS10 ; charset=x", "application/pkcs10"));
    assert_false(http_media_is("application/pkcs10x", "application/pkcs10"));
    assert_false(http_media_is(NULL, "application/pkcs10"));
    assert_true(http_accepts_json("text/plain, application/json;q=0.5"));
    assert_false(http_accepts_json("application/jsonx, */*"));
    assert_false(http_accepts_json(NULL));
}

static void test_input_maps_headers_and_decodes_the_body(void **state)
{
    static const unsigned char der[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    struct est_request r;
    struct http_est_input in;
    (void)state;

    /* "dev:pw" */
    memset(&r, 0, sizeof(r));
    r.method = EST_POST;
    http_est_input_fill(&r, &in, "application/pkcs10", "application/json", "Basic ZGV2OnB3",
                        (const unsigned char *)"MAMCAQU=\n", 9);
    assert_int_equal(r.content_type, EST_MEDIA_PKCS10);
    assert_int_equal(r.accept, EST_MEDIA_JSON);
    assert_string_equal(r.cred.user, "dev");
    assert_string_equal(r.cred.password, "pw");
    assert_false(r.cred.password_malformed);
    assert_null(r.body_error);
    assert_int_equal(r.body_len, sizeof(der));
    assert_memory_equal(r.body, der, sizeof(der));
    http_est_input_cleanup(&in);

    /* raw DER is taken as sent; a header that is not Basic is malformed */
    memset(&r, 0, sizeof(r));
    r.method = EST_POST;
    http_est_input_fill(&r, &in, "text/plain", NULL, "Bearer abc", der, sizeof(der));
    assert_int_equal(r.content_type, EST_MEDIA_OTHER);
    assert_int_equal(r.accept, EST_MEDIA_NONE);
    assert_null(r.cred.user);
    assert_true(r.cred.password_malformed);
    assert_int_equal(r.body_len, sizeof(der));
    http_est_input_cleanup(&in);

    /* neither base64 nor DER: the core refuses it after authentication */
    memset(&r, 0, sizeof(r));
    r.method = EST_POST;
    http_est_input_fill(&r, &in, NULL, "application/pkix-cert", NULL, (const unsigned char *)"!!!",
                        3);
    assert_int_equal(r.content_type, EST_MEDIA_NONE);
    assert_int_equal(r.accept, EST_MEDIA_NONE); /* HTTP answers in the RFC 7030 form only */
    assert_false(r.cred.password_malformed);
    assert_string_equal(r.body_error, "body is neither base64 nor DER");
    assert_int_equal(r.body_len, 0);
    http_est_input_cleanup(&in);

    /* an empty POST body stays empty; a GET body is not read */
    memset(&r, 0, sizeof(r));
    r.method = EST_POST;
    http_est_input_fill(&r, &in, NULL, NULL, NULL, (const unsigned char *)"", 0);
    assert_non_null(r.body);
    assert_int_equal(r.body_len, 0);
    assert_null(r.body_error);
    http_est_input_cleanup(&in);
    memset(&r, 0, sizeof(r));
    r.method = EST_GET;
    http_est_input_fill(&r, &in, NULL, NULL, NULL, (const unsigned char *)"!!!", 3);
    assert_null(r.body);
    assert_null(r.body_error);
    http_est_input_cleanup(&in);
}

static unsigned char *dup_bytes(const char *s, size_t *len)
{
    *len = strlen(s);
    return (unsigned char *)xstrdup(s);
}

static void test_one_part_is_base64_with_its_content_type(void **state)
{
    struct est_answer ans = {0};
    struct http_answer out = {0};
    unsigned char *der = NULL;
    size_t len = 0;
    (void)state;

    ans.outcome = EST_DONE;
    ans.nparts = 1;
    ans.parts[0].media = EST_MEDIA_CERTS;
    ans.parts[0].der = dup_bytes("certs", &ans.parts[0].len);
    snprintf(ans.auth_subject, sizeof(ans.auth_subject), "dev");
    http_est_reply(&out, EST_OP_CACERTS, &ans, NULL, NULL);
    assert_int_equal(out.status, 200);
    assert_string_equal(out.content_type, CT_CERTS);
    assert_true(out.base64_cte);
    assert_false(out.body_secret);
    assert_null(out.www_authenticate);
    assert_string_equal(out.body, "Y2VydHM=\n");
    assert_string_equal(out.auth_subject, "dev");
    assert_int_equal(base64_decode(out.body, out.body_len, &der, &len), KP_OK);
    assert_memory_equal(der, "certs", 5);
    free(der);
    http_answer_cleanup(&out);
    est_answer_cleanup(&ans);
}

/* body of a one-part answer for op with the given DER and secrecy, through memo */
static char *memo_reply(struct http_b64_memo *memo, enum est_op op, const char *der, bool secret)
{
    struct est_answer ans = {0};
    struct http_answer out = {0};
    char *body;

    ans.outcome = EST_DONE;
    ans.nparts = 1;
    ans.parts[0].media = op == EST_OP_CACERTS ? EST_MEDIA_CERTS : EST_MEDIA_PKIX_CERT;
    ans.parts[0].der = dup_bytes(der, &ans.parts[0].len);
    ans.parts[0].secret = secret;
    http_est_reply(&out, op, &ans, NULL, memo);
    body = xstrdup(out.body);
    http_answer_cleanup(&out);
    est_answer_cleanup(&ans);
    return body;
}

static int memo_holds(const struct http_b64_memo *m, const char *der)
{
    for (unsigned i = 0; i < HTTP_B64_MEMO_SLOTS; i++)
        if (m->slot[i].der != NULL && m->slot[i].der_len == strlen(der) &&
            memcmp(m->slot[i].der, der, strlen(der)) == 0)
            return 1;
    return 0;
}

/* The memo answers what encoding would: new bytes (a reload's new chain)
 * are encoded afresh, more chains than slots still come out right, and
 * neither key material nor an enrollment's certificate is kept. */
static void test_base64_memo_is_only_a_shortcut(void **state)
{
    static const char *const chains[] = {"chain-a", "chain-b", "chain-c",
                                         "chain-d", "chain-e", "chain-f"};
    struct http_b64_memo memo = {0};
    char *body, *want;
    (void)state;

    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
            body = memo_reply(&memo, EST_OP_CACERTS, chains[i], false);
            want = base64_encode((const unsigned char *)chains[i], strlen(chains[i]), NULL);
            assert_string_equal(body, want);
            assert_true(memo_holds(&memo, chains[i]));
            free(body);
            free(want);
        }
    body = memo_reply(&memo, EST_OP_CACERTS, "a private key", true);
    assert_string_equal(body, "YSBwcml2YXRlIGtleQ==\n");
    assert_false(memo_holds(&memo, "a private key"));
    free(body);
    body = memo_reply(&memo, EST_OP_SIMPLEENROLL, "a new certificate", false);
    assert_false(memo_holds(&memo, "a new certificate"));
    free(body);
    http_b64_memo_free(&memo);
}

/* RFC 7030 4.4.2: multipart/mixed, the key part first, each part base64
 * with CRLF line ends and its own headers. */
static void test_two_parts_are_multipart_mixed(void **state)
{
    struct est_answer ans = {0};
    struct http_answer out = {0};
    const char *boundary;
    char *want;
    (void)state;

    ans.outcome = EST_DONE;
    ans.nparts = 2;
    ans.parts[0].media = EST_MEDIA_PKCS8;
    ans.parts[0].der = dup_bytes("key", &ans.parts[0].len);
    ans.parts[0].secret = true;
    ans.parts[1].media = EST_MEDIA_CERTS;
    ans.parts[1].der = dup_bytes("cert", &ans.parts[1].len);
    http_est_reply(&out, EST_OP_SERVERKEYGEN, &ans, NULL, NULL);
    assert_int_equal(out.status, 200);
    assert_false(out.base64_cte);
    assert_true(out.body_secret);
    assert_int_equal(strncmp(out.content_type, "multipart/mixed; boundary=est-", 30), 0);
    boundary = out.content_type + strlen("multipart/mixed; boundary=");
    assert_int_equal(strlen(boundary), 4 + 24 + 1);
    want = xasprintf("--%s\r\nContent-Type: application/pkcs8\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\na2V5\r\n"
                     "--%s\r\nContent-Type: " CT_CERTS "\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\nY2VydA==\r\n"
                     "--%s--\r\n",
                     boundary, boundary, boundary);
    assert_string_equal(out.body, want);
    assert_int_equal(out.body_len, strlen(want));
    free(want);
    http_answer_cleanup(&out);
    est_answer_cleanup(&ans);
}

static void test_held_is_202_with_retry_after(void **state)
{
    struct est_answer ans = {0};
    struct http_answer out = {0};
    (void)state;

    ans.outcome = EST_HELD;
    ans.retry_after = 60;
    snprintf(ans.detail, sizeof(ans.detail), "request 7 is waiting for approval");
    http_est_reply(&out, EST_OP_SIMPLEENROLL, &ans, NULL, NULL);
    assert_int_equal(out.status, 202);
    assert_int_equal(out.err, KP_ERR_PENDING);
    assert_int_equal(out.retry_after, 60);
    assert_string_equal(out.content_type, "text/plain; charset=utf-8");
    assert_string_equal(out.body, "request 7 is waiting for approval\n");
    http_answer_cleanup(&out);
}

static void test_refusals_get_their_headers(void **state)
{
    struct est_answer ans = {0};
    struct http_answer out = {0};
    (void)state;

    ans.outcome = EST_FAILED;
    ans.err = KP_ERR_UNAUTHORIZED;
    ans.auth_method = "otp";
    http_est_reply(&out, EST_OP_SIMPLEENROLL, &ans, "application/json", NULL);
    assert_int_equal(out.status, 401);
    assert_string_equal(out.www_authenticate, HTTP_BASIC_CHALLENGE);
    assert_string_equal(out.auth_method, "otp");
    assert_string_equal(out.body,
                        "{\"error\":\"unauthorized\",\"message\":\"authentication required\"}");
    http_answer_cleanup(&out);

    memset(&out, 0, sizeof(out));
    ans.err = KP_ERR_METHOD;
    http_est_reply(&out, EST_OP_CSRATTRS, &ans, NULL, NULL);
    assert_int_equal(out.status, 405);
    assert_string_equal(out.allow, "GET, HEAD");
    assert_null(out.www_authenticate);
    http_answer_cleanup(&out);
    memset(&out, 0, sizeof(out));
    http_est_reply(&out, EST_OP_SIMPLEREENROLL, &ans, NULL, NULL);
    assert_string_equal(out.allow, "POST");
    http_answer_cleanup(&out);

    memset(&out, 0, sizeof(out));
    ans.err = KP_ERR_RATE_LIMITED;
    ans.retry_after = 17;
    http_est_reply(&out, EST_OP_SIMPLEENROLL, &ans, NULL, NULL);
    assert_int_equal(out.status, 429);
    assert_int_equal(out.retry_after, 17);
    assert_null(out.allow);
    http_answer_cleanup(&out);
}

/* The CRLs refuse as EST does: the admin side gives the error, HTTP the body. */
static void test_admin_est_style_error_is_rendered_like_est(void **state)
{
    struct admin_response resp = {0};
    struct http_answer out = {0};
    (void)state;

    resp.est_error = true;
    resp.status = 404;
    resp.err = KP_ERR_UNKNOWN_LABEL;
    snprintf(resp.detail, sizeof(resp.detail), "no CRL at this path");
    http_admin_reply(&out, &resp, NULL);
    assert_int_equal(out.status, 404);
    assert_string_equal(out.content_type, "text/plain; charset=utf-8");
    assert_string_equal(out.body, "no CRL at this path\n");
    http_answer_cleanup(&out);
    admin_response_cleanup(&resp);

    memset(&out, 0, sizeof(out));
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.content_type = "application/json";
    resp.body = xstrdup("{}\n");
    resp.body_len = 3;
    resp.www_authenticate = NULL;
    http_admin_reply(&out, &resp, NULL);
    assert_null(resp.body);
    assert_string_equal(out.body, "{}\n");
    assert_string_equal(out.content_type, "application/json");
    http_answer_cleanup(&out);
    admin_response_cleanup(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_type_ignores_case_spaces_and_parameters),
        cmocka_unit_test(test_input_maps_headers_and_decodes_the_body),
        cmocka_unit_test(test_one_part_is_base64_with_its_content_type),
        cmocka_unit_test(test_base64_memo_is_only_a_shortcut),
        cmocka_unit_test(test_two_parts_are_multipart_mixed),
        cmocka_unit_test(test_held_is_202_with_retry_after),
        cmocka_unit_test(test_refusals_get_their_headers),
        cmocka_unit_test(test_admin_est_style_error_is_rendered_like_est),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
