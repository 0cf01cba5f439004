/* Requests held for manual approval: list, approve, reject. The certificate
 * itself is issued when the client repeats its request (RFC 7030 4.2.3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_internal.h"
#include "core/xalloc.h"
#include "est/approval.h"

/* "a\nb" (sep '\n') as ["a", "b"]; "" as []. */
static json_t *request_split(const char *s, char sep)
{
    json_t *a = json_array();

    while (s != NULL && *s != '\0') {
        size_t n = strcspn(s, (char[]){sep, '\0'});
        json_array_append_new(a, json_stringn(s, n));
        s += n;
        if (*s == sep)
            s++;
    }
    return a;
}

/* One held request as the operator sees it (docs/approval.md lists the
 * fields): who asked, how, and what the certificate would carry. */
static void request_one(const struct store_pending *p, void *arg)
{
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s?, s:o, s:s?, s:o, s:s?, s:s, s:I, s:I, s:I, s:s?, s:s?}",
        "id", (json_int_t)p->id, "label", p->label, "operation", p->operation, "requester",
        p->requester, "auth_method", p->auth_method, "subject", p->subject, "sans",
        request_split(p->sans, '\n'), "key_type", p->key_type, "ekus", request_split(p->ekus, ','),
        "fingerprint", p->fingerprint, "status", approval_state(p, (int64_t)time(NULL)),
        "created_at", (json_int_t)p->created_at, "expires_at", (json_int_t)p->expires_at,
        "decided_at", (json_int_t)p->decided_at, "decided_by", p->decided_by, "serial", p->serial);

    if (o == NULL) /* never drop a request from the operator's view unseen */
        o = json_pack("{s:I, s:s}", "id", (json_int_t)p->id, "status",
                      approval_state(p, (int64_t)time(NULL)));
    json_array_append_new(arg, o);
}

static void requests_list(struct admin_call *x)
{
    char *status = admin_query(x, "status");
    json_t *list = json_array();
    enum kp_err rc;

    if (status != NULL && strcmp(status, "pending") != 0 && strcmp(status, "approved") != 0 &&
        strcmp(status, "rejected") != 0 && strcmp(status, "issued") != 0 &&
        strcmp(status, "expired") != 0) {
        admin_error(x, 400, "bad_request",
                    "status must be pending, approved, rejected, issued or expired");
        goto out;
    }
    rc = store_pending_list(x->a->store, status, (int64_t)time(NULL), request_one, list);
    if (rc != KP_OK) {
        admin_store_error(x, rc);
        goto out;
    }
    admin_json(x, 200, json_pack("{s:O}", "requests", list));
out:
    json_decref(list);
    free(status);
}

static void requests_decide(struct admin_call *x, int64_t id, bool approve)
{
    enum kp_err rc = approval_decide(x->a->store, id, approve, x->who, x->req->peer_addr);

    if (rc == KP_ERR_NOT_FOUND)
        admin_error(x, 404, "not_found", "no pending request with this id");
    else if (rc != KP_OK)
        admin_store_error(x, rc);
    else
        admin_json(x, 200,
                   json_pack("{s:I, s:s}", "id", (json_int_t)id, "status",
                             approve ? "approved" : "rejected"));
}

void admin_route_requests(struct admin_call *x, const char *rest)
{
    char *end = NULL;
    long long id;

    if (*rest == '\0') {
        if (admin_method_is(x, "GET"))
            requests_list(x);
        return;
    }
    id = strtoll(rest + 1, &end, 10);
    if (end == rest + 1 || id <= 0 ||
        (strcmp(end, "/approve") != 0 && strcmp(end, "/reject") != 0)) {
        admin_error(x, 404, "not_found", "no such admin route");
        return;
    }
    if (admin_method_is(x, "POST"))
        requests_decide(x, (int64_t)id, strcmp(end, "/approve") == 0);
}

struct count_walk {
    long n;
};

static void count_one(const struct store_pending *p, void *arg)
{
    (void)p;
    ((struct count_walk *)arg)->n++;
}

char *admin_pending_gauge(struct admin_server *a)
{
    struct count_walk w = {0};

    if (store_pending_list(a->store, "pending", (int64_t)time(NULL), count_one, &w) != KP_OK)
        return NULL;
    return xasprintf("# HELP kipuka_pending_requests Requests waiting for an operator's decision.\n"
                     "# TYPE kipuka_pending_requests gauge\n"
                     "kipuka_pending_requests %ld\n",
                     w.n);
}
