#include "core/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define METRICS_NAME_MAX 48

/* Upper bounds in seconds of the enrollment latency buckets (+Inf implied). */
static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

struct series {
    char op[METRICS_NAME_MAX];
    char label[METRICS_NAME_MAX];
    int status;
    uint64_t count;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series requests[METRICS_MAX_SERIES];
static size_t nrequests;
static uint64_t latency_buckets[NBOUNDS + 1];
static double latency_sum;
static uint64_t latency_count;
static uint64_t issued;
static uint64_t otp_failures;
static uint64_t store_errors;
static uint64_t coaps_requests;
static int64_t coaps_sessions;

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, METRICS_NAME_MAX, "%s", src != NULL ? src : "");
}

static struct series *series_find(const char *op, const char *label, int status)
{
    for (size_t i = 0; i < nrequests; i++) {
        struct series *s = &requests[i];
        if (s->status == status && strncmp(s->op, op, METRICS_NAME_MAX - 1) == 0 &&
            strncmp(s->label, label, METRICS_NAME_MAX - 1) == 0)
            return s;
    }
    if (nrequests < METRICS_MAX_SERIES) {
        struct series *s = &requests[nrequests++];
        copy_name(s->op, op);
        copy_name(s->label, label);
        s->status = status;
        return s;
    }
    return NULL;
}

void metrics_request(const char *op, const char *label, int status, double seconds, bool enrollment)
{
    struct series *s;

    pthread_mutex_lock(&lock);
    s = series_find(op != NULL ? op : "", label != NULL ? label : "", status);
    if (s == NULL)
        s = series_find("other", "", status);
    if (s != NULL)
        s->count++;
    if (enrollment) {
        size_t b = 0;
        while (b < NBOUNDS && seconds > latency_bounds[b])
            b++;
        latency_buckets[b]++;
        latency_sum += seconds;
        latency_count++;
        if (status == 200)
            issued++;
    }
    pthread_mutex_unlock(&lock);
}

void metrics_otp_failure(void)
{
    pthread_mutex_lock(&lock);
    otp_failures++;
    pthread_mutex_unlock(&lock);
}

void metrics_coaps_request(void)
{
    pthread_mutex_lock(&lock);
    coaps_requests++;
    pthread_mutex_unlock(&lock);
}

void metrics_coaps_sessions(int delta)
{
    pthread_mutex_lock(&lock);
    coaps_sessions += delta;
    pthread_mutex_unlock(&lock);
}

void metrics_store_error(void)
{
    pthread_mutex_lock(&lock);
    store_errors++;
    pthread_mutex_unlock(&lock);
}

struct text {
    char *buf;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len)
            break;
        t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0);
        t->buf = xrealloc(t->buf, t->cap);
    }
    t->len += (size_t)n;
}

void metrics_render(const char *gauges, char **out, size_t *len)
{
    struct text t = {.buf = xmalloc(4096), .cap = 4096};
    uint64_t cumulative = 0;

    t.buf[0] = '\0';
    pthread_mutex_lock(&lock);
    text_add(&t, "# HELP kipuka_requests_total Requests answered, by operation, label and "
                 "status.\n# TYPE kipuka_requests_total counter\n");
    for (size_t i = 0; i < nrequests; i++)
        text_add(&t, "kipuka_requests_total{op=\"%s\",label=\"%s\",status=\"%d\"} %llu\n",
                 requests[i].op, requests[i].label, requests[i].status,
                 (unsigned long long)requests[i].count);
    text_add(&t, "# HELP kipuka_enrollment_duration_seconds Time to answer an enrollment.\n"
                 "# TYPE kipuka_enrollment_duration_seconds histogram\n");
    for (size_t b = 0; b < NBOUNDS; b++) {
        cumulative += latency_buckets[b];
        text_add(&t, "kipuka_enrollment_duration_seconds_bucket{le=\"%g\"} %llu\n",
                 latency_bounds[b], (unsigned long long)cumulative);
    }
    cumulative += latency_buckets[NBOUNDS];
    text_add(&t,
             "kipuka_enrollment_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
             "kipuka_enrollment_duration_seconds_sum %.6f\n"
             "kipuka_enrollment_duration_seconds_count %llu\n",
             (unsigned long long)cumulative, latency_sum, (unsigned long long)latency_count);
    text_add(&t,
             "# HELP kipuka_certificates_issued_total Certificates issued.\n"
             "# TYPE kipuka_certificates_issued_total counter\n"
             "kipuka_certificates_issued_total %llu\n"
             "# HELP kipuka_otp_failures_total Enrollments refused for a wrong or used OTP.\n"
             "# TYPE kipuka_otp_failures_total counter\n"
             "kipuka_otp_failures_total %llu\n"
             "# HELP kipuka_store_errors_total Requests answered 503 or 500 by the store.\n"
             "# TYPE kipuka_store_errors_total counter\n"
             "kipuka_store_errors_total %llu\n"
             "# HELP kipuka_coaps_requests_total Requests answered over EST-coaps (DTLS).\n"
             "# TYPE kipuka_coaps_requests_total counter\n"
             "kipuka_coaps_requests_total %llu\n"
             "# HELP kipuka_coaps_sessions DTLS sessions the EST-coaps server keeps.\n"
             "# TYPE kipuka_coaps_sessions gauge\n"
             "kipuka_coaps_sessions %lld\n",
             (unsigned long long)issued, (unsigned long long)otp_failures,
             (unsigned long long)store_errors, (unsigned long long)coaps_requests,
             (long long)coaps_sessions);
    pthread_mutex_unlock(&lock);
    if (gauges != NULL)
        text_add(&t, "%s", gauges);
    *out = t.buf;
    *len = t.len;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    nrequests = 0;
    memset(latency_buckets, 0, sizeof(latency_buckets));
    latency_sum = 0;
    latency_count = 0;
    issued = otp_failures = store_errors = coaps_requests = 0;
    pthread_mutex_unlock(&lock);
}
