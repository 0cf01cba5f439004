/* refusals_audit: unauthenticated refusals make one row per group and window
 * plus a summary with the count; the counts add up, nothing is lost at
 * refusals_free, and subject and detail are capped. On a SQLite store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "est/refusals.h"

struct fixture {
    char dir[64];
    struct store *s;
};

struct seen {
    long rows, summaries, total;
    size_t max_subject, max_detail;
    char last_detail[256];
};

static int fx_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char url[128];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kp-test-refusals-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(url, sizeof(url), "sqlite:%s/kipuka.db", fx->dir);
    assert_int_equal(store_open(url, &fx->s), KP_OK);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d;
    struct dirent *e;

    store_close(fx->s);
    d = opendir(fx->dir);
    for (e = d != NULL ? readdir(d) : NULL; e != NULL; e = readdir(d))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    if (d != NULL)
        closedir(d);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void seen_one(int64_t at, const struct store_audit *a, void *arg)
{
    struct seen *w = arg;
    (void)at;
    if (a->subject != NULL && strlen(a->subject) > w->max_subject)
        w->max_subject = strlen(a->subject);
    if (a->detail != NULL && strlen(a->detail) > w->max_detail)
        w->max_detail = strlen(a->detail);
    w->rows++;
    if (a->detail != NULL && strstr(a->detail, " more refusals from ") != NULL) {
        w->summaries++;
        w->total += strtol(a->detail, NULL, 10);
    } else {
        w->total++;
    }
    snprintf(w->last_detail, sizeof(w->last_detail), "%s", a->detail ? a->detail : "");
}

static struct seen audit_seen(struct store *s)
{
    struct seen w = {0};
    assert_int_equal(store_audit_list(s, 0, seen_one, &w), KP_OK);
    return w;
}

static const struct store_audit unknown_otp = {
    .event = "simpleenroll",
    .outcome = "unauthorized",
    .label = "default",
    .subject = "mallory",
    .peer = "192.0.2.7:40000",
    .detail = "unknown OTP",
};

static void test_a_flood_is_one_row_then_one_count_at_free(void **state)
{
    struct fixture *fx = *state;
    struct refusals *r = refusals_new(fx->s, 60);
    struct seen w;

    for (int i = 0; i < 1000; i++)
        refusals_audit(r, &unknown_otp, "192.0.2.7", 1000 + i / 100);
    w = audit_seen(fx->s);
    assert_int_equal(w.rows, 1);
    refusals_free(r);
    w = audit_seen(fx->s);
    assert_int_equal(w.rows, 2);
    assert_int_equal(w.summaries, 1);
    assert_int_equal(w.total, 1000);
    assert_non_null(strstr(w.last_detail, "999 more refusals from 192.0.2.7"));
    assert_non_null(strstr(w.last_detail, ": unknown OTP"));
}

static void test_groups_are_address_and_reason_and_windows_restart(void **state)
{
    struct fixture *fx = *state;
    struct refusals *r = refusals_new(fx->s, 10);
    struct store_audit other = unknown_otp;
    struct seen w;

    other.detail = "no credentials";
    refusals_audit(r, &unknown_otp, "192.0.2.7", 1000);
    refusals_audit(r, &unknown_otp, "192.0.2.7", 1001);
    refusals_audit(r, &other, "192.0.2.7", 1001);       /* another reason */
    refusals_audit(r, &unknown_otp, "192.0.2.8", 1002); /* another address */
    refusals_audit(r, &unknown_otp, "192.0.2.7", 1010); /* the next window */
    w = audit_seen(fx->s);
    /* 4 full rows and the closed window's summary of 1 */
    assert_int_equal(w.rows, 5);
    assert_int_equal(w.summaries, 1);
    assert_int_equal(w.total, 5);
    refusals_free(r);
    w = audit_seen(fx->s);
    assert_int_equal(w.total, 5);
    assert_int_equal(w.rows, 5);
}

static void test_subject_and_detail_are_capped(void **state)
{
    struct fixture *fx = *state;
    struct refusals *r = refusals_new(fx->s, 60);
    struct store_audit ev = unknown_otp;
    char subject[700], detail[700];
    struct seen w;

    memset(subject, 'A', sizeof(subject) - 1);
    subject[sizeof(subject) - 1] = '\0';
    /* a two-byte character across the cut: dropped whole */
    subject[REFUSAL_SUBJECT_MAX - 1] = '\xc3';
    subject[REFUSAL_SUBJECT_MAX] = '\xa9';
    memset(detail, 'B', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    ev.subject = subject;
    ev.detail = detail;
    refusals_audit(r, &ev, "192.0.2.9", 1000);
    refusals_audit(r, &ev, "192.0.2.9", 1000);
    refusals_free(r);
    w = audit_seen(fx->s);
    assert_int_equal(w.total, 2);
    assert_int_equal(w.max_subject, REFUSAL_SUBJECT_MAX - 1);
    assert_true(w.max_detail <= REFUSAL_DETAIL_MAX + 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_flood_is_one_row_then_one_count_at_free, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_groups_are_address_and_reason_and_windows_restart,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_subject_and_detail_are_capped, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
