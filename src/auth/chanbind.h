/* Linking identity and proof of possession (RFC 7030 3.5): the CSR's
 * challengePassword carries base64 of the TLS channel binding, tls-unique on
 * TLS 1.2 (RFC 5929) or tls-exporter on TLS 1.3 (RFC 9266). */
#ifndef KP_CHANBIND_H
#define KP_CHANBIND_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

/* KP_OK when the policy is satisfied: challenge absent (or not binding-shaped) under
 * CB_OPTIONAL,
 * or challenge equal (constant time) to base64(binding). A challenge that is
 * present but wrong, or absent under CB_REQUIRED, is KP_ERR_CHANNEL_BINDING. */
enum kp_err chanbind_check(enum cb_policy policy, const unsigned char *challenge,
                           size_t challenge_len, const unsigned char *binding, size_t binding_len);

#endif
