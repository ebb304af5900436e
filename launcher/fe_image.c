/* fe_image.c - the front end's image: the program dumped once, with the
 * ranks' environment, into the memfd the gateway lent or a sealed one
 * of ours, which the gateway maps.
 */
#include "common/err.h"
#include "launcher/fe_image.h"
#include "vmadump/vmadump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

/* The environment of every rank: ours, with the rank placeholder and the
 * job size. */
static char **rank_environment(int n)
{
    size_t count = 0, k = 0;
    char **env;

    while (environ[count])
        count++;
    if (!(env = calloc(count + 3, sizeof(*env))))
        return NULL;
    for (size_t i = 0; i < count; i++)
        if (strncmp(environ[i], "BPROC_RANK=", 11)
            && strncmp(environ[i], "VEXEC_SIZE=", 11))
            env[k++] = environ[i];
    env[k++] = "BPROC_RANK=XXXXXXX";
    if (asprintf(&env[k++], "VEXEC_SIZE=%d", n) < 0)
        env[--k] = NULL;
    return env;
}

/* The checksum the image's header carries (vmad_image_checksum), and
 * where a node's huge-page buffer should put the image. */
static int read_image_facts(int fd, size_t len, uint64_t *sum, uint32_t *lead)
{
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);

    if (map == MAP_FAILED)
        return -1;
    *sum = vmad_image_checksum(map, len);
    *lead = (uint32_t)vmad_huge_lead(map, len);
    munmap(map, len);
    return 0;
}

int fe_image_dump(char *const argv[], int n, int *fd, size_t *len,
                  uint64_t *sum, uint32_t *lead, char *err, size_t errlen)
{
    char **env = rank_environment(n);
    off_t end;
    int ret = 0, lent;

    if (!env) {
        seterr(err, errlen, ENOMEM, "out of memory");
        return 1;
    }
    lent = *fd >= 0;
    if (lent ? lseek(*fd, 0, SEEK_SET) < 0
             : (*fd = memfd_create("vexec-image", MFD_CLOEXEC
                                                  | MFD_ALLOW_SEALING)) < 0) {
        ret = 1;
        seterr(err, errlen, errno, "image memfd: %s", strerror(errno));
        goto out;
    }
    /* Straight into the memfd the gateway maps: an image built in memory
     * first cost one more 4.9 MB copy and its page faults. */
    if (vmad_dump_to_fd(argv[0], argv, env, NULL, *fd, err, errlen) < 0) {
        ret = 127;
        goto out;
    }
    /* Ours is sealed: the gateway maps it, and nobody may change it then.
     * The gateway's is its own to keep; a byte changed in it now would
     * fail every node's check of the image against the signed checksum. */
    end = lseek(*fd, 0, SEEK_CUR);
    *len = end > 0 ? (size_t)end : 0;
    if (end <= 0
        || (!lent && fcntl(*fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW
                                             | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
        || read_image_facts(*fd, *len, sum, lead) < 0) {
        ret = 1;
        seterr(err, errlen, errno, "image memfd: %s", strerror(errno));
    }
out:
    for (size_t i = 0; env[i]; i++)
        if (!strncmp(env[i], "VEXEC_SIZE=", 11))
            free(env[i]);
    free(env);
    return ret;
}
