/* RFC 9148 5.1 routing: a request's Uri-Path, method and Content-Format
 * options to a bridge_request, or the CoAP error that answers it. Pure: no
 * libcoap, no I/O, so it is fuzzed on its own (tests/fuzz/fuzz_coap.c). */
#ifndef KP_COAP_MAP_H
#define KP_COAP_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "coap/bridge.h"
#include "core/err.h"

/* More Uri-Path segments than any EST-coaps path has: 4.04. */
#define MAP_SEG_MAX 8

/* CoAP request method codes (RFC 7252 12.1.1). */
#define MAP_METHOD_GET 1
#define MAP_METHOD_POST 2

struct map_segment {
    const unsigned char *p; /* borrowed */
    size_t len;
};

/* What a request says, as the wire has it. */
struct map_input {
    struct map_segment seg[MAP_SEG_MAX];
    size_t nseg;
    bool too_many_segments;
    int method;         /* request code */
    int content_format; /* COAP_CF_NONE when absent, -2 when repeated or malformed */
    int accept;         /* likewise */
};

/* Route in: /.well-known/est[/LABEL]/SHORT or /est[/LABEL]/SHORT (RFC 9148
 * 5.1: the default root and the shorter one discovery lists). On success
 * fills out's op, label, content_format and accept and returns KP_OK; else
 * the error (KP_ERR_NOT_FOUND, KP_ERR_UNKNOWN_LABEL, KP_ERR_METHOD,
 * KP_ERR_MEDIA_TYPE), with *not_acceptable set when an Accept the
 * resource cannot produce is why (4.06, RFC 7252 5.10.4). */
enum kp_err map_request(const struct map_input *in, struct bridge_request *out,
                        bool *not_acceptable);

#endif
