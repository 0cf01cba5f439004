/* What an OTP may certify: its entity id, the label's otp_subject rule and
 * the subject and SANs an operator bound to the OTP when creating it. See
 * docs/otp-identity.md. */
#ifndef KP_OTPBIND_H
#define KP_OTPBIND_H

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define OTPBIND_ENTITY_MAX 256   /* bytes of an entity id */
#define OTPBIND_SUBJECT_MAX 1024 /* bytes of a DN as given */
#define OTPBIND_SANS_MAX 32      /* SAN entries bound to one OTP */
#define OTPBIND_SAN_MAX 255      /* bytes of one "TYPE:value" */

/* NULL when id can be an OTP's entity, the HTTP Basic user name (RFC 7617 2):
 * 1 to OTPBIND_ENTITY_MAX bytes, no ':', no control characters. Else why not. */
const char *otpbind_entity_check(const char *id);

/* Parse a DN given as "/CN=x/O=y" (the order of `openssl req -subj`; '\'
 * escapes the next character). On success *canon (caller frees) is the same
 * name in that form, which parses back to an equal name; NULL is returned.
 * Else the reason, and *canon is untouched. */
const char *otpbind_subject_parse(const char *dn, char **canon);

/* Parse n SANs "DNS:name", "IP:address", "email:address", "URI:uri". On
 * success *canon (caller frees) is them comma-separated ("DNS:a,IP:1.2.3.4",
 * DNS names in lower case, addresses as inet_ntop prints them); NULL is
 * returned. Else the reason. */
const char *otpbind_sans_parse(const char *const *sans, size_t n, char **canon);

/* One OTP- or PSK-authenticated request's rules. Strings borrowed. */
struct otpbind_rules {
    const char *entity;          /* the OTP's entity id */
    bool entity_rule;            /* label otp_subject = "entity" */
    const char *subject;         /* canonical DN bound to the OTP, NULL: none */
    const char *sans;            /* canonical SANs bound to the OTP, NULL: none */
    const X509_NAME *ca_subject; /* the issuing CA's subject: never certified */
    bool psk;                    /* a DTLS PSK identity as entity: refusals say so */
};

/* KP_OK when a CSR with this subject and these SANs (NULL: none) may be
 * certified under r; else KP_ERR_FORBIDDEN with *why (static text). A bound
 * subject replaces the label's subject rule, bound SANs its SAN rule. */
enum kp_err otpbind_check(const struct otpbind_rules *r, const X509_NAME *subject,
                          const GENERAL_NAMES *sans, const char **why);

#endif
