#include "coap/input.h"

#include <string.h>

/* A uint option (RFC 7252 3.2) of at most 2 bytes, as Content-Formats are. */
static int input_uint16(int seen, const coap_opt_t *o)
{
    if (seen != COAP_CF_NONE || coap_opt_length(o) > 2)
        return -2;
    return (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
}

void coap_input_read(const coap_pdu_t *pdu, struct map_input *in)
{
    coap_opt_iterator_t it;
    coap_opt_t *o;

    memset(in, 0, sizeof(*in));
    in->method = (int)coap_pdu_get_code(pdu);
    in->content_format = COAP_CF_NONE;
    in->accept = COAP_CF_NONE;
    if (coap_option_iterator_init(pdu, &it, COAP_OPT_ALL) == NULL)
        return;
    while ((o = coap_option_next(&it)) != NULL) {
        switch (it.number) {
        case COAP_OPTION_URI_PATH:
            if (in->nseg == MAP_SEG_MAX) {
                in->too_many_segments = true;
                break;
            }
            in->seg[in->nseg].p = coap_opt_value(o);
            in->seg[in->nseg].len = coap_opt_length(o);
            in->nseg++;
            break;
        case COAP_OPTION_CONTENT_FORMAT:
            in->content_format = input_uint16(in->content_format, o);
            break;
        case COAP_OPTION_ACCEPT:
            in->accept = input_uint16(in->accept, o);
            break;
        default:
            break;
        }
    }
}
