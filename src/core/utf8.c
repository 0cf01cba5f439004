#include "core/utf8.h"

#include <stdio.h>
#include <string.h>

#include "core/xalloc.h"

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c, lo = 0x80, hi = 0xbf;
    size_t len;

    if (n == 0)
        return 0;
    c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

char *utf8_sanitize(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n, o = 0;
    char *out;

    if (s == NULL)
        return NULL;
    n = strlen(s);
    out = xmalloc(4 * n + 1); /* each byte grows to at most "\xNN" */
    while (n > 0) {
        size_t len = utf8_seq_len(p, n);
        if (len == 0) {
            snprintf(out + o, 5, "\\x%02x", *p);
            o += 4;
            len = 1;
        } else {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
        n -= len;
    }
    out[o] = '\0';
    return out;
}
