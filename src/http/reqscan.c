/* Request measuring ahead of the HTTP parser (see reqscan.h). Every
 * function here sees attacker bytes: no allocation, no copy beyond
 * REQSCAN_HEAD bytes of a line, counters that cannot overflow. */
#include "http/reqscan.h"

#include <string.h>
#include <strings.h>

/* Whether a complete header line announces a body over max_body, which an
 * HTTP parser might answer only after reading all of it. A malformed value is
 * left to the parser. */
static bool scan_body_over(const struct reqscan *s, size_t len, size_t max_body)
{
    static const char name[] = "content-length:";
    size_t i = sizeof(name) - 1, digits = 0;
    unsigned long long v = 0;

    if (len < i || strncasecmp(s->head, name, i) != 0)
        return false;
    if (len > sizeof(s->head))
        return true; /* a value longer than the line start kept: too big or garbage */
    while (i < len && (s->head[i] == ' ' || s->head[i] == '\t'))
        i++;
    for (; i < len && s->head[i] >= '0' && s->head[i] <= '9'; i++, digits++)
        if (digits < 18)
            v = v * 10 + (unsigned)(s->head[i] - '0');
    return digits > 18 || v > (unsigned long long)max_body;
}

/* Whether a complete header line says Transfer-Encoding: ...chunked. */
static bool scan_chunked(const struct reqscan *s, size_t len)
{
    static const char name[] = "transfer-encoding:";
    size_t n = len < sizeof(s->head) ? len : sizeof(s->head);
    char v[REQSCAN_HEAD + 1];

    if (n < sizeof(name) - 1 || strncasecmp(s->head, name, sizeof(name) - 1) != 0)
        return false;
    memcpy(v, s->head, n);
    v[n] = '\0';
    return strcasestr(v, "chunked") != NULL;
}

/* The header block: 413 (Content-Length), 414 or 431; *used is where the body
 * starts once the blank line is seen (s->in_body). */
static int scan_header(struct reqscan *s, const struct reqscan_limits *lim, const unsigned char *p,
                       size_t n, size_t *used, const char **why)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (++s->bytes > lim->max_header_bytes) {
            *why = "header block larger than server.max_header_bytes";
            return 431;
        }
        if (p[i] == '\n') {
            /* An empty line ends the block, except before the request line. */
            if (s->line == 0 && s->lines > 0) {
                s->in_body = true;
                i++;
                break;
            }
            if (s->lines > 0 && scan_body_over(s, s->line, lim->max_body)) {
                *why = "body larger than server.max_body_bytes";
                return 413;
            }
            if (s->lines > 0 && scan_chunked(s, s->line))
                s->chunked = true;
            if (s->line > 0)
                s->lines++;
            s->line = 0;
            if (s->lines > 1 + lim->max_header_count) {
                *why = "more header fields than server.max_header_count";
                return 431;
            }
        } else if (p[i] != '\r') {
            if (s->line < sizeof(s->head))
                s->head[s->line] = (char)p[i];
            s->line++;
            if (s->lines == 0 && p[i] == ' ')
                s->sp++;
            else if (s->lines == 0 && s->sp == 1 && ++s->target > lim->max_url) {
                *why = "request-target longer than server.max_url_bytes";
                return 414;
            }
        }
    }
    *used = i;
    return 0;
}

/* Follow a chunked body (RFC 9112 7.1) to refuse it at the chunk that takes
 * it over max_body: before the parser reads it. Framing that cannot be
 * followed stops the scan and is left to the parser. */
static int scan_chunks(struct reqscan *s, const struct reqscan_limits *lim, const unsigned char *p,
                       size_t n, const char **why)
{
    size_t max = lim->max_body, k;
    int d;

    for (size_t i = 0; i < n && s->on; i++) {
        switch (s->ck) {
        case CK_SIZE:
            d = p[i] >= '0' && p[i] <= '9'   ? p[i] - '0'
                : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
                : p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10
                                             : -1;
            if (d >= 0 && s->ck_line == 0) {
                s->ck_size = s->ck_size > max ? s->ck_size : s->ck_size * 16 + (size_t)d;
                break;
            }
            if (p[i] != '\n') {
                /* extension, whitespace or CR: the rest of the size line */
                if (++s->ck_line > REQSCAN_CHUNK_LINE) {
                    *why = "chunk size line too long";
                    return 400;
                }
                break;
            }
            if (s->ck_size == 0) {
                s->on = false; /* last chunk: trailers are the parser's */
                break;
            }
            if (s->ck_size > max || s->ck_sum + s->ck_size > max) {
                *why = "body larger than server.max_body_bytes";
                return 413;
            }
            s->ck_sum += s->ck_size;
            s->ck = CK_DATA;
            break;
        case CK_DATA:
            k = n - i < s->ck_size ? n - i : s->ck_size;
            s->ck_size -= k;
            i += k - 1;
            if (s->ck_size == 0)
                s->ck = CK_END;
            break;
        case CK_END:
            if (p[i] == '\n') {
                s->ck = CK_SIZE;
                s->ck_line = 0;
            } else if (p[i] != '\r') {
                s->on = false;
            }
            break;
        }
    }
    return 0;
}

void reqscan_start(struct reqscan *s)
{
    memset(s, 0, sizeof(*s));
    s->on = true;
}

int reqscan_feed(struct reqscan *s, const struct reqscan_limits *lim, const unsigned char *p,
                 size_t n, const char **why)
{
    size_t used = 0;
    int status;

    if (!s->on)
        return 0;
    if (!s->in_body) {
        status = scan_header(s, lim, p, n, &used, why);
        if (status != 0 || !s->in_body)
            return status;
        if (!s->chunked) {
            s->on = false; /* a Content-Length body was checked in the header */
            return 0;
        }
    }
    return scan_chunks(s, lim, p + used, n - used, why);
}
