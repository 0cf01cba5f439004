/* Who a client certificate is to kipuka: one it issued (with its label and
 * revocation state from the store) or someone else's. */
#include <stdlib.h>
#include <string.h>

#include "est/est_internal.h"

enum kp_err est_issued_cert_find(struct est_server *srv, X509 *cert, struct store_cert **out)
{
    struct store_cert *row = NULL;
    unsigned char *der = NULL;
    char *serial = NULL;
    int der_len;
    enum kp_err rc = KP_ERR_INTERNAL;

    der_len = i2d_X509(cert, &der);
    if (der_len <= 0)
        goto out;
    serial = ca_serial_hex(cert);
    rc = store_cert_get(srv->store, serial, &row);
    if (rc != KP_OK)
        goto out;
    /* the table is keyed by serial alone: another issuer's certificate with
     * the same serial is not this row */
    if (row->der == NULL || row->der_len != (size_t)der_len ||
        memcmp(row->der, der, (size_t)der_len) != 0) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    *out = row;
    row = NULL; /* steal */
    rc = KP_OK;
out:
    store_cert_free(row);
    OPENSSL_free(der);
    free(serial);
    return rc;
}

const struct trust_anchors *est_server_client_anchors(const struct est_server *srv)
{
    return srv->client_anchors;
}

const struct trust_anchors *est_server_admin_anchors(const struct est_server *srv)
{
    return srv->admin_anchors;
}
