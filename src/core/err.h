/* One error enum for the whole server, with its wire mappings.
 * Only the EST dispatcher turns a kp_err into a response. */
#ifndef KP_ERR_H
#define KP_ERR_H

/* X(name, machine code, HTTP status, CoAP code, default message) */
#define KP_ERRORS(X)                                                                               \
    X(KP_OK, "ok", 200, 69, "ok")                                                                  \
    X(KP_ERR_PENDING, "pending", 202, 163, "request waiting for approval, retry later")            \
    X(KP_ERR_BAD_REQUEST, "bad_request", 400, 128, "malformed request")                            \
    X(KP_ERR_NO_CONTENT_TYPE, "missing_content_type", 400, 128, "missing Content-Type")            \
    X(KP_ERR_BASE64, "invalid_base64", 400, 128, "body is neither base64 nor DER")                 \
    X(KP_ERR_CSR, "malformed_csr", 400, 128, "malformed PKCS#10 request")                          \
    X(KP_ERR_CSR_SIGNATURE, "bad_csr_signature", 400, 128, "CSR signature does not verify")        \
    X(KP_ERR_KEY_TYPE, "unsupported_key", 400, 128, "public key type or size not allowed")         \
    X(KP_ERR_POLICY, "policy_violation", 400, 128, "CSR rejected by policy")                       \
    X(KP_ERR_CHANNEL_BINDING, "channel_binding", 400, 128, "TLS channel binding does not match")   \
    X(KP_ERR_UNAUTHORIZED, "unauthorized", 401, 129, "authentication required")                    \
    X(KP_ERR_FORBIDDEN, "forbidden", 403, 131, "not authorized for this operation")                \
    X(KP_ERR_NOT_FOUND, "not_found", 404, 132, "no such operation")                                \
    X(KP_ERR_UNKNOWN_LABEL, "unknown_label", 404, 132, "unknown EST label")                        \
    X(KP_ERR_METHOD, "method_not_allowed", 405, 133, "method not allowed")                         \
    X(KP_ERR_TOO_LARGE, "too_large", 413, 141, "request body too large")                           \
    X(KP_ERR_RATE_LIMITED, "rate_limited", 429, 157, "too many failed attempts, retry later")      \
    X(KP_ERR_MEDIA_TYPE, "unsupported_media_type", 415, 143, "unsupported Content-Type")           \
    X(KP_ERR_INTERNAL, "internal_error", 500, 160, "internal error")                               \
    X(KP_ERR_STORE, "store_error", 500, 160, "database error")                                     \
    X(KP_ERR_SIGN, "signing_failed", 500, 160, "CA signing failed")                                \
    X(KP_ERR_CONFLICT, "conflict", 500, 160, "duplicate key in store")                             \
    X(KP_ERR_UNAVAILABLE, "unavailable", 503, 163, "service temporarily unavailable")              \
    X(KP_ERR_CONFIG, "config_error", 500, 160, "configuration error")                              \
    X(KP_ERR_IO, "io_error", 500, 160, "file error")                                               \
    X(KP_ERR_EXISTS, "exists", 500, 160, "refusing to overwrite an existing file")

enum kp_err {
#define KP_ERR_ENUM(name, code, http, coap, msg) name,
    KP_ERRORS(KP_ERR_ENUM)
#undef KP_ERR_ENUM
        KP_ERR__MAX
};

/* Machine-readable code ("invalid_base64"), for JSON error bodies and audit. */
const char *kp_err_code(enum kp_err e);
/* HTTP status for the error (RFC 7030 / est-endpoints error table). */
int kp_err_http_status(enum kp_err e);
/* CoAP response code as (class << 5 | detail), RFC 7252 12.1.2. */
int kp_err_coap_code(enum kp_err e);
/* Default human-readable message. */
const char *kp_err_message(enum kp_err e);
/* The server's fault (HTTP 5xx, CoAP 5.xx): the client is told nothing more. */
int kp_err_is_server(enum kp_err e);

#endif
