/* What HTTP sends back, from an EST answer or an admin response: status,
 * headers and body (RFC 7030 4, RFC 8951 3). No libevent here, so the
 * fuzz harnesses and unit tests build the same bytes the server sends. */
#ifndef KP_HTTP_REPLY_H
#define KP_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "admin/admin.h"
#include "est/est.h"

/* The challenge of every EST 401 (RFC 7030 3.2.3). */
#define HTTP_BASIC_CHALLENGE "Basic realm=\"est\""

struct http_answer {
    int status;
    enum kp_err err;              /* EST: the refusal (KP_ERR_PENDING when held), else KP_OK */
    const char *content_type;     /* static, or ctype_buf */
    bool base64_cte;              /* Content-Transfer-Encoding: base64 */
    const char *www_authenticate; /* static, NULL: none */
    long retry_after;             /* > 0: Retry-After */
    const char *allow;            /* static; a 405's Allow (RFC 9110 15.5.6), NULL: none */
    char *body;                   /* owned, NUL-terminated */
    size_t body_len;
    bool body_secret;                   /* key material: wiped when released */
    char auth_subject[EST_SUBJECT_MAX]; /* authenticated identity, for the access log */
    const char *auth_method;            /* EST: the method tried (est_answer), for metrics */
    char ctype_buf[96];                 /* multipart/mixed with its boundary */
};

/* The base64 bodies of the last answers to /cacerts and /csrattrs, by
 * their DER: the same bytes are encoded once, not on every request (a
 * memo, checked byte for byte). One per event loop thread: no lock. */
#define HTTP_B64_MEMO_SLOTS 4

struct http_b64_memo {
    struct {
        unsigned char *der;
        size_t der_len;
        char *b64;
        size_t b64_len;
    } slot[HTTP_B64_MEMO_SLOTS];
    unsigned next; /* the slot replaced next */
};

void http_b64_memo_free(struct http_b64_memo *m);

/* An EST error (status from core/err.h): text/plain, or JSON when accept
 * lists application/json; detail NULL: the table's message. Replaces any
 * body out already has. */
void http_est_error(struct http_answer *out, enum kp_err err, const char *accept,
                    const char *detail);
/* The answer to an EST request for op: base64 bodies, multipart/mixed for
 * two parts (RFC 7030 4.4.2), 202 for a held request, errors as above with
 * Allow on 405 from the operations table. out starts zeroed. memo (NULL:
 * none) is used for /cacerts and /csrattrs only, never for key material. */
void http_est_reply(struct http_answer *out, enum est_op op, const struct est_answer *ans,
                    const char *accept, struct http_b64_memo *memo);
/* An admin response (its body is stolen); accept styles its EST-like errors. */
void http_admin_reply(struct http_answer *out, struct admin_response *resp, const char *accept);
void http_answer_cleanup(struct http_answer *out);

#endif
