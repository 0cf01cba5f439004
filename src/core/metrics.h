/* Process-wide counters for the Prometheus text format (GET /metrics).
 * Label values come only from configuration and fixed names, never from raw
 * client input, so the number of series stays bounded. Thread-safe. */
#ifndef KP_METRICS_H
#define KP_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* Most series kept for requests; past it they add up under op="other". */
#define METRICS_MAX_SERIES 512

/* One answered request: operation name ("simpleenroll", "admin", ...),
 * label ("" when none), HTTP status and seconds it took. Enrollments (any op
 * with `enrollment` set) also feed the latency histogram and, on 200, the
 * issued counter. */
void metrics_request(const char *op, const char *label, int status, double seconds,
                     bool enrollment);
void metrics_otp_failure(void);
/* One request answered over EST-coaps (it is counted by metrics_request
 * too): kipuka_coaps_requests_total. */
void metrics_coaps_request(void);
/* A DTLS session the EST-coaps server keeps began (+1) or ended (-1):
 * the kipuka_coaps_sessions gauge, bounded by coap.max_sessions. */
void metrics_coaps_sessions(int delta);
void metrics_store_error(void);

/* Append the exposition text (version 0.0.4) to a malloc'd string; the
 * caller frees *out. gauges: extra lines (e.g. pending requests), may be NULL. */
void metrics_render(const char *gauges, char **out, size_t *len);

/* Forget everything (tests). */
void metrics_reset(void);

#endif
