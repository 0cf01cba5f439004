#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xalloc.h"

enum kp_err fs_read_file(const char *path, size_t max, char **out, size_t *len)
{
    enum kp_err rc = KP_ERR_IO;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        goto out;
    buf = xmalloc(max + 1);
    n = fread(buf, 1, max + 1, f);
    if (ferror(f) || n > max)
        goto out;
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    buf = NULL; /* steal */
    rc = KP_OK;
out:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

enum kp_err fs_write_new(const char *path, mode_t mode, const void *data, size_t len)
{
    enum kp_err rc = KP_ERR_IO;
    const unsigned char *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

    if (fd < 0) {
        rc = errno == EEXIST ? KP_ERR_EXISTS : KP_ERR_IO;
        goto out;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0)
        goto out;
    rc = KP_OK;
out:
    if (fd >= 0 && close(fd) != 0)
        rc = KP_ERR_IO;
    if (rc == KP_ERR_IO && fd >= 0)
        unlink(path); /* nothing half-written */
    return rc;
}

enum kp_err fs_mkdirs(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    enum kp_err rc = KP_ERR_IO;

    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            goto out;
        *s = '/';
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST)
        goto out;
    rc = KP_OK;
out:
    free(p);
    return rc;
}

char *fs_path_join(const char *dir, const char *name)
{
    if (name[0] == '/' || dir == NULL || dir[0] == '\0')
        return xstrdup(name);
    return xasprintf("%s/%s", dir, name);
}

int fs_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

enum kp_err fs_secret_check(const char *what, const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        log_error("%s %s: %s", what, path, strerror(errno));
        return KP_ERR_IO;
    }
    /* the same rule as ssh for private keys: nobody else may read or swap it */
    if ((st.st_mode & 077) != 0) {
        log_error("%s %s: mode %04o lets group or others read it; refusing to use it "
                  "(fix: chmod 600 %s)",
                  what, path, (unsigned)(st.st_mode & 07777), path);
        return KP_ERR_CONFIG;
    }
    return KP_OK;
}
