/* RFC 7030 4.1: the CA chain, unauthenticated. RFC 9148 5.3: a client that
 * asks for application/pkix-cert gets the label's CA certificate alone. */
#include <openssl/crypto.h>

#include "est/est_internal.h"

void est_cacerts(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                 struct est_answer *ans)
{
    unsigned char *der = NULL;
    int n;

    (void)srv;
    if (req->accept != EST_MEDIA_PKIX_CERT) {
        est_answer_part_copy(ans, EST_MEDIA_CERTS, l->ca->cacerts_der, l->ca->cacerts_der_len);
        return;
    }
    n = i2d_X509(l->ca->cert, &der);
    if (n <= 0) {
        est_answer_fail(ans, KP_ERR_INTERNAL, NULL);
        return;
    }
    est_answer_part_copy(ans, EST_MEDIA_PKIX_CERT, der, (size_t)n);
    OPENSSL_free(der);
}
