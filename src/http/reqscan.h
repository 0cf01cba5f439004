/* Measure an HTTP/1.1 request (RFC 9112) as its bytes arrive, before any
 * parser sees them: request-target length, header block size and field
 * count, a Content-Length over the body limit, and the chunk framing of a
 * chunked body. It keeps no bytes beyond the start of the current line, so it
 * costs the same for a 20-byte request and for a 10 MB one. */
#ifndef KP_HTTP_REQSCAN_H
#define KP_HTTP_REQSCAN_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of each header line kept to read Content-Length and Transfer-Encoding. */
#define REQSCAN_HEAD 64
/* Longest chunk-size line (with extensions) accepted. */
#define REQSCAN_CHUNK_LINE 1024

struct reqscan_limits {
    size_t max_header_bytes; /* request line + fields + line ends: 431 above */
    size_t max_header_count; /* fields: 431 above */
    size_t max_url;          /* request-target: 414 above */
    size_t max_body;         /* Content-Length or chunked sum: 413 above */
};

/* One request's state; zeroed by reqscan_start, no resources. */
struct reqscan {
    bool on;       /* from the request's first byte to its blank line (chunked: last chunk) */
    size_t bytes;  /* of the header block so far, line ends included */
    size_t line;   /* bytes of the current line, CR and LF excluded */
    size_t lines;  /* complete non-empty lines, the request line first */
    size_t target; /* request-target bytes so far */
    unsigned sp;   /* spaces seen in the request line */
    char head[REQSCAN_HEAD]; /* start of the current line */
    bool in_body;
    bool chunked;                         /* Transfer-Encoding: chunked */
    enum { CK_SIZE, CK_DATA, CK_END } ck; /* where in the chunk framing */
    size_t ck_size, ck_sum, ck_line;      /* chunk left, body so far, size line */
};

/* A new request begins with the next byte. */
void reqscan_start(struct reqscan *s);

/* Feed the next n bytes of the request. Returns 0 while within the limits (s->on
 * turns false once nothing more needs checking: the blank line, or the last
 * chunk of a chunked body), else the status to answer, 400 (chunk framing),
 * 413, 414 or 431, with *why set to a static reason. Bytes fed after s->on
 * turned false are ignored. */
int reqscan_feed(struct reqscan *s, const struct reqscan_limits *lim, const unsigned char *p,
                 size_t n, const char **why);

#endif
