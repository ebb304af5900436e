/* catlike.c - stdin, stdout, stderr and the exit status.
 *
 * Copies stdin to stdout upper-cased, reports the byte count on stderr and
 * exits with the status given as its first argument (default 0).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char buf[65536];
    unsigned long long total = 0;
    ssize_t n;

    while ((n = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            buf[i] = toupper((unsigned char)buf[i]);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, n - off);
            if (w <= 0) {
                perror("catlike: write");
                return 100;
            }
            off += w;
        }
        total += n;
    }
    if (n < 0) {
        perror("catlike: read");
        return 101;
    }
    fprintf(stderr, "catlike: %llu bytes\n", total);
    return argc > 1 ? atoi(argv[1]) : 0;
}
