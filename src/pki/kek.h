/* Pre-shared key-encryption keys for /serverkeygen (RFC 7030 4.4.1.1): a
 * label's serverkeygen_kek_file maps a key identifier, as the client names it
 * in the DecryptKeyIdentifier CSR attribute, to an AES key. */
#ifndef KP_KEK_H
#define KP_KEK_H

#include <stddef.h>

#include "core/err.h"

#define KEK_MAX_ENTRIES 10000
#define KEK_MAX_FILE (1024 * 1024)

struct kek_table;

/* Parse the file's text: one "KEY-ID HEX-KEY" per line (key id 1..64
 * printable characters without spaces; key 32, 48 or 64 hex digits for
 * AES-128/192/256), blank lines and lines starting with '#' ignored, a key id
 * at most once. On error *why (static) says what and *line where. */
enum kp_err kek_parse(const char *text, struct kek_table **out, const char **why, int *line);
/* Read path (mode 0600 or stricter: refused if group or others may read it)
 * and parse it; errors are logged with the file name. */
enum kp_err kek_load(const char *path, struct kek_table **out);
/* Wipes the keys. Accepts NULL. */
void kek_free(struct kek_table *t);
/* The key for this identifier (borrowed from t), or NULL. */
const unsigned char *kek_find(const struct kek_table *t, const unsigned char *id, size_t id_len,
                              size_t *key_len);

/* The first key of the file (borrowed from t), or NULL when it is empty. */
const unsigned char *kek_first(const struct kek_table *t, const unsigned char **id, size_t *id_len,
                               size_t *key_len);

#endif
