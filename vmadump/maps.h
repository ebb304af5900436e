/* maps.h - read /proc/PID/maps into an array of mappings. */
#ifndef VMADUMP_MAPS_H
#define VMADUMP_MAPS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct map_entry {
    uint64_t start, end, offset;
    int prot;                /* PROT_* */
    int shared;              /* 's' in the perms column */
    unsigned int dev_major, dev_minor;
    uint64_t inode;
    char path[PATH_MAX];     /* file path, [stack], [vdso], ... or "" */
};

/* Read the mappings of pid.  Returns the count and a malloc'd array in
 * *out, or -1 with errno set. */
int maps_read(pid_t pid, struct map_entry **out);

#endif
