#include "pki/kek.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "pki/csr.h"

struct kek_entry {
    char id[CSR_KEY_ID_MAX + 1];
    size_t id_len;
    unsigned char key[32];
    size_t key_len;
};

struct kek_table {
    struct kek_entry *e;
    size_t n;
};

/* One non-comment line into e; NULL or why it is bad. */
static const char *kek_parse_line(const char *p, size_t len, struct kek_entry *e)
{
    size_t id_len = 0, hex_start, hex_len;

    while (id_len < len && p[id_len] != ' ' && p[id_len] != '\t')
        id_len++;
    if (id_len == 0 || id_len > CSR_KEY_ID_MAX)
        return "key id must be 1 to 64 characters";
    for (size_t i = 0; i < id_len; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return "key id must be printable ASCII";
    hex_start = id_len;
    while (hex_start < len && (p[hex_start] == ' ' || p[hex_start] == '\t'))
        hex_start++;
    hex_len = len - hex_start;
    while (hex_len > 0 && (p[hex_start + hex_len - 1] == ' ' || p[hex_start + hex_len - 1] == '\t'))
        hex_len--;
    if (hex_len != 32 && hex_len != 48 && hex_len != 64)
        return "key must be 32, 48 or 64 hex digits (AES-128, -192, -256)";
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)(p[hex_start + 2 * i])),
            lo = OPENSSL_hexchar2int((unsigned char)(p[hex_start + 2 * i + 1]));
        if (hi < 0 || lo < 0)
            return "key is not hex";
        e->key[i] = (unsigned char)(hi << 4 | lo);
    }
    memcpy(e->id, p, id_len);
    e->id[id_len] = '\0';
    e->id_len = id_len;
    e->key_len = hex_len / 2;
    return NULL;
}

enum kp_err kek_parse(const char *text, struct kek_table **out, const char **why, int *line)
{
    struct kek_table *t = xcalloc(1, sizeof(*t));
    struct kek_entry e;
    enum kp_err rc = KP_ERR_CONFIG;
    int n = 0;

    *why = NULL;
    for (const char *p = text; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        size_t skip = strspn(p, " \t");
        n++;
        *line = n;
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (skip < len && p[skip] != '#') {
            *why = kek_parse_line(p + skip, len - skip, &e);
            if (*why != NULL)
                goto out;
            for (size_t i = 0; i < t->n; i++) {
                if (t->e[i].id_len == e.id_len && memcmp(t->e[i].id, e.id, e.id_len) == 0) {
                    *why = "key id listed twice";
                    goto out;
                }
            }
            if (t->n >= KEK_MAX_ENTRIES) {
                *why = "too many keys";
                goto out;
            }
            t->e = xrealloc(t->e, (t->n + 1) * sizeof(*t->e));
            t->e[t->n++] = e;
        }
        p += strcspn(p, "\n");
        if (*p == '\n')
            p++;
    }
    *out = t;
    t = NULL; /* steal */
    rc = KP_OK;
out:
    OPENSSL_cleanse(&e, sizeof(e));
    kek_free(t);
    return rc;
}

enum kp_err kek_load(const char *path, struct kek_table **out)
{
    char *text = NULL;
    size_t len = 0;
    const char *why = NULL;
    int line = 0;
    enum kp_err rc = KP_ERR_CONFIG;

    /* refused before a byte of it is read */
    if (fs_secret_check("key file", path) != KP_OK)
        goto out;
    if (fs_read_file(path, KEK_MAX_FILE, &text, &len) != KP_OK) {
        log_error("key file %s: cannot read it", path);
        goto out;
    }
    rc = kek_parse(text, out, &why, &line);
    if (rc != KP_OK)
        log_error("serverkeygen_kek_file %s:%d: %s", path, line, why);
out:
    if (text != NULL)
        OPENSSL_clear_free(text, len);
    return rc;
}

void kek_free(struct kek_table *t)
{
    if (t == NULL)
        return;
    if (t->e != NULL)
        OPENSSL_cleanse(t->e, t->n * sizeof(*t->e));
    free(t->e);
    free(t);
}

const unsigned char *kek_find(const struct kek_table *t, const unsigned char *id, size_t id_len,
                              size_t *key_len)
{
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].id_len == id_len && memcmp(t->e[i].id, id, id_len) == 0) {
            *key_len = t->e[i].key_len;
            return t->e[i].key;
        }
    }
    return NULL;
}

const unsigned char *kek_first(const struct kek_table *t, const unsigned char **id, size_t *id_len,
                               size_t *key_len)
{
    if (t == NULL || t->n == 0)
        return NULL;
    *id = (const unsigned char *)t->e[0].id;
    *id_len = t->e[0].id_len;
    *key_len = t->e[0].key_len;
    return t->e[0].key;
}
