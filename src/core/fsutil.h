/* Small file helpers with limits and safe modes. */
#ifndef KP_FSUTIL_H
#define KP_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

/* Read a whole file of at most max bytes (NUL-terminated, caller frees). */
enum kp_err fs_read_file(const char *path, size_t max, char **out, size_t *len);
/* Create a new file with this mode and content; KP_ERR_EXISTS if it exists
 * (never overwrites). Data reaches the disk (fsync) before returning. */
enum kp_err fs_write_new(const char *path, mode_t mode, const void *data, size_t len);
/* mkdir -p with mode for created directories. */
enum kp_err fs_mkdirs(const char *path, mode_t mode);
/* dir + "/" + name, or name when it is already absolute (caller frees). */
char *fs_path_join(const char *dir, const char *name);
/* 1 when the path exists. */
int fs_exists(const char *path);
/* A file holding a secret (CA key, TLS key, otp.key, KEK or archive keys)
 * must not be readable or writable by group or others. KP_ERR_CONFIG after
 * logging one line naming what, the path, its mode and the fix (chmod 600);
 * KP_ERR_IO when it cannot be examined. */
enum kp_err fs_secret_check(const char *what, const char *path);

#endif
