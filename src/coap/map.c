/* RFC 9148 5.1 (URIs), 5.3 (methods), 5.4 and Table 3 (Content-Formats). */
#include "coap/map.h"

#include <string.h>

static bool seg_is(const struct map_segment *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len == n && memcmp(s->p, lit, n) == 0;
}

/* What each resource can answer (RFC 9148 Table 1); NONE takes the first. */
static bool accept_ok(const struct est_op_info *op, int accept)
{
    if (accept == COAP_CF_NONE)
        return true;
    if (op->op == EST_OP_CSRATTRS)
        return accept == COAP_CF_CSRATTRS;
    if (op->op == EST_OP_SERVERKEYGEN)
        return accept == COAP_CF_MULTIPART;
    return accept == COAP_CF_CERTS || accept == COAP_CF_PKIX_CERT;
}

enum kp_err map_request(const struct map_input *in, struct bridge_request *out,
                        bool *not_acceptable)
{
    const struct map_segment *rest;
    const struct est_op_info *op;
    size_t n;

    *not_acceptable = false;
    if (in->too_many_segments)
        return KP_ERR_NOT_FOUND;
    if (in->nseg >= 2 && seg_is(&in->seg[0], ".well-known") && seg_is(&in->seg[1], "est")) {
        rest = &in->seg[2];
        n = in->nseg - 2;
    } else if (in->nseg >= 1 && seg_is(&in->seg[0], "est")) {
        rest = &in->seg[1];
        n = in->nseg - 1;
    } else {
        return KP_ERR_NOT_FOUND;
    }
    if (n < 1 || n > 2)
        return KP_ERR_NOT_FOUND;
    op = est_op_by_coap_name((const char *)rest[n - 1].p, rest[n - 1].len);
    if (op == NULL || bridge_op_ct(op->op) == NULL)
        return KP_ERR_NOT_FOUND;
    if (n == 2 && !est_label_valid((const char *)rest[0].p, rest[0].len))
        return KP_ERR_UNKNOWN_LABEL;
    if (in->method != (op->post ? MAP_METHOD_POST : MAP_METHOD_GET))
        return KP_ERR_METHOD;
    /* RFC 9148 5.4: every request payload is a PKCS#10 (286) */
    if (op->post && in->content_format != COAP_CF_PKCS10)
        return KP_ERR_MEDIA_TYPE;
    if (in->accept < COAP_CF_NONE || !accept_ok(op, in->accept)) {
        *not_acceptable = true;
        return KP_ERR_MEDIA_TYPE;
    }
    out->op = op;
    if (n == 2)
        memcpy(out->label, rest[0].p, rest[0].len);
    out->label[n == 2 ? rest[0].len : 0] = '\0';
    out->content_format = op->post ? in->content_format : COAP_CF_NONE;
    out->accept = in->accept;
    return KP_OK;
}
