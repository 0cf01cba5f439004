/* Unauthenticated refusals in the audit trail, bounded: per source address,
 * label, operation, outcome and reason, the first refusal of a window writes
 * its own row and the others are counted into one summary row, written when
 * the window closes (or its slot is needed, or at shutdown). Fixed memory: a
 * direct-mapped table, like ratelimit.c. docs/audit.md. */
#ifndef KP_REFUSALS_H
#define KP_REFUSALS_H

#include <time.h>

#include "store/store.h"

/* Longest subject and detail an unauthenticated refusal row keeps (bytes). */
#define REFUSAL_SUBJECT_MAX 64
#define REFUSAL_DETAIL_MAX 128

struct refusals;

/* Summaries go to store (borrowed; must outlive the table) every window
 * seconds at most. */
struct refusals *refusals_new(struct store *store, long window);
/* Writes the summaries still open, then frees. NULL is fine. */
void refusals_free(struct refusals *r);

/* Audit one refusal of a client that did not authenticate: ev is written
 * (subject and detail cut to the maxima above) when it is the first from addr
 * (the client's host address) with its label, event, outcome and detail in
 * the window; otherwise it is only counted. */
void refusals_audit(struct refusals *r, const struct store_audit *ev, const char *addr, time_t now);

#endif
