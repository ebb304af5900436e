/* cmdline.c - argv and the environment survive, and the kernel agrees.
 *
 * Prints argv and environ, one per line, so a test can compare them with
 * what was dumped.  /proc/self/cmdline and /proc/self/environ are read
 * from the arg_start..arg_end and env_start..env_end fields of the mm,
 * which the restorer must set: each must equal the strings the program
 * itself sees.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Read a whole /proc file; returns its length or -1. */
static long read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    size_t len = 0;
    ssize_t n;

    if (fd < 0)
        return -1;
    while (len < size && (n = read(fd, buf + len, size - len)) > 0)
        len += n;
    close(fd);
    return len < size ? (long)len : -1;
}

/* Does the NUL-separated list in buf equal the strings of vec? */
static int same_strings(const char *buf, long len, char *const *vec)
{
    long pos = 0;

    for (; *vec; vec++) {
        size_t n = strlen(*vec) + 1;
        if (pos + (long)n > len || memcmp(buf + pos, *vec, n) != 0)
            return 0;
        pos += n;
    }
    return pos == len;
}

static int check_proc(const char *path, char *const *vec)
{
    static char buf[1 << 20];
    long len = read_file(path, buf, sizeof buf);

    if (len < 0 || !same_strings(buf, len, vec)) {
        fprintf(stderr, "cmdline: %s does not match\n", path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (check_proc("/proc/self/cmdline", argv) ||
        check_proc("/proc/self/environ", environ))
        return 1;
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; *e; e++)
        printf("env %s\n", *e);
    puts("cmdline ok");
    return 0;
}
