/* A raw CoAP message (RFC 7252 3, UDP framing) through libcoap's parser,
 * coap_input_read and map_request (RFC 9148 5.1 routing): what is accepted
 * names a known resource with the method it takes, a label of at most
 * EST_LABEL_MAX characters of [A-Za-z0-9._-], Content-Format 286 on a
 * POST and an Accept the resource offers; rebuilding the path from the
 * result gives the request's Uri-Path back. Then the multipart-core
 * encoder on the payload, split in two parts. */
#include <stdlib.h>
#include <string.h>

#include "coap/input.h"
#include "coap/map.h"
#include "coap/multipart.h"
#include "core/xalloc.h"
#include "support.h"

static const char label_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

static void check_mapped(const struct map_input *in, const struct bridge_request *r)
{
    size_t len = strnlen(r->label, sizeof(r->label));
    char *want, *got;
    size_t off = 0, total = 1;

    FUZZ_CHECK(r->op != NULL && r->op->coap_name != NULL &&
               est_op_by_coap_name(r->op->coap_name, strlen(r->op->coap_name)) == r->op &&
               bridge_op_ct(r->op->op) != NULL);
    FUZZ_CHECK(len <= EST_LABEL_MAX && strspn(r->label, label_chars) == len);
    FUZZ_CHECK(in->method == (r->op->post ? MAP_METHOD_POST : MAP_METHOD_GET));
    FUZZ_CHECK(!r->op->post || r->content_format == COAP_CF_PKCS10);
    FUZZ_CHECK(r->accept == COAP_CF_NONE || r->accept == COAP_CF_CERTS ||
               r->accept == COAP_CF_PKIX_CERT || r->accept == COAP_CF_CSRATTRS ||
               r->accept == COAP_CF_MULTIPART);
    for (size_t i = 0; i < in->nseg; i++)
        total += 1 + in->seg[i].len;
    got = xmalloc(total);
    for (size_t i = 0; i < in->nseg; i++) {
        got[off++] = '/';
        memcpy(got + off, in->seg[i].p, in->seg[i].len);
        off += in->seg[i].len;
    }
    got[off] = '\0';
    if (len == 0)
        want = xasprintf("est/%s", r->op->coap_name);
    else
        want = xasprintf("est/%s/%s", r->label, r->op->coap_name);
    /* the path is /est/... or /.well-known/est/... */
    FUZZ_CHECK(off > strlen(want) && strcmp(got + off - strlen(want), want) == 0);
    FUZZ_CHECK(off == strlen(want) + 1 || off == strlen(want) + 13);
    free(want);
    free(got);
}

static void check_multipart(const uint8_t *data, size_t size)
{
    struct multipart_part p[2] = {{284, data, size / 2},
                                  {size % 65536, data + size / 2, size - size / 2}};
    unsigned char *out = NULL;
    size_t len = 0;

    multipart_core_encode(p, 2, &out, &len);
    FUZZ_CHECK(out[0] == 0x84);
    FUZZ_CHECK(len >= size + 5 && len <= size + 1 + 2 * (3 + 9));
    FUZZ_CHECK(memcmp(out + len - p[1].len, p[1].data, p[1].len) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    coap_pdu_t *pdu;
    struct map_input in;
    struct bridge_request r;
    bool not_acceptable = false;
    enum kp_err rc;

    if (!started) {
        coap_startup();
        coap_set_log_level(KP_COAP_LOG_ERR - 1); /* libcoap's own parse warnings: off */
        started = 1;
    }
    check_multipart(data, size);
    pdu = coap_pdu_init(0, 0, 0, size);
    if (pdu == NULL)
        return 0;
    if (coap_pdu_parse(COAP_PROTO_UDP, data, size, pdu)) {
        coap_input_read(pdu, &in);
        memset(&r, 0, sizeof(r));
        memset(r.label, 'Z', sizeof(r.label)); /* no NUL: map_request must write one */
        rc = map_request(&in, &r, &not_acceptable);
        if (rc == KP_OK)
            check_mapped(&in, &r);
        else
            FUZZ_CHECK(rc == KP_ERR_NOT_FOUND || rc == KP_ERR_UNKNOWN_LABEL ||
                       rc == KP_ERR_METHOD || rc == KP_ERR_MEDIA_TYPE);
        FUZZ_CHECK(!not_acceptable || rc == KP_ERR_MEDIA_TYPE);
    }
    coap_delete_pdu(pdu);
    return 0;
}
