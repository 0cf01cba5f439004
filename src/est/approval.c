#include "est/approval.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum kp_err approval_decide(struct store *s, int64_t id, bool approve, const char *by,
                            const char *peer)
{
    struct store_pending *p = NULL;
    struct store_audit ev = {0};
    char detail[160];
    enum kp_err rc;

    rc = store_pending_get(s, id, &p);
    if (rc != KP_OK)
        return rc;
    snprintf(detail, sizeof(detail), "request %lld %s by %s", (long long)id,
             approve ? "approved" : "rejected", by);
    ev.event = approve ? "request.approve" : "request.reject";
    ev.outcome = "ok";
    ev.label = p->label;
    ev.subject = p->requester;
    ev.peer = peer;
    ev.detail = detail;
    rc = store_pending_decide(s, id, approve ? "approved" : "rejected", by, (int64_t)time(NULL),
                              &ev);
    store_pending_free(p);
    return rc;
}

const char *approval_state(const struct store_pending *p, int64_t now)
{
    if ((strcmp(p->status, "pending") == 0 || strcmp(p->status, "approved") == 0) &&
        p->expires_at <= now)
        return "expired";
    return p->status;
}
