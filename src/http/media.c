#include "http/media.h"

#include <string.h>
#include <strings.h>

bool http_media_is(const char *header, const char *type)
{
    size_t len, tlen = strlen(type);

    if (header == NULL)
        return false;
    while (*header == ' ' || *header == '\t')
        header++;
    len = strcspn(header, ";,");
    while (len > 0 && (header[len - 1] == ' ' || header[len - 1] == '\t'))
        len--;
    return len == tlen && strncasecmp(header, type, len) == 0;
}

bool http_accepts_json(const char *accept)
{
    while (accept != NULL && *accept != '\0') {
        if (http_media_is(accept, "application/json"))
            return true;
        accept = strchr(accept, ',');
        if (accept != NULL)
            accept++;
    }
    return false;
}

const char *http_media_name(enum est_media m)
{
    switch (m) {
    case EST_MEDIA_PKCS10:
        return "application/pkcs10";
    case EST_MEDIA_CERTS:
        return "application/pkcs7-mime; smime-type=certs-only";
    case EST_MEDIA_PKIX_CERT:
        return "application/pkix-cert";
    case EST_MEDIA_CSRATTRS:
        return "application/csrattrs";
    case EST_MEDIA_PKCS8:
        return "application/pkcs8";
    case EST_MEDIA_SERVER_KEY:
        return "application/pkcs7-mime; smime-type=server-generated-key";
    case EST_MEDIA_CMC_REQUEST:
        return "application/pkcs7-mime; smime-type=CMC-request";
    case EST_MEDIA_CMC_RESPONSE:
        return "application/pkcs7-mime; smime-type=CMC-response";
    case EST_MEDIA_JSON:
        return "application/json";
    case EST_MEDIA_NONE:
    case EST_MEDIA_OTHER:
        break;
    }
    return NULL;
}
