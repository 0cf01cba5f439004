/* A CoAP client that sends a file as Block1 (RFC 7959 2.5) the way a
 * minimal device does: block after block, without Size1, never told the
 * whole size up front. coap-client always adds Size1; this checks that a
 * server counts the blocks themselves. Prints each answer's code, one a
 * line ("2.31", "4.13"), and stops at the first that is not 2.31.
 *
 *   coapblocks HOST PORT PATH FILE SZX CERT KEY
 *
 * PATH as "est/sen"; SZX 0..6 (16..1024 bytes); CERT and KEY PEM files. */
#include <arpa/inet.h>
#include <coap3/coap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int answer = -1;

static coap_response_t on_response(coap_session_t *s, const coap_pdu_t *sent,
                                   const coap_pdu_t *received, const coap_mid_t mid)
{
    (void)s;
    (void)sent;
    (void)mid;
    answer = (int)coap_pdu_get_code(received);
    return COAP_RESPONSE_OK;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        exit(2);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        exit(2);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    coap_context_t *ctx;
    coap_session_t *session;
    coap_address_t dst;
    coap_dtls_pki_t pki;
    unsigned char *body, token[4] = {1, 2, 3, 4};
    size_t len, size, nblocks;
    unsigned szx;
    char path[256];

    if (argc != 8)
        return 2;
    szx = (unsigned)strtoul(argv[5], NULL, 10);
    if (szx > 6)
        return 2;
    size = (size_t)16 << szx;
    body = slurp(argv[4], &len);
    nblocks = (len + size - 1) / size;

    coap_startup();
    coap_set_log_level(LOG_ERR);
    ctx = coap_new_context(NULL);
    coap_address_init(&dst);
    dst.addr.sin.sin_family = AF_INET;
    dst.addr.sin.sin_port = htons((uint16_t)strtoul(argv[2], NULL, 10));
    if (inet_pton(AF_INET, argv[1], &dst.addr.sin.sin_addr) != 1)
        return 2;
    dst.size = sizeof(dst.addr.sin);
    memset(&pki, 0, sizeof(pki));
    pki.version = COAP_DTLS_PKI_SETUP_VERSION;
    pki.pki_key.key_type = COAP_PKI_KEY_PEM;
    pki.pki_key.key.pem.public_cert = argv[6];
    pki.pki_key.key.pem.private_key = argv[7];
    session = coap_new_client_session_pki(ctx, NULL, &dst, COAP_PROTO_DTLS, &pki);
    if (ctx == NULL || session == NULL)
        return 2;
    coap_register_response_handler(ctx, on_response);

    for (size_t num = 0; num < nblocks; num++) {
        coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, session);
        size_t off = num * size, n = len - off < size ? len - off : size;
        unsigned more = num + 1 < nblocks;
        uint8_t buf[4];
        const char *seg = path;
        int waited = 0;

        coap_add_token(pdu, sizeof(token), token);
        snprintf(path, sizeof(path), "%s", argv[3]);
        while (*seg != '\0') {
            size_t k = strcspn(seg, "/");
            coap_add_option(pdu, COAP_OPTION_URI_PATH, k, (const uint8_t *)seg);
            seg += k + (seg[k] == '/');
        }
        coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                        coap_encode_var_safe(buf, sizeof(buf), 286), buf);
        coap_add_option(
            pdu, COAP_OPTION_BLOCK1,
            coap_encode_var_safe(buf, sizeof(buf), (unsigned)(num << 4) | (more << 3) | szx), buf);
        coap_add_data(pdu, n, body + off);
        answer = -1;
        if (coap_send(session, pdu) == COAP_INVALID_MID)
            return 1;
        while (answer < 0 && waited < 30000) {
            coap_io_process(ctx, 100);
            waited += 100;
        }
        if (answer < 0)
            return 1;
        printf("%d.%02d\n", answer >> 5, answer & 31);
        fflush(stdout);
        if (answer != COAP_RESPONSE_CODE(231))
            break;
    }
    coap_session_release(session);
    coap_free_context(ctx);
    coap_cleanup();
    free(body);
    return 0;
}
