/* A minimal HTTPS client for `kipuka admin`: one request per connection,
 * TLS 1.2+ with the server verified against a CA file and its hostname. */
#ifndef KP_ADMIN_CLIENT_H
#define KP_ADMIN_CLIENT_H

#include <stddef.h>

#include "core/err.h"

struct admin_reply {
    int status;
    char *body; /* NUL-terminated, caller frees */
    size_t body_len;
};

/* METHOD url (https://HOST:PORT/PATH?QUERY) with an optional JSON body and
 * bearer token. KP_ERR_IO (and a message on stderr) when no answer came. */
enum kp_err admin_client_call(const char *method, const char *url, const char *cafile,
                              const char *token, const char *json, struct admin_reply *out);

#endif
