/* Allocators that abort on exhaustion: a server out of memory cannot answer
 * correctly anyway, and checking every small allocation hides real errors. */
#ifndef KP_XALLOC_H
#define KP_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string (caller frees). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
