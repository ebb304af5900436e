/* err.c - the shared error convention (see err.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/err.h"

int seterr(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    errno = errnum;
    return -1;
}
