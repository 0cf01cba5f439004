/* UTF-8 checks for text that reaches JSON or a log line from the network:
 * every byte is hostile, and a string that is not UTF-8 is shown, never
 * dropped. */
#ifndef KP_UTF8_H
#define KP_UTF8_H

#include <stddef.h>

/* Length (1 to 4) of the well-formed UTF-8 sequence at s (n bytes left), or
 * 0 when s does not start one (RFC 3629 4: no overlong forms, no surrogates,
 * nothing past U+10FFFF, no truncated sequence). */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* A copy of s that is valid UTF-8: each byte that is not part of a
 * well-formed sequence becomes the four characters "\xNN" (lowercase hex);
 * everything else is kept. NULL for NULL; caller frees. */
char *utf8_sanitize(const char *s);

#endif
