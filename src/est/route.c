/* RFC 7030 3.2.2: /.well-known/est[/label]/operation. */
#include <string.h>

#include "est/est.h"

static const char *const op_names[EST_OP__MAX] = {
    [EST_OP_CACERTS] = "cacerts",
    [EST_OP_SIMPLEENROLL] = "simpleenroll",
    [EST_OP_SIMPLEREENROLL] = "simplereenroll",
    [EST_OP_CSRATTRS] = "csrattrs",
    [EST_OP_SERVERKEYGEN] = "serverkeygen",
    [EST_OP_FULLCMC] = "fullcmc",
};

const char *est_op_name(enum est_op op)
{
    return (unsigned)op < EST_OP__MAX ? op_names[op] : "unknown";
}

static int route_op(const char *s, size_t len, enum est_op *op)
{
    for (int i = 0; i < EST_OP__MAX; i++) {
        if (strlen(op_names[i]) == len && memcmp(s, op_names[i], len) == 0) {
            *op = (enum est_op)i;
            return 1;
        }
    }
    return 0;
}

static int route_label_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

enum kp_err est_route(const char *base_path, const char *path, struct est_request *req)
{
    size_t base_len = strlen(base_path);
    const char *rest, *slash;
    size_t label_len = 0;

    if (strncmp(path, base_path, base_len) != 0 || path[base_len] != '/')
        return KP_ERR_NOT_FOUND;
    rest = path + base_len + 1;
    slash = strchr(rest, '/');
    if (slash != NULL) {
        label_len = (size_t)(slash - rest);
        if (label_len == 0 || label_len > EST_LABEL_MAX)
            return KP_ERR_UNKNOWN_LABEL;
        for (size_t i = 0; i < label_len; i++)
            if (!route_label_char_ok(rest[i]))
                return KP_ERR_UNKNOWN_LABEL;
        if (strchr(slash + 1, '/') != NULL)
            return KP_ERR_NOT_FOUND;
        if (!route_op(slash + 1, strlen(slash + 1), &req->op))
            return KP_ERR_NOT_FOUND;
        memcpy(req->label, rest, label_len);
    } else if (!route_op(rest, strlen(rest), &req->op)) {
        return KP_ERR_NOT_FOUND;
    }
    req->label[label_len] = '\0';
    return KP_OK;
}
