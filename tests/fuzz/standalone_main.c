/* Corpus replay without libFuzzer: every file named on the command line, or
 * every regular file inside a named directory (sorted, dot files skipped),
 * goes through LLVMFuzzerTestOneInput once. A harness invariant aborts; a run
 * that finds no input at all fails too, so a mistyped corpus path shows. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/xalloc.h"
#include "support.h"

/* Read one file and run it; returns 0 when it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long size;
    int ok = 0;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot read\n", path);
        goto out;
    }
    /* Exactly size bytes, so that ASan sees any read past the input. */
    buf = xmalloc(size > 0 ? (size_t)size : 1);
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "%s: short read\n", path);
        goto out;
    }
    fprintf(stderr, "replay %s (%ld bytes)\n", path, size);
    LLVMFuzzerTestOneInput(buf, (size_t)size);
    ok = 1;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return ok;
}

static int replay_visible(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Every regular file in dir, in name order; returns the count or -1. */
static long replay_dir(const char *dir)
{
    struct dirent **names = NULL;
    long count = 0;
    int n = scandir(dir, &names, replay_visible, alphasort);

    if (n < 0) {
        fprintf(stderr, "%s: cannot list\n", dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (count >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            count = replay_file(path) ? count + 1 : -1;
        free(path);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: no such file or directory\n", argv[i]);
            return 1;
        }
        n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    printf("%ld inputs replayed without failure\n", total);
    return 0;
}
