#include "http/route.h"

#include <string.h>

enum kp_err http_route_est(const char *base_path, const char *path, struct est_request *req)
{
    size_t base_len = strlen(base_path), label_len = 0;
    const char *rest, *slash;
    const struct est_op_info *op;

    if (strncmp(path, base_path, base_len) != 0 || path[base_len] != '/')
        return KP_ERR_NOT_FOUND;
    rest = path + base_len + 1;
    slash = strchr(rest, '/');
    if (slash != NULL) {
        label_len = (size_t)(slash - rest);
        if (!est_label_valid(rest, label_len))
            return KP_ERR_UNKNOWN_LABEL;
        if (strchr(slash + 1, '/') != NULL)
            return KP_ERR_NOT_FOUND;
        op = est_op_by_name(slash + 1, strlen(slash + 1));
        if (op == NULL)
            return KP_ERR_NOT_FOUND;
        memcpy(req->label, rest, label_len);
    } else {
        op = est_op_by_name(rest, strlen(rest));
        if (op == NULL)
            return KP_ERR_NOT_FOUND;
    }
    req->op = op->op;
    req->label[label_len] = '\0';
    return KP_OK;
}
