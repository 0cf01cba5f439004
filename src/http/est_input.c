#include "http/est_input.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "auth/basic.h"
#include "core/base64.h"
#include "http/media.h"

void http_est_input_fill(struct est_request *req, struct http_est_input *in,
                         const char *content_type, const char *accept, const char *authorization,
                         const unsigned char *body, size_t body_len)
{
    memset(in, 0, sizeof(*in));
    req->content_type = content_type == NULL                                ? EST_MEDIA_NONE
                        : http_media_is(content_type, "application/pkcs10") ? EST_MEDIA_PKCS10
                                                                            : EST_MEDIA_OTHER;
    /* HTTP answers every operation in its one RFC 7030 form whatever Accept
     * says; it only picks the style of an error body */
    req->accept = http_accepts_json(accept) ? EST_MEDIA_JSON : EST_MEDIA_NONE;
    if (authorization != NULL) {
        if (basic_parse(authorization, &in->user, &in->password) == KP_OK) {
            req->cred.user = in->user;
            req->cred.password = in->password;
        } else {
            req->cred.password_malformed = true;
        }
    }
    req->body = NULL;
    req->body_len = 0;
    req->body_error = NULL;
    if (req->method != EST_POST)
        return;
    if (body_len == 0) {
        req->body = (const unsigned char *)"";
        return;
    }
    if (base64_or_der(body, body_len, &in->body, &in->body_len) != KP_OK) {
        req->body_error = "body is neither base64 nor DER";
        return;
    }
    req->body = in->body;
    req->body_len = in->body_len;
}

void http_est_input_cleanup(struct http_est_input *in)
{
    if (in->password != NULL)
        OPENSSL_clear_free(in->password, strlen(in->password));
    free(in->user);
    free(in->body);
    memset(in, 0, sizeof(*in));
}
