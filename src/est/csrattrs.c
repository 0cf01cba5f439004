/* RFC 7030 4.5: what the label wants to see in a CSR. */
#include "est/est_internal.h"

void est_csrattrs(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                  struct est_answer *ans)
{
    (void)srv;
    (void)req;
    est_answer_part_copy(ans, EST_MEDIA_CSRATTRS, l->csrattrs_der, l->csrattrs_der_len);
}
