/* An HTTP request's headers and body as the EST core takes them: media
 * types as est_media, HTTP Basic (RFC 7617) as parsed credentials, and the
 * body as DER (RFC 8951: base64, or DER as sent). */
#ifndef KP_HTTP_EST_INPUT_H
#define KP_HTTP_EST_INPUT_H

#include <stddef.h>

#include "est/est.h"

/* What the transport decoded for one est_request: owned, and alive until
 * http_est_input_cleanup, which wipes the password. */
struct http_est_input {
    char *user;
    char *password;
    unsigned char *body;
    size_t body_len;
};

/* Set req's content_type, accept, cred.user/password (or password_malformed),
 * body and body_error from the headers (NULL when absent) and the raw body.
 * req->method must be set: only a POST body is decoded. */
void http_est_input_fill(struct est_request *req, struct http_est_input *in,
                         const char *content_type, const char *accept, const char *authorization,
                         const unsigned char *body, size_t body_len);
void http_est_input_cleanup(struct http_est_input *in);

#endif
