/* restore.c - hand an image to the restorer (libvmad side).
 *
 * Restoring replaces the calling process, so it is an exec of vmad-restore,
 * a small static program linked far from the usual layout that maps the
 * image and jumps into it (restorer/).  The daemon forks and calls
 * vmad_restore_fd() in the child; the vmadump CLI calls it directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
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

/* Restorer arguments: --fd N [--rank R] [--verified] [--label L]
 * [--keep-fd K]...; the strings live in *a. */
#define MAX_KEEP 64

struct restorer_args {
    char *argv[10 + 2 * MAX_KEEP];
    char nums[2 + MAX_KEEP][24];
};

static int build_args(struct restorer_args *a, int fd,
                      const struct vmad_restore_opts *o, char *err, size_t errlen)
{
    int argc = 0, flags;

    if (o->nkeep_fds > MAX_KEEP) {
        errno = EINVAL;
        return errprintf(err, errlen, "too many fds to keep (%zu, at most %d)",
                         o->nkeep_fds, MAX_KEEP);
    }
    a->argv[argc++] = (char *)"vmad-restore";
    snprintf(a->nums[0], sizeof(a->nums[0]), "%d", fd);
    a->argv[argc++] = (char *)"--fd";
    a->argv[argc++] = a->nums[0];
    if (o->rank >= 0) {
        snprintf(a->nums[1], sizeof(a->nums[1]), "%ld", o->rank);
        a->argv[argc++] = (char *)"--rank";
        a->argv[argc++] = a->nums[1];
    }
    if (o->verified)
        a->argv[argc++] = (char *)"--verified";
    if (o->label) {
        a->argv[argc++] = (char *)"--label";
        a->argv[argc++] = (char *)o->label;
    }
    for (size_t i = 0; i < o->nkeep_fds; i++) {
        snprintf(a->nums[2 + i], sizeof(a->nums[2 + i]), "%d", o->keep_fds[i]);
        a->argv[argc++] = (char *)"--keep-fd";
        a->argv[argc++] = a->nums[2 + i];
    }
    a->argv[argc] = NULL;
    /* The restorer gets the image as an inherited fd. */
    if ((flags = fcntl(fd, F_GETFD)) < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
        return errprintf(err, errlen, "image fd %d: %s", fd, strerror(errno));
    return 0;
}

static const struct vmad_restore_opts default_opts = { .rank = -1 };

int vmad_restore_fd(int fd, const struct vmad_restore_opts *opts,
                    char *err, size_t errlen)
{
    struct restorer_args a;
    const char *path = vmad_restorer_path();

    if (build_args(&a, fd, opts ? opts : &default_opts, err, errlen) < 0)
        return -1;
    execve(path, a.argv, environ);
    return errprintf(err, errlen, "%s: %s", path, strerror(errno));
}

int vmad_restore_spawn(int fd, const struct vmad_restore_opts *opts,
                       const posix_spawn_file_actions_t *actions,
                       const posix_spawnattr_t *attr, pid_t *pid,
                       char *err, size_t errlen)
{
    struct restorer_args a;
    const char *path = vmad_restorer_path();
    int rc;

    if (build_args(&a, fd, opts ? opts : &default_opts, err, errlen) < 0)
        return -1;
    if ((rc = posix_spawn(pid, path, actions, attr, a.argv, environ))) {
        errno = rc;
        return errprintf(err, errlen, "%s: %s", path, strerror(rc));
    }
    return 0;
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

uint64_t vmad_image_checksum(const void *buf, size_t len)
{
    const struct image_header *hdr;

    return image_parse_header(buf, len, &hdr) ? 0 : hdr->checksum;
}

void vmad_sum_init(struct vmad_sum *s)
{
    image_hash_init(&s->h);
    s->done = 0;
}

void vmad_sum_feed(struct vmad_sum *s, const void *buf, size_t upto)
{
    image_hash_feed(&s->h, &s->done, buf, upto);
}

int vmad_check_summed(const void *buf, size_t len, const struct vmad_sum *s,
                      char *err, size_t errlen)
{
    struct image img;
    const char *why = s->done != len ? "the image was not hashed whole"
                      : image_check_summed(buf, len, image_hash_final(&s->h),
                                           &img);

    if (why) {
        errno = EINVAL;
        return errprintf(err, errlen, "%s", why);
    }
    return 0;
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
