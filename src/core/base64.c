#include "core/base64.h"

#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 character, -1 for whitespace, -2 for '=', -3 for junk. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
        return -1;
    if (c == '=')
        return -2;
    return -3;
}

enum kp_err base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len)
{
    enum kp_err rc = KP_ERR_BASE64;
    char *clean = xmalloc(in_len + 1);
    unsigned char *buf = NULL;
    size_t m = 0, pads = 0, n = 0, body;

    /* RFC 8951: whitespace may appear anywhere; drop it first. */
    for (size_t i = 0; i < in_len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v == -3)
            goto out;
        if (v != -1)
            clean[m++] = in[i];
    }
    while (pads < m && clean[m - 1 - pads] == '=')
        pads++;
    if (m == 0 || pads > 2 || (pads > 0 && m % 4 != 0))
        goto out;
    body = m - pads;
    if (body % 4 == 1)
        goto out;

    buf = xmalloc(body / 4 * 3 + 2);
    for (size_t i = 0; i < body; i += 4) {
        size_t chunk = body - i < 4 ? body - i : 4;
        unsigned int acc = 0;
        for (size_t j = 0; j < 4; j++) {
            int v = j < chunk ? b64_value((unsigned char)clean[i + j]) : 0;
            if (v < 0)
                goto out; /* '=' before the end */
            acc = (acc << 6) | (unsigned)v;
        }
        buf[n++] = (unsigned char)(acc >> 16);
        if (chunk > 2)
            buf[n++] = (unsigned char)(acc >> 8);
        if (chunk > 3)
            buf[n++] = (unsigned char)acc;
    }
    *out = buf;
    *out_len = n;
    buf = NULL; /* steal */
    rc = KP_OK;
out:
    free(buf);
    free(clean);
    return rc;
}

/* Three bytes as four characters. */
static char *b64_quad(char *o, unsigned int v)
{
    o[0] = b64_alphabet[(v >> 18) & 63];
    o[1] = b64_alphabet[(v >> 12) & 63];
    o[2] = b64_alphabet[(v >> 6) & 63];
    o[3] = b64_alphabet[v & 63];
    return o + 4;
}

char *base64_encode(const unsigned char *in, size_t in_len, size_t *out_len)
{
    size_t chars = (in_len + 2) / 3 * 4;
    char *out = xmalloc(chars + chars / 64 + 2);
    char *o = out;
    size_t i = 0, line = 0, whole = in_len / 3 * 3;

    /* whole groups first, without the tail's checks: /cacerts and every
     * certificate go through here */
    for (; i < whole; i += 3) {
        o = b64_quad(o, (unsigned int)in[i] << 16 | (unsigned int)in[i + 1] << 8 | in[i + 2]);
        if (++line == 16) { /* 64 characters a line */
            *o++ = '\n';
            line = 0;
        }
    }
    if (i < in_len) {
        unsigned int v = (unsigned int)in[i] << 16;
        if (in_len - i == 2)
            v |= (unsigned int)in[i + 1] << 8;
        o = b64_quad(o, v);
        o[-1] = '=';
        if (in_len - i == 1)
            o[-2] = '=';
        line++;
    }
    if (line > 0)
        *o++ = '\n';
    *o = '\0';
    if (out_len)
        *out_len = (size_t)(o - out);
    return out;
}

enum kp_err base64_or_der(const unsigned char *in, size_t in_len, unsigned char **out,
                          size_t *out_len)
{
    enum kp_err rc = base64_decode((const char *)in, in_len, out, out_len);
    if (rc == KP_OK || in_len < 2 || in[0] != 0x30)
        return rc;
    /* Raw DER (RFC 8951 tolerance): the ASN.1 parser will judge it. */
    *out = xmalloc(in_len);
    memcpy(*out, in, in_len);
    *out_len = in_len;
    return KP_OK;
}
