/* Manual approval (label approval = "manual"): an operator's decision on a
 * held request, for the CLI today and the admin API later. Transport-free:
 * it only needs the store. */
#ifndef KP_APPROVAL_H
#define KP_APPROVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

/* Approve or reject request id, audited as "request.approve" or
 * "request.reject" with who decided (by) and from where (peer, e.g. "cli").
 * KP_ERR_NOT_FOUND when there is no such request still pending (decided
 * already, issued or expired). The certificate itself is issued when the
 * client repeats its request (RFC 7030 4.2.3). */
enum kp_err approval_decide(struct store *s, int64_t id, bool approve, const char *by,
                            const char *peer);

/* The state an operator sees: the stored status, or "expired" for a
 * pending or approved request past its expires_at. */
const char *approval_state(const struct store_pending *p, int64_t now);

#endif
