/* rlib.h - the few libc-like helpers the restorer needs. */
#ifndef RESTORER_RLIB_H
#define RESTORER_RLIB_H

#include <stddef.h>
#include <stdint.h>

/* The compiler may emit calls to these for struct copies and loops. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

size_t rlib_strlen(const char *s);
int rlib_streq(const char *a, const char *b);
/* Parse a non-negative decimal; -1 if s is not one or exceeds max. */
long rlib_parse_ulong(const char *s, long max);
/* Parse hex digits at *s, advancing it. */
uint64_t rlib_parse_hex(const char **s);
/* Write v in decimal into buf (at least 21 bytes); returns buf. */
char *rlib_ulong_str(unsigned long v, char *buf);
/* Text for a -errno value, like strerror. */
const char *rlib_strerror(long neg_errno);

#endif
