/* A growable NUL-terminated string for building short texts (names, SAN
 * lists). Whoever fills one owns b->s and frees it with free(). */
#ifndef KP_STRBUF_H
#define KP_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *s; /* NULL until the first add */
    size_t len, cap;
};

/* Append n bytes of p (aborts on allocation failure, as xmalloc does). */
void strbuf_add(struct strbuf *b, const char *p, size_t n);
/* Append a NUL-terminated string. */
void strbuf_adds(struct strbuf *b, const char *s);

#endif
