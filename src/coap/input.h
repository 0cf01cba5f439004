/* What map.c needs from a parsed CoAP request: Uri-Path segments, method,
 * Content-Format and Accept (RFC 7252 5.10). Read-only on the PDU. */
#ifndef KP_COAP_INPUT_H
#define KP_COAP_INPUT_H

#include "coap/libcoap.h"
#include "coap/map.h"

/* Fill in from pdu; segments borrow the PDU's bytes. A repeated or over-long
 * Content-Format or Accept reads as -2 (malformed). */
void coap_input_read(const coap_pdu_t *pdu, struct map_input *in);

#endif
