/* application/multipart-core (RFC 8710 2): a CBOR array of Content-Format
 * and byte-string pairs. EST-coaps /skg answers in it (RFC 9148 5.8). */
#ifndef KP_COAP_MULTIPART_H
#define KP_COAP_MULTIPART_H

#include <stddef.h>

struct multipart_part {
    int content_format;        /* 0..65535 */
    const unsigned char *data; /* borrowed */
    size_t len;
};

/* Encode n (< 12) parts into *out (caller frees; wipe it when a part is
 * secret: the size is *out_len). */
void multipart_core_encode(const struct multipart_part *parts, size_t n, unsigned char **out,
                           size_t *out_len);

#endif
