/* A DTLS pre-shared key as an enrollment credential (docs/coap.md): the
 * handshake proved the key, this decides what the identity may do. */
#include <string.h>

#include "auth/otpbind.h"
#include "est/est_internal.h"

enum kp_err est_psk_authenticate(const struct est_server *srv, const struct est_label *l,
                                 const struct est_request *req, const struct psk_entry **out,
                                 const char **why)
{
    const char *id = req->cred.psk_identity;
    const struct psk_entry *e;

    /* the table of this generation: a PSK removed by a reload is gone even
     * for a DTLS session that began before it */
    e = psk_find(srv->psk, id, strnlen(id, PSK_IDENTITY_MAX + 1));
    if (e == NULL) {
        *why = "unknown PSK identity";
        return KP_ERR_UNAUTHORIZED;
    }
    if (req->op == EST_OP_SIMPLEREENROLL) {
        *why = "simplereenroll needs the client certificate being renewed, not a PSK";
        return KP_ERR_FORBIDDEN;
    }
    if (strcmp(e->label, l->cfg->name) != 0) {
        *why = "PSK is bound to another label";
        return KP_ERR_FORBIDDEN;
    }
    if (!l->cfg->allow_psk) {
        *why = "PSK authentication is not allowed for this label (allow_psk)";
        return KP_ERR_FORBIDDEN;
    }
    *out = e;
    return KP_OK;
}

enum kp_err est_psk_check_csr(const struct est_label *l, const struct psk_entry *e,
                              const struct csr *csr, const char **why)
{
    struct otpbind_rules r = {
        .entity = e->identity,
        .entity_rule = true,
        .ca_subject = X509_get_subject_name(l->ca->cert),
        .psk = true,
    };

    return otpbind_check(&r, csr->subject, csr->sans, why);
}
