/* rlib.c - libc-like helpers for the restorer (see rlib.h). */
#include "rlib.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    /* rep movsb is fast on every x86_64 since Ivy Bridge (ERMSB), and it
     * keeps the compiler from turning this loop into a call to itself. */
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;

    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}

size_t rlib_strlen(const char *s)
{
    size_t n = 0;

    while (s[n])
        n++;
    return n;
}

int rlib_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

long rlib_parse_ulong(const char *s, long max)
{
    long v = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

uint64_t rlib_parse_hex(const char **sp)
{
    const char *s = *sp;
    uint64_t v = 0;

    for (;; s++) {
        if (*s >= '0' && *s <= '9')
            v = v * 16 + (*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            v = v * 16 + (*s - 'a' + 10);
        else
            break;
    }
    *sp = s;
    return v;
}

char *rlib_ulong_str(unsigned long v, char *buf)
{
    char tmp[21];
    int n = 0, i = 0;

    do
        tmp[n++] = '0' + v % 10;
    while (v /= 10);
    while (n)
        buf[i++] = tmp[--n];
    buf[i] = '\0';
    return buf;
}

const char *rlib_strerror(long e)
{
    switch (-e) {
    case 1: return "Operation not permitted";
    case 2: return "No such file or directory";
    case 9: return "Bad file descriptor";
    case 12: return "Cannot allocate memory";
    case 13: return "Permission denied";
    case 14: return "Bad address";
    case 16: return "Device or resource busy";
    case 17: return "File exists";
    case 19: return "No such device";
    case 20: return "Not a directory";
    case 21: return "Is a directory";
    case 22: return "Invalid argument";
    case 24: return "Too many open files";
    case 26: return "Text file busy";
    case 40: return "Too many levels of symbolic links";
    default: return "system call failed";
    }
}
