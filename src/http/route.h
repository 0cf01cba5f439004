/* RFC 7030 3.2.2: which EST operation and label an HTTP path names. */
#ifndef KP_HTTP_ROUTE_H
#define KP_HTTP_ROUTE_H

#include "core/err.h"
#include "est/est.h"

/* Parse "{base}/[label/]op" into req->op and req->label, from the EST
 * operations table. KP_ERR_UNKNOWN_LABEL for a label segment that cannot be
 * one (est_label_valid), KP_ERR_NOT_FOUND for anything else (unknown op,
 * wrong prefix, extra segments). */
enum kp_err http_route_est(const char *base_path, const char *path, struct est_request *req);

#endif
