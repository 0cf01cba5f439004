/* Shared by the fuzz harnesses: checks that hold with NDEBUG too, a quiet
 * server log, and a per-process scratch directory removed at exit. */
#ifndef KP_FUZZ_SUPPORT_H
#define KP_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* The libFuzzer entry point, defined once by each fuzz_NAME.c. It is called
 * either by libFuzzer (-Dfuzz=true) or by standalone_main.c (corpus replay). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A harness invariant: on failure print where and abort, so that libFuzzer
 * saves the input and the replay test fails. */
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* Silence the server's log (millions of refused inputs) unless KP_FUZZ_LOG
 * names a level: debug, info, warn or error. Errors from OpenSSL calls that
 * fail unexpectedly (log_openssl) are always printed. */
void fuzz_quiet(void);

/* A directory of this process's own, made on first use under /dev/shm (or
 * $TMPDIR, or /tmp) and removed with its contents at exit. */
const char *fuzz_scratch_dir(void);

/* Create or replace the file at path with data; aborts on I/O errors. */
void fuzz_write_file(const char *path, const void *data, size_t len);

/* Write a certificate and/or a private key (either may be NULL) as PEM to
 * dir/name; aborts on errors. */
struct x509_st;
struct evp_pkey_st;
void fuzz_write_pem(const char *dir, const char *name, struct x509_st *cert,
                    struct evp_pkey_st *key);

/* The input as a C string (caller frees): what a header or path would be,
 * so it ends at the first NUL byte. */
char *fuzz_cstring(const uint8_t *data, size_t size);

#endif
