#include "support.h"

#include <ftw.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xalloc.h"

static char scratch[256];

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    abort();
}

void fuzz_quiet(void)
{
    const char *want = getenv("KP_FUZZ_LOG");
    int level = want != NULL ? log_level_parse(want) : -1;

    /* One past LOG_ERROR: log_msg drops everything below its minimum. */
    log_setup(level >= 0 ? (enum log_level)level : (enum log_level)(LOG_ERROR + 1), LOG_TEXT);
}

static int scratch_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void scratch_cleanup(void)
{
    if (scratch[0] != '\0')
        nftw(scratch, scratch_rm, 8, FTW_DEPTH | FTW_PHYS);
    scratch[0] = '\0';
}

const char *fuzz_scratch_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    const char *bases[] = {"/dev/shm", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", "/tmp"};

    if (scratch[0] != '\0')
        return scratch;
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        if (access(bases[i], W_OK) != 0)
            continue;
        snprintf(scratch, sizeof(scratch), "%s/kp-fuzz-XXXXXX", bases[i]);
        if (mkdtemp(scratch) != NULL) {
            atexit(scratch_cleanup);
            return scratch;
        }
    }
    fuzz_fail(__FILE__, __LINE__, "cannot create a scratch directory");
}

void fuzz_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(len == 0 || fwrite(data, 1, len, f) == len);
    FUZZ_CHECK(fclose(f) == 0);
}

char *fuzz_cstring(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    return xstrndup((const char *)data, nul != NULL ? (size_t)(nul - data) : size);
}

void fuzz_write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");

    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(cert == NULL || PEM_write_X509(f, cert) == 1);
    FUZZ_CHECK(key == NULL || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    FUZZ_CHECK(fclose(f) == 0);
    /* kipuka refuses a key file others may read */
    FUZZ_CHECK(key == NULL || chmod(path, 0600) == 0);
    free(path);
}
