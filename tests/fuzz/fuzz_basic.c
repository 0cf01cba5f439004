/* basic_parse (RFC 7617) on the input as an Authorization header value. A
 * header is a C string here, as the transport hands it over, so it ends at
 * the first NUL. Accepted credentials must be what RFC 7617 2 allows and
 * must come back unchanged from their own canonical encoding. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "auth/basic.h"
#include "core/base64.h"
#include "core/xalloc.h"
#include "support.h"

static void free_secret(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s));
}

/* "Basic " + base64(user ":" pass) without line breaks parses back. */
static void check_reencoded(const char *user, const char *pass)
{
    char *userpass = xasprintf("%s:%s", user, pass);
    char *b64 = base64_encode((const unsigned char *)userpass, strlen(userpass), NULL);
    char *header, *u = NULL, *p = NULL;
    size_t o = 0;

    for (size_t i = 0; b64[i] != '\0'; i++)
        if (b64[i] != '\n')
            b64[o++] = b64[i];
    b64[o] = '\0';
    header = xasprintf("Basic %s", b64);
    if (strlen(header) <= BASIC_MAX_HEADER) {
        FUZZ_CHECK(basic_parse(header, &u, &p) == KP_OK);
        FUZZ_CHECK(strcmp(u, user) == 0 && strcmp(p, pass) == 0);
    }
    free(u);
    free_secret(p);
    free_secret(header);
    free_secret(b64);
    free_secret(userpass);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header = fuzz_cstring(data, size);
    char *user = NULL, *pass = NULL;
    enum kp_err rc = basic_parse(header, &user, &pass);

    if (rc == KP_OK) {
        FUZZ_CHECK(user != NULL && pass != NULL);
        FUZZ_CHECK(strlen(header) <= BASIC_MAX_HEADER);
        /* RFC 7617 2: a non-empty user-id without ':' */
        FUZZ_CHECK(user[0] != '\0' && strchr(user, ':') == NULL);
        check_reencoded(user, pass);
    } else {
        FUZZ_CHECK(rc == KP_ERR_UNAUTHORIZED);
        FUZZ_CHECK(user == NULL && pass == NULL);
    }
    free(user);
    free_secret(pass);
    free(header);
    return 0;
}
