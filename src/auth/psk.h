/* DTLS pre-shared keys as enrollment credentials (RFC 9148 over DTLS 1.2,
 * RFC 4279 identities): coap.psk_file, one "IDENTITY LABEL HEXKEY" a line.
 * An identity is also the entity the PSK may certify. docs/coap.md. */
#ifndef KP_PSK_H
#define KP_PSK_H

#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

#define PSK_IDENTITY_MAX 128 /* bytes */
#define PSK_KEY_MIN 16       /* bytes of key */
#define PSK_KEY_MAX 64
#define PSK_LINE_MAX 512       /* bytes of one line */
#define PSK_FILE_MAX (8 << 20) /* bytes of the whole file */

/* One credential. All fields borrowed from the table, alive as long as it. */
struct psk_entry {
    const char *identity;
    const char *label; /* a label of the config the table was loaded with */
    const unsigned char *key;
    size_t key_len;
};

struct psk_table;

/* Read path (mode 0600 or stricter, else refused) against cfg's labels.
 * On error *errmsg (caller frees) is "PATH:LINE: reason" and never holds
 * key material. *out (caller frees with psk_table_free) on success. */
enum kp_err psk_table_load(const char *path, const struct kp_config *cfg, struct psk_table **out,
                           char **errmsg);

/* The entry of this identity (len bytes, need not be NUL-terminated), or
 * NULL. The identity is not secret; key bytes are never compared here. */
const struct psk_entry *psk_find(const struct psk_table *t, const char *identity, size_t len);

/* Number of entries. */
size_t psk_count(const struct psk_table *t);

/* Wipes every key. Accepts NULL. */
void psk_table_free(struct psk_table *t);

#endif
