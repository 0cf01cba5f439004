/* http_route_est (RFC 7030 3.2.2) on the input as a request path: what it
 * accepts has a known operation and a label of at most EST_LABEL_MAX characters of
 * [A-Za-z0-9._-], and rebuilding the path from them gives the input back. */
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "est/est.h"
#include "http/route.h"
#include "support.h"

static const char label_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

static void check_route(const char *base, const char *path)
{
    struct est_request req;
    enum kp_err rc;
    size_t len;
    char *rebuilt;

    memset(&req, 0, sizeof(req));
    req.op = EST_OP__MAX;
    memset(req.label, 'Z', sizeof(req.label)); /* no NUL: http_route_est must write one */
    rc = http_route_est(base, path, &req);
    if (rc != KP_OK) {
        FUZZ_CHECK(rc == KP_ERR_NOT_FOUND || rc == KP_ERR_UNKNOWN_LABEL);
        return;
    }
    FUZZ_CHECK((unsigned)req.op < EST_OP__MAX);
    len = strnlen(req.label, sizeof(req.label));
    FUZZ_CHECK(len <= EST_LABEL_MAX);
    FUZZ_CHECK(strspn(req.label, label_chars) == len);
    if (len == 0)
        rebuilt = xasprintf("%s/%s", base, est_op_name(req.op));
    else
        rebuilt = xasprintf("%s/%s/%s", base, req.label, est_op_name(req.op));
    FUZZ_CHECK(strcmp(rebuilt, path) == 0);
    free(rebuilt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fuzz_cstring(data, size);

    check_route("/.well-known/est", path);
    /* other base paths config.c allows, against the same input */
    check_route("/est", path);
    check_route("/a/b.c/d", path);
    free(path);
    return 0;
}
