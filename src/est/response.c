#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"
#include "est/est_internal.h"

int est_media_type_is(const char *header, const char *type)
{
    size_t len, tlen = strlen(type);
    if (header == NULL)
        return 0;
    while (*header == ' ' || *header == '\t')
        header++;
    len = strcspn(header, ";,");
    while (len > 0 && (header[len - 1] == ' ' || header[len - 1] == '\t'))
        len--;
    return len == tlen && strncasecmp(header, type, len) == 0;
}

/* 1 when an Accept header lists application/json (RFC 9110 12.5.1 media ranges). */
static int response_wants_json(const char *accept)
{
    while (accept != NULL && *accept != '\0') {
        if (est_media_type_is(accept, "application/json"))
            return 1;
        accept = strchr(accept, ',');
        if (accept != NULL)
            accept++;
    }
    return 0;
}

void est_response_ok(struct est_response *resp, const char *content_type, char *body, size_t len)
{
    resp->status = 200;
    resp->err = KP_OK;
    resp->content_type = content_type;
    resp->base64_cte = 1;
    resp->body = body;
    resp->body_len = len;
}

void est_response_error(struct est_response *resp, enum kp_err err, const char *accept,
                        const char *detail)
{
    const char *msg = detail ? detail : kp_err_message(err);

    if (resp->body != NULL && resp->body_secret)
        OPENSSL_cleanse(resp->body, resp->body_len);
    resp->body_secret = false;
    free(resp->body);
    resp->body = NULL;
    resp->status = kp_err_http_status(err);
    resp->err = err;
    resp->base64_cte = 0;
    resp->www_authenticate = resp->status == 401 ? EST_BASIC_CHALLENGE : NULL;
    if (response_wants_json(accept)) {
        json_t *j = json_pack("{s:s, s:s}", "error", kp_err_code(err), "message", msg);
        if (j == NULL) /* msg not UTF-8: fall back to the fixed message */
            j = json_pack("{s:s, s:s}", "error", kp_err_code(err), "message", kp_err_message(err));
        resp->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (resp->body == NULL)
            resp->body = xstrdup("{\"error\":\"internal_error\"}");
        resp->content_type = "application/json";
    } else {
        resp->body = xasprintf("%s\n", msg);
        resp->content_type = "text/plain; charset=utf-8";
    }
    resp->body_len = strlen(resp->body);
}

void est_response_cleanup(struct est_response *resp)
{
    if (resp->body != NULL && resp->body_secret)
        OPENSSL_cleanse(resp->body, resp->body_len);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}
