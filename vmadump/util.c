/* util.c - helpers shared by the libvmad sources (see util.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

int errprintf(char *err, size_t errlen, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    errno = saved ? saved : EINVAL;
    return -1;
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

int read_all(int fd, void **bufp, size_t *lenp)
{
    size_t len = 0, cap = 1 << 20;
    char *buf = malloc(cap), *nb;
    ssize_t n;

    if (!buf)
        return -1;
    for (;;) {
        if (len == cap) {
            if (!(nb = realloc(buf, cap *= 2)))
                goto error;
            buf = nb;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto error;
        if (n == 0)
            break;
        len += n;
    }
    *bufp = buf;
    *lenp = len;
    return 0;
error:
    n = errno;
    free(buf);
    errno = n;
    return -1;
}
