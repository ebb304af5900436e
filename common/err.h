/* err.h - the error convention shared by fanout, launcher and pmi: a
 * failed call returns -1 with errno set and a one-line message in the
 * caller's buffer.  (vmadump depends on nothing of ours and has its own.)
 */
#ifndef VEXEC_ERR_H
#define VEXEC_ERR_H

#include <stddef.h>

/* Format a message into err (if not NULL), set errno to errnum, return -1:
 * `return seterr(err, errlen, EINVAL, "bad chunk %zu", n);` */
__attribute__((format(printf, 4, 5)))
int seterr(char *err, size_t errlen, int errnum, const char *fmt, ...);

#endif
