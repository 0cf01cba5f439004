/* Linking identity and proof of possession (RFC 7030 3.5): the CSR's
 * challengePassword carries base64 of the TLS channel binding, tls-unique on
 * TLS 1.2 (RFC 5929) or tls-exporter on TLS 1.3 (RFC 9266). */
#ifndef KP_CHANBIND_H
#define KP_CHANBIND_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

/* KP_OK when the policy is satisfied: challenge absent under CB_OPTIONAL, or
 * challenge equal (constant time) to base64(binding) under either policy. A
 * challenge that is present but anything else (another value, another length,
 * not base64, or no binding to compare with), or absent under CB_REQUIRED, is
 * KP_ERR_CHANNEL_BINDING (400). */
enum kp_err chanbind_check(enum cb_policy policy, const unsigned char *challenge,
                           size_t challenge_len, const unsigned char *binding, size_t binding_len);

#endif
