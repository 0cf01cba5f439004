/* Where the CoAP transport meets the EST core: requests in, answers out, in
 * CoAP terms (Content-Format numbers, response codes, DER payloads). The
 * operations come from the core's one table (est_op_by_coap_name). No
 * libcoap here. */
#ifndef KP_COAP_BRIDGE_H
#define KP_COAP_BRIDGE_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "est/est.h"

/* CoAP Content-Formats EST-coaps uses (RFC 9148 8.1, RFC 8710, RFC 7252 12.3). */
#define COAP_CF_NONE (-1) /* option absent */
#define COAP_CF_TEXT 0
#define COAP_CF_LINK 40
#define COAP_CF_MULTIPART 62   /* application/multipart-core */
#define COAP_CF_SERVER_KEY 280 /* pkcs7-mime; smime-type=server-generated-key */
#define COAP_CF_CERTS 281      /* pkcs7-mime; smime-type=certs-only */
#define COAP_CF_PKCS8 284      /* application/pkcs8 */
#define COAP_CF_CSRATTRS 285   /* application/csrattrs */
#define COAP_CF_PKCS10 286     /* application/pkcs10 */
#define COAP_CF_PKIX_CERT 287  /* application/pkix-cert */

/* CoAP response codes, class << 5 | detail (RFC 7252 12.1.2). */
#define COAP_CODE(c, d) (((c) << 5) | (d))

/* The ct attribute discovery lists for op (RFC 9148 5.1): "281 287", or
 * NULL when EST-coaps does not offer op. */
const char *bridge_op_ct(enum est_op op);

/* One request, in CoAP's words. Everything borrowed. */
struct bridge_request {
    const struct est_op_info *op;
    char label[EST_LABEL_MAX + 1]; /* "" for the default label */
    int content_format;            /* COAP_CF_NONE when absent */
    int accept;                    /* COAP_CF_NONE when absent */
    const unsigned char *body;     /* DER */
    size_t body_len;
    X509 *cert;               /* DTLS client certificate, NULL when none */
    STACK_OF(X509) * chain;   /* as sent, leaf excluded, may be NULL */
    const char *psk_identity; /* the identity the DTLS handshake verified, NULL: none */
    const char *peer_addr;
    uint64_t id;
};

/* One answer, ready for the wire. */
struct bridge_answer {
    int code;               /* CoAP response code */
    int content_format;     /* COAP_CF_NONE: none (diagnostic payloads) */
    unsigned char *payload; /* owned */
    size_t payload_len;
    bool secret;  /* payload holds key material: wiped when released */
    long max_age; /* seconds, < 0: no Max-Age option */
    enum kp_err err;
    char subject[EST_SUBJECT_MAX]; /* authenticated identity, for the access log */
};

/* Whether est serves this label ("" is the default label). */
bool bridge_label_known(const struct est_server *est, const char *label);

/* The PSK of a DTLS identity in est's table (coap.psk_file) into key (at
 * most *key_len bytes, updated); false when the identity is unknown. */
bool bridge_psk_key(const struct est_server *est, const unsigned char *identity, size_t id_len,
                    unsigned char *key, size_t *key_len);

/* Answer req: may block on the store (call POSTs off the CoAP thread). ans
 * is filled in all cases; release it with bridge_answer_cleanup. */
void bridge_handle(struct est_server *est, const struct bridge_request *req,
                   struct bridge_answer *ans);

/* An error answer from the error table (RFC 7252 5.5.2 diagnostic payload:
 * why, or the table's message). */
void bridge_answer_error(struct bridge_answer *ans, enum kp_err err, const char *why);

void bridge_answer_cleanup(struct bridge_answer *ans);

#endif
