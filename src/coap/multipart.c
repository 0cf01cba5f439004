/* RFC 8710 2 over RFC 8949 3: definite-length array, unsigned integers,
 * definite-length byte strings; nothing else is needed. */
#include "coap/multipart.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "core/xalloc.h"

/* A CBOR head (RFC 8949 3.1): major type and argument, shortest form. */
static size_t cbor_head(unsigned char *p, unsigned major, uint64_t v)
{
    unsigned char m = (unsigned char)(major << 5);

    if (v < 24) {
        p[0] = m | (unsigned char)v;
        return 1;
    }
    if (v <= 0xff) {
        p[0] = m | 24;
        p[1] = (unsigned char)v;
        return 2;
    }
    if (v <= 0xffff) {
        p[0] = m | 25;
        p[1] = (unsigned char)(v >> 8);
        p[2] = (unsigned char)v;
        return 3;
    }
    if (v <= 0xffffffffu) {
        p[0] = m | 26;
        for (int i = 0; i < 4; i++)
            p[1 + i] = (unsigned char)(v >> (24 - 8 * i));
        return 5;
    }
    p[0] = m | 27;
    for (int i = 0; i < 8; i++)
        p[1 + i] = (unsigned char)(v >> (56 - 8 * i));
    return 9;
}

void multipart_core_encode(const struct multipart_part *parts, size_t n, unsigned char **out,
                           size_t *out_len)
{
    size_t cap = 1, len = 0;
    unsigned char *buf;

    assert(n < 12); /* 2n items in a one-byte array head */
    for (size_t i = 0; i < n; i++)
        cap += 9 + 9 + parts[i].len;
    buf = xmalloc(cap);
    len += cbor_head(buf, 4, 2 * n);
    for (size_t i = 0; i < n; i++) {
        len += cbor_head(buf + len, 0, (uint64_t)parts[i].content_format);
        len += cbor_head(buf + len, 2, parts[i].len);
        memcpy(buf + len, parts[i].data, parts[i].len);
        len += parts[i].len;
    }
    *out = buf;
    *out_len = len;
}
