/* reqscan_feed on the input as the bytes of an HTTP/1.1 request: the status
 * is one of 0, 400, 413, 414, 431; fed whole or in pieces of the size the
 * first byte gives, the answer is the same; while it answers 0 the header
 * block and the chunked body stay within the limits. Small limits, so that
 * every branch is reachable with short inputs. */
#include <string.h>

#include "http/reqscan.h"
#include "support.h"

static const struct reqscan_limits lim = {
    .max_header_bytes = 1024,
    .max_header_count = 8,
    .max_url = 128,
    .max_body = 512,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reqscan whole, parts;
    const char *why = NULL, *why2 = NULL;
    size_t step;
    int st, st2 = 0;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 16 + 1;
    data++;
    size--;

    reqscan_start(&whole);
    st = reqscan_feed(&whole, &lim, data, size, &why);
    FUZZ_CHECK(st == 0 || st == 400 || st == 413 || st == 414 || st == 431);
    FUZZ_CHECK(st == 0 || why != NULL);
    if (st == 0) {
        FUZZ_CHECK(whole.bytes <= lim.max_header_bytes);
        FUZZ_CHECK(whole.target <= lim.max_url);
        FUZZ_CHECK(whole.ck_sum <= lim.max_body);
    }

    reqscan_start(&parts);
    for (size_t i = 0; i < size && st2 == 0; i += step)
        st2 = reqscan_feed(&parts, &lim, data + i, size - i < step ? size - i : step, &why2);
    FUZZ_CHECK(st == st2);
    FUZZ_CHECK(st != 0 || whole.on == parts.on);
    FUZZ_CHECK(st == 0 || strcmp(why, why2) == 0);
    return 0;
}
