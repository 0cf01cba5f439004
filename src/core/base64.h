/* Base64 as EST uses it (RFC 7030 4, RFC 8951 3). */
#ifndef KP_BASE64_H
#define KP_BASE64_H

#include <stddef.h>

#include "core/err.h"

/* Decode base64 that may contain CR, LF, space and tab anywhere (RFC 8951).
 * On success *out (caller frees) holds the bytes. Padding is optional only at
 * the very end; any other byte is KP_ERR_BASE64. */
enum kp_err base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len);

/* Encode with a line break ("\n") after every 64 characters and at the end.
 * Returns a NUL-terminated string (caller frees); *out_len excludes the NUL. */
char *base64_encode(const unsigned char *in, size_t in_len, size_t *out_len);

/* EST bodies: if the body looks like DER (starts with a SEQUENCE tag 0x30) and
 * is not valid base64, take it raw; otherwise decode base64. Caller frees *out. */
enum kp_err base64_or_der(const unsigned char *in, size_t in_len, unsigned char **out,
                          size_t *out_len);

#endif
