/* RFC 7030 4.5: what the label wants to see in a CSR. */
#include "core/xalloc.h"
#include "est/est_internal.h"

#include <string.h>

void est_csrattrs(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                  struct est_response *resp)
{
    char *body = xmalloc(l->csrattrs_b64_len + 1);
    (void)srv;
    (void)req;
    memcpy(body, l->csrattrs_b64, l->csrattrs_b64_len + 1);
    est_response_ok(resp, EST_CT_CSRATTRS, body, l->csrattrs_b64_len);
}
