/* HTTP media types (RFC 9110 8.3) as EST names them (RFC 7030 3.2.4). */
#ifndef KP_HTTP_MEDIA_H
#define KP_HTTP_MEDIA_H

#include <stdbool.h>

#include "est/est.h"

/* Whether the header's media type (before any ';' or ',') is type, ignoring
 * case and surrounding spaces. */
bool http_media_is(const char *header, const char *type);
/* Whether an Accept header lists application/json (RFC 9110 12.5.1). */
bool http_accepts_json(const char *accept);
/* The Content-Type of an EST media type (static), NULL for NONE and OTHER. */
const char *http_media_name(enum est_media m);

#endif
