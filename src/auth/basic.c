#include "auth/basic.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/xalloc.h"

enum kp_err basic_parse(const char *header, char **user, char **pass)
{
    enum kp_err rc = KP_ERR_UNAUTHORIZED;
    unsigned char *raw = NULL;
    size_t raw_len = 0, hlen;
    const char *p;
    unsigned char *colon;

    if (header == NULL)
        goto out;
    hlen = strlen(header);
    if (hlen > BASIC_MAX_HEADER || hlen < 6 || strncasecmp(header, "Basic", 5) != 0 ||
        (header[5] != ' ' && header[5] != '\t'))
        goto out;
    p = header + 5;
    p += strspn(p, " \t");
    if (base64_decode(p, strlen(p), &raw, &raw_len) != KP_OK)
        goto out;
    /* RFC 7617 2: user-id cannot contain ':'; password may. No NULs anywhere. */
    if (memchr(raw, '\0', raw_len) != NULL)
        goto out;
    colon = memchr(raw, ':', raw_len);
    if (colon == NULL || colon == raw)
        goto out;
    *user = xstrndup((const char *)raw, (size_t)(colon - raw));
    *pass = xstrndup((const char *)colon + 1, raw_len - (size_t)(colon - raw) - 1);
    rc = KP_OK;
out:
    if (raw)
        OPENSSL_clear_free(raw, raw_len);
    return rc;
}
