/* util.h - small helpers shared by the libvmad sources (not the restorer). */
#ifndef VMADUMP_UTIL_H
#define VMADUMP_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Format a one-line message into err (if not NULL) and return -1; errno is
 * left as it was, so callers can `return errprintf(err, len, "...")`. */
__attribute__((format(printf, 3, 4)))
int errprintf(char *err, size_t errlen, const char *fmt, ...);

/* write() all of buf, retrying on EINTR and short writes.  0 or -1. */
int write_all(int fd, const void *buf, size_t len);

/* Read fd to EOF into a malloc'd buffer.  Returns 0 or -1 with errno. */
int read_all(int fd, void **buf, size_t *len);

#endif
