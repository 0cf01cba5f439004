/* utf8_seq_len and utf8_sanitize: RFC 3629 well-formed sequences pass as
 * they are; every other byte is shown as \xNN, never dropped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

static size_t seq(const char *s)
{
    return utf8_seq_len((const unsigned char *)s, strlen(s));
}

static void expect_sanitized(const char *in, const char *want)
{
    char *out = utf8_sanitize(in);
    assert_string_equal(out, want);
    free(out);
}

static void test_well_formed_sequences_have_their_length(void **state)
{
    (void)state;
    assert_int_equal(seq("a"), 1);
    assert_int_equal(seq("\n"), 1);
    assert_int_equal(seq("\xc3\xa9"), 2);         /* U+00E9 */
    assert_int_equal(seq("\xe2\x82\xac"), 3);     /* U+20AC */
    assert_int_equal(seq("\xf0\x9f\x98\x80"), 4); /* U+1F600 */
    assert_int_equal(seq("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
}

static void test_ill_formed_sequences_are_refused(void **state)
{
    (void)state;
    assert_int_equal(seq("\xff"), 0);
    assert_int_equal(seq("\x80"), 0);             /* lone continuation */
    assert_int_equal(seq("\xc0\xaf"), 0);         /* overlong '/' */
    assert_int_equal(seq("\xc1\xbf"), 0);         /* overlong */
    assert_int_equal(seq("\xe0\x80\xaf"), 0);     /* overlong */
    assert_int_equal(seq("\xed\xa0\x80"), 0);     /* surrogate U+D800 */
    assert_int_equal(seq("\xf0\x80\x80\xaf"), 0); /* overlong */
    assert_int_equal(seq("\xf4\x90\x80\x80"), 0); /* past U+10FFFF */
    assert_int_equal(seq("\xf5\x80\x80\x80"), 0);
    assert_int_equal(seq("\xe2\x82"), 0); /* truncated */
    assert_int_equal(seq("\xc3"
                         "a"),
                     0); /* no continuation */
    assert_int_equal(utf8_seq_len((const unsigned char *)"", 0), 0);
}

static void test_sanitize_keeps_utf8_and_shows_other_bytes_as_hex(void **state)
{
    (void)state;
    expect_sanitized("plain ascii, \"quotes\" and \\", "plain ascii, \"quotes\" and \\");
    expect_sanitized("caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac");
    expect_sanitized("evil\n\xff", "evil\n\\xff");
    expect_sanitized("\xc0\xaf", "\\xc0\\xaf");
    expect_sanitized("\xe2\x82", "\\xe2\\x82");
    expect_sanitized("\xed\xa0\x80x", "\\xed\\xa0\\x80x");
    expect_sanitized("", "");
    assert_null(utf8_sanitize(NULL));
}

static void test_sanitize_of_all_bad_bytes_grows_four_times(void **state)
{
    char in[256], *out;
    (void)state;
    memset(in, 0xff, sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    out = utf8_sanitize(in);
    assert_int_equal(strlen(out), 4 * (sizeof(in) - 1));
    assert_memory_equal(out, "\\xff\\xff", 8);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_sequences_have_their_length),
        cmocka_unit_test(test_ill_formed_sequences_are_refused),
        cmocka_unit_test(test_sanitize_keeps_utf8_and_shows_other_bytes_as_hex),
        cmocka_unit_test(test_sanitize_of_all_bad_bytes_grows_four_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
