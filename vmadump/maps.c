/* maps.c - parse /proc/PID/maps (see maps.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "maps.h"

static int parse_line(const char *line, struct map_entry *m)
{
    char perms[5];
    int pathpos = 0;

    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n",
               &m->start, &m->end, perms, &m->offset, &m->dev_major,
               &m->dev_minor, &m->inode, &pathpos) < 7)
        return -1;
    m->prot = (perms[0] == 'r' ? PROT_READ : 0) |
              (perms[1] == 'w' ? PROT_WRITE : 0) |
              (perms[2] == 'x' ? PROT_EXEC : 0);
    m->shared = perms[3] == 's';
    snprintf(m->path, sizeof(m->path), "%s", line + pathpos);
    m->path[strcspn(m->path, "\n")] = '\0';
    return 0;
}

int maps_read(pid_t pid, struct map_entry **out)
{
    char name[64], line[PATH_MAX + 128];
    struct map_entry *v = NULL, *nv;
    int n = 0, cap = 0, saved;
    FILE *f;

    snprintf(name, sizeof(name), "/proc/%d/maps", (int)pid);
    if (!(f = fopen(name, "re")))
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            if (!(nv = realloc(v, cap * sizeof(*v))))
                goto error;
            v = nv;
        }
        if (parse_line(line, &v[n]) < 0) {
            errno = EPROTO;
            goto error;
        }
        n++;
    }
    fclose(f);
    *out = v;
    return n;
error:
    saved = errno;
    fclose(f);
    free(v);
    errno = saved;
    return -1;
}
