/* restore.c - hand an image to the restorer (libvmad side).
 *
 * Restoring replaces the calling process, so it is an exec of vmad-restore,
 * a small static program linked far from the usual layout that maps the
 * image and jumps into it (restorer/).  The daemon forks and calls
 * vmad_restore_fd() in the child; the vmadump CLI calls it directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "util.h"
#include "vmadump.h"

#ifndef VMAD_RESTORER_PATH
#error "VMAD_RESTORER_PATH must name the built vmad-restore"
#endif

extern char **environ;

const char *vmad_restorer_path(void)
{
    const char *env = getenv("VMAD_RESTORER");

    return env && *env ? env : VMAD_RESTORER_PATH;
}

/* Restorer arguments: --fd N [--rank R] [--verified] [--keep-fd K]... */
#define MAX_ARGS (8 + 2 * 64)

int vmad_restore_fd(int fd, const struct vmad_restore_opts *opts,
                    char *err, size_t errlen)
{
    static const struct vmad_restore_opts defaults = { .rank = -1 };
    char nums[2 + 64][24], *argv[MAX_ARGS];
    const char *path = vmad_restorer_path();
    int argc = 0, flags;

    opts = opts ? opts : &defaults;
    if (opts->nkeep_fds > 64) {
        errno = EINVAL;
        return errprintf(err, errlen, "too many fds to keep (%zu, at most 64)",
                         opts->nkeep_fds);
    }
    argv[argc++] = (char *)"vmad-restore";
    snprintf(nums[0], sizeof(nums[0]), "%d", fd);
    argv[argc++] = (char *)"--fd";
    argv[argc++] = nums[0];
    if (opts->rank >= 0) {
        snprintf(nums[1], sizeof(nums[1]), "%ld", opts->rank);
        argv[argc++] = (char *)"--rank";
        argv[argc++] = nums[1];
    }
    if (opts->verified)
        argv[argc++] = (char *)"--verified";
    if (opts->label) {
        argv[argc++] = (char *)"--label";
        argv[argc++] = (char *)opts->label;
    }
    for (size_t i = 0; i < opts->nkeep_fds; i++) {
        snprintf(nums[2 + i], sizeof(nums[2 + i]), "%d", opts->keep_fds[i]);
        argv[argc++] = (char *)"--keep-fd";
        argv[argc++] = nums[2 + i];
    }
    argv[argc] = NULL;
    if ((flags = fcntl(fd, F_GETFD)) < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
        return errprintf(err, errlen, "image fd %d: %s", fd, strerror(errno));
    execve(path, argv, environ);
    return errprintf(err, errlen, "%s: %s", path, strerror(errno));
}

int vmad_restore_buffer(const void *buf, size_t len,
                        const struct vmad_restore_opts *opts,
                        char *err, size_t errlen)
{
    int fd = memfd_create("vmad-image", MFD_CLOEXEC | MFD_ALLOW_SEALING), saved;

    if (fd < 0)
        return errprintf(err, errlen, "memfd_create: %s", strerror(errno));
    /* Sealed: the restored program maps this memory privately, and a mapped
     * image must never change under a live process. */
    if (write_all(fd, buf, len) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
                               F_SEAL_SEAL) < 0) {
        errprintf(err, errlen, "image memfd: %s", strerror(errno));
        goto error;
    }
    vmad_restore_fd(fd, opts, err, errlen);
error:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int vmad_check(const void *buf, size_t len, char *err, size_t errlen)
{
    struct image img;
    const char *why = image_check(buf, len, &img);

    if (why) {
        errno = EINVAL;
        return errprintf(err, errlen, "%s", why);
    }
    return 0;
}
