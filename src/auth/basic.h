/* HTTP Basic credentials (RFC 7617) as EST uses them for OTPs. */
#ifndef KP_BASIC_H
#define KP_BASIC_H

#include <stddef.h>

#include "core/err.h"

#define BASIC_MAX_HEADER 1024

/* Parse an Authorization header value "Basic <b64(user:pass)>" (scheme
 * case-insensitive). On success *user and *pass are NUL-terminated (caller
 * frees both; wipe pass). KP_ERR_UNAUTHORIZED when malformed or not Basic. */
enum kp_err basic_parse(const char *header, char **user, char **pass);

#endif
