/* logq: lines come out whole and in order, a full queue drops and counts
 * (and says so once there is room), urgent lines skip the batch delay, and
 * the fatal flush writes what is queued at once. The descriptor is a pipe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/logq.h"

struct sink {
    int fd;
    char *buf;
    size_t len;
};

static size_t notice(uint64_t n, char *buf, size_t len)
{
    int w = snprintf(buf, len, "dropped %llu\n", (unsigned long long)n);
    return w > 0 ? (size_t)w : 0;
}

/* Reads fd until EOF. */
static void *sink_main(void *arg)
{
    struct sink *s = arg;
    char tmp[4096];
    ssize_t r;

    while ((r = read(s->fd, tmp, sizeof(tmp))) > 0) {
        s->buf = realloc(s->buf, s->len + (size_t)r + 1);
        assert_non_null(s->buf);
        memcpy(s->buf + s->len, tmp, (size_t)r);
        s->len += (size_t)r;
        s->buf[s->len] = '\0';
    }
    return NULL;
}

static void push_line(struct logq *q, int i, int flags, bool *ok)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "line %06d padding-padding\n", i);
    *ok = logq_push(q, line, (size_t)n, flags);
}

static void test_lines_come_out_whole_and_in_order(void **state)
{
    (void)state;
    int p[2];
    struct sink s = {0};
    pthread_t t;
    bool ok;
    char want[64];

    assert_int_equal(pipe(p), 0);
    s.fd = p[0];
    pthread_create(&t, NULL, sink_main, &s);
    struct logq *q = logq_new(p[1], 4096, 500, notice);
    for (int i = 0; i < 5000; i++) {
        push_line(q, i, LOGQ_WAIT, &ok);
        assert_true(ok);
    }
    logq_free(q); /* writes everything before it returns */
    close(p[1]);
    pthread_join(t, NULL);
    close(p[0]);
    assert_int_equal(s.len, 5000 * 28);
    for (int i = 0; i < 5000; i++) {
        snprintf(want, sizeof(want), "line %06d padding-padding\n", i);
        assert_memory_equal(s.buf + (size_t)i * 28, want, 28);
    }
    free(s.buf);
}

static void test_a_full_queue_drops_counts_and_reports(void **state)
{
    (void)state;
    int p[2];
    struct sink s = {0};
    pthread_t t;
    bool ok;
    int written = 0, last = -1, dropped = 0;
    unsigned long long reported = 0, n;

    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    struct logq *q = logq_new(p[1], 1024, 0, notice);
    /* nobody reads yet: the pipe, then the ring, fill up */
    for (int i = 0; i < 2000; i++) {
        push_line(q, i, 0, &ok);
        dropped += !ok;
    }
    assert_true(dropped > 0);
    assert_int_equal(logq_dropped_total(q), (uint64_t)dropped);
    s.fd = p[0];
    pthread_create(&t, NULL, sink_main, &s);
    logq_free(q);
    close(p[1]);
    pthread_join(t, NULL);
    close(p[0]);
    for (char *l = s.buf, *e; l != NULL && *l != '\0'; l = e + 1) {
        int i;
        e = strchr(l, '\n');
        assert_non_null(e);
        if (sscanf(l, "dropped %llu", &n) == 1) {
            reported += n;
            continue;
        }
        assert_int_equal(e - l, 27);
        assert_int_equal(sscanf(l, "line %d", &i), 1);
        assert_true(i > last); /* in order, whole */
        last = i;
        written++;
    }
    assert_int_equal(reported, (unsigned long long)dropped);
    assert_int_equal(written + dropped, 2000);
    free(s.buf);
}

/* Reads what fd holds within ms milliseconds. */
static size_t read_within(int fd, char *buf, size_t len, int ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    ssize_t r;

    if (poll(&pf, 1, ms) != 1)
        return 0;
    r = read(fd, buf, len);
    return r > 0 ? (size_t)r : 0;
}

static void test_an_urgent_line_skips_the_batch_delay(void **state)
{
    (void)state;
    int p[2];
    char buf[128];

    assert_int_equal(pipe(p), 0);
    /* a 10 s batch delay: only urgency gets the line out in time */
    struct logq *q = logq_new(p[1], 4096, 10 * 1000 * 1000, notice);
    assert_true(logq_push(q, "warn x\n", 7, LOGQ_URGENT));
    assert_int_equal(read_within(p[0], buf, sizeof(buf), 2000), 7);
    assert_memory_equal(buf, "warn x\n", 7);
    logq_free(q);
    close(p[1]);
    close(p[0]);
}

static void test_the_fatal_flush_writes_the_queue_now_and_once(void **state)
{
    (void)state;
    int p[2];
    char buf[128];

    assert_int_equal(pipe(p), 0);
    struct logq *q = logq_new(p[1], 4096, 10 * 1000 * 1000, notice);
    assert_true(logq_push(q, "a\n", 2, 0));
    assert_true(logq_push(q, "b\n", 2, 0));
    logq_flush_fatal(q);
    assert_int_equal(read_within(p[0], buf, sizeof(buf), 0), 4);
    assert_memory_equal(buf, "a\nb\n", 4);
    logq_free(q);
    assert_int_equal(read_within(p[0], buf, sizeof(buf), 0), 0); /* nothing twice */
    close(p[1]);
    close(p[0]);
}

static void test_a_line_larger_than_the_queue_is_dropped(void **state)
{
    (void)state;
    int p[2];
    char big[200];

    memset(big, 'x', sizeof(big));
    assert_int_equal(pipe(p), 0);
    struct logq *q = logq_new(p[1], 128, 0, notice);
    assert_false(logq_push(q, big, sizeof(big), LOGQ_WAIT));
    assert_int_equal(logq_dropped_total(q), 1);
    logq_free(q);
    logq_free(NULL);
    close(p[1]);
    close(p[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_come_out_whole_and_in_order),
        cmocka_unit_test(test_a_full_queue_drops_counts_and_reports),
        cmocka_unit_test(test_an_urgent_line_skips_the_batch_delay),
        cmocka_unit_test(test_the_fatal_flush_writes_the_queue_now_and_once),
        cmocka_unit_test(test_a_line_larger_than_the_queue_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
