/* RFC 7030 4.1: the CA chain, unauthenticated. */
#include "core/xalloc.h"
#include "est/est_internal.h"

#include <string.h>

void est_cacerts(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                 struct est_response *resp)
{
    char *body = xmalloc(l->cacerts_b64_len + 1);
    (void)srv;
    (void)req;
    memcpy(body, l->cacerts_b64, l->cacerts_b64_len + 1);
    est_response_ok(resp, EST_CT_CERTS, body, l->cacerts_b64_len);
}
