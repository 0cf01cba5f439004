#include "auth/psk.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "auth/otpbind.h"
#include "core/fsutil.h"
#include "core/xalloc.h"

/* One allocation per entry: identity and label strings, then the key. */
struct psk_slot {
    struct psk_entry e;
    size_t alloc_len;
    int line;
};

struct psk_table {
    struct psk_slot **slots; /* sorted by identity (bytes), for bsearch */
    size_t n;
};

size_t psk_count(const struct psk_table *t)
{
    return t == NULL ? 0 : t->n;
}

void psk_table_free(struct psk_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        OPENSSL_clear_free(t->slots[i], t->slots[i]->alloc_len);
    free(t->slots);
    free(t);
}

/* NULL when id can be a PSK identity: printable ASCII without spaces, and
 * an entity id as an OTP's (it is the entity the PSK certifies). */
static const char *psk_identity_check(const char *id, size_t n)
{
    if (n == 0 || n > PSK_IDENTITY_MAX)
        return "the identity must be 1 to 128 bytes";
    for (size_t i = 0; i < n; i++)
        if (id[i] < 0x21 || id[i] > 0x7e)
            return "the identity must be printable ASCII without spaces";
    return otpbind_entity_check(id);
}

/* Hex digits to bytes; NULL or why not. Never says which digit. */
static const char *psk_hex_decode(const char *hex, size_t n, unsigned char *out, size_t *len)
{
    if (n % 2 != 0)
        return "the key has an odd number of hex digits";
    if (n < 2 * PSK_KEY_MIN || n > 2 * PSK_KEY_MAX)
        return "the key must be 16 to 64 bytes (32 to 128 hex digits)";
    for (size_t i = 0; i < n / 2; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]),
            lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return "the key is not hex";
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *len = n / 2;
    return NULL;
}

static int psk_slot_cmp(const void *a, const void *b)
{
    const struct psk_slot *x = *(struct psk_slot *const *)a, *y = *(struct psk_slot *const *)b;
    return strcmp(x->e.identity, y->e.identity);
}

/* Parse one line (NUL-terminated, no newline) into a new slot; NULL or why. */
static const char *psk_line_parse(char *line, const struct kp_config *cfg, struct psk_slot **out)
{
    const char *ws = " \t\r";
    char *f[3];
    size_t fl[3], nf = 0, klen = 0, il, ll;
    unsigned char key[PSK_KEY_MAX];
    const char *why = NULL;
    struct psk_slot *s;
    char *p = line;

    while (nf < 3) {
        p += strspn(p, ws);
        if (*p == '\0')
            break;
        f[nf] = p;
        fl[nf] = strcspn(p, ws);
        p += fl[nf];
        nf++;
    }
    p += strspn(p, ws);
    if (nf < 3 || *p != '\0')
        return "expected IDENTITY LABEL HEXKEY";
    f[0][fl[0]] = '\0';
    f[1][fl[1]] = '\0';
    why = psk_identity_check(f[0], fl[0]);
    if (why != NULL)
        return why;
    if (config_label(cfg, f[1]) == NULL)
        return "no such label in the config";
    why = psk_hex_decode(f[2], fl[2], key, &klen);
    if (why != NULL)
        goto out;
    il = fl[0] + 1;
    ll = fl[1] + 1;
    s = xcalloc(1, sizeof(*s) + il + ll + klen);
    s->alloc_len = sizeof(*s) + il + ll + klen;
    memcpy((char *)(s + 1), f[0], il);
    memcpy((char *)(s + 1) + il, f[1], ll);
    memcpy((unsigned char *)(s + 1) + il + ll, key, klen);
    s->e.identity = (const char *)(s + 1);
    s->e.label = (const char *)(s + 1) + il;
    s->e.key = (const unsigned char *)(s + 1) + il + ll;
    s->e.key_len = klen;
    *out = s;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return why;
}

enum kp_err psk_table_load(const char *path, const struct kp_config *cfg, struct psk_table **out,
                           char **errmsg)
{
    enum kp_err rc;
    struct psk_table *t = xcalloc(1, sizeof(*t));
    char *text = NULL;
    size_t len = 0, cap = 0;
    const char *why = NULL;
    int line = 0;

    rc = fs_secret_check("coap.psk_file", path);
    if (rc != KP_OK) {
        *errmsg = xasprintf("coap.psk_file %s: refused (see the log above)", path);
        goto out;
    }
    rc = fs_read_file(path, PSK_FILE_MAX, &text, &len);
    if (rc != KP_OK) {
        *errmsg = xasprintf("coap.psk_file %s: cannot read it (missing, unreadable or over %d "
                            "bytes)",
                            path, PSK_FILE_MAX);
        goto out;
    }
    rc = KP_ERR_CONFIG;
    for (size_t off = 0; off < len;) {
        char *p = text + off, *q;
        size_t n = 0;
        struct psk_slot *s = NULL;

        while (off + n < len && p[n] != '\n')
            n++;
        line++;
        if (n > PSK_LINE_MAX) {
            why = "line longer than 512 bytes";
            goto bad;
        }
        if (memchr(p, '\0', n) != NULL) {
            why = "a NUL byte in the line";
            goto bad;
        }
        p[n] = '\0'; /* the newline, or the terminator fs_read_file adds */
        off += n + 1;
        q = p + strspn(p, " \t\r");
        if (*q == '\0' || *q == '#')
            continue;
        why = psk_line_parse(q, cfg, &s);
        if (why != NULL)
            goto bad;
        if (t->n == cap) {
            cap = cap ? 2 * cap : 16;
            t->slots = xrealloc(t->slots, cap * sizeof(*t->slots));
        }
        s->line = line;
        t->slots[t->n++] = s;
    }
    qsort(t->slots, t->n, sizeof(*t->slots), psk_slot_cmp);
    for (size_t i = 1; i < t->n; i++) {
        if (strcmp(t->slots[i - 1]->e.identity, t->slots[i]->e.identity) == 0) {
            int a = t->slots[i - 1]->line, b = t->slots[i]->line;
            *errmsg = xasprintf("%s:%d: identity already given on line %d", path, a > b ? a : b,
                                a > b ? b : a);
            goto out;
        }
    }
    *out = t;
    t = NULL; /* steal */
    rc = KP_OK;
    goto out;
bad:
    *errmsg = xasprintf("%s:%d: %s", path, line, why);
out:
    if (text != NULL)
        OPENSSL_clear_free(text, len);
    psk_table_free(t);
    return rc;
}

/* What psk_find looks for: an identity of len bytes. */
struct psk_needle {
    const char *id;
    size_t len;
};

static int psk_needle_cmp(const void *needle, const void *slot)
{
    const struct psk_needle *k = needle;
    const char *id = (*(struct psk_slot *const *)slot)->e.identity;
    size_t n = strlen(id);
    int c = memcmp(k->id, id, k->len < n ? k->len : n);

    if (c != 0)
        return c;
    return k->len < n ? -1 : k->len > n;
}

const struct psk_entry *psk_find(const struct psk_table *t, const char *identity, size_t len)
{
    struct psk_needle k = {identity, len};
    struct psk_slot *const *s;

    if (t == NULL || identity == NULL || len == 0 || len > PSK_IDENTITY_MAX || t->n == 0)
        return NULL;
    s = bsearch(&k, t->slots, t->n, sizeof(*t->slots), psk_needle_cmp);
    return s == NULL ? NULL : &(*s)->e;
}
