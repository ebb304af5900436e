/* switch_ring.c - vexec-bench-ring: what one wake-up costs among many
 * processes, the price a daemon pays each time a message wakes it.
 *
 *     vexec-bench-ring N PAGES [MS]
 *
 * starts N processes joined in a ring of pipes and passes one byte round
 * it for MS milliseconds (default 1000) after a 200 ms warm-up: each
 * process, woken by the byte, writes one byte into each of PAGES pages of
 * its own (touched once before, so no page is new), then passes the byte
 * on.  Only one process runs at a time, so the time per hop is the whole
 * cost of a wake-up: the switch to the process, its system calls, and
 * its first touch of each page since it last ran.  It prints
 * "N processes, PAGES pages: US us per hop", and exits 0, or 1 with one
 * line on stderr if a process could not be started.  On an emulated
 * cluster the N of interest is the number of daemons and ranks that take
 * turns during a launch: two per node.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

/* Parse an integer in lo .. hi.  Returns it, or -1. */
static long parse(const char *s, long lo, long hi)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || end == s || *end || n < lo || n > hi)
        return -1;
    return n;
}

/* One process of the ring: forever take the byte on in, touch the pages,
 * count the hop, pass the byte to out. */
static void member(int in, int out, long pages, volatile long *hops)
{
    char *mem = mmap(NULL, (size_t)(pages + 1) * PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    char c;

    if (mem == MAP_FAILED)
        _exit(1);
    while (read(in, &c, 1) == 1) {
        for (long i = 0; i < pages; i++)
            mem[i * PAGE]++;
        __atomic_add_fetch(hops, 1, __ATOMIC_RELAXED);
        if (write(out, &c, 1) != 1)
            break;
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    long n, pages, ms = 1000, h0, h1;
    int (*fd)[2];
    pid_t *pid;
    volatile long *hops;
    struct rlimit lim;
    int started = 0, ret = 0;

    if (argc < 3 || argc > 4 || (n = parse(argv[1], 2, 100000)) < 0
        || (pages = parse(argv[2], 0, 1 << 20)) < 0
        || (argc == 4 && (ms = parse(argv[3], 1, 3600000)) < 0)) {
        fprintf(stderr, "usage: vexec-bench-ring N PAGES [MS]  "
                "(N >= 2, PAGES >= 0, MS >= 1)\n");
        return 2;
    }
    /* Two fds a process, all held here: take the hard limit. */
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    fd = calloc((size_t)n, sizeof(*fd));
    pid = calloc((size_t)n, sizeof(*pid));
    hops = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
    if (!fd || !pid || hops == MAP_FAILED) {
        fprintf(stderr, "vexec-bench-ring: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++)
        if (pipe(fd[i]) < 0) {
            fprintf(stderr, "vexec-bench-ring: pipe %ld of %ld: %s\n", i + 1,
                    n, strerror(errno));
            return 1;
        }
    for (long i = 0; i < n; i++, started++) {
        if ((pid[i] = fork()) < 0) {
            fprintf(stderr, "vexec-bench-ring: process %ld of %ld: %s\n",
                    i + 1, n, strerror(errno));
            ret = 1;
            goto out;
        }
        if (pid[i] == 0)
            member(fd[i][0], fd[(i + 1) % n][1], pages, hops);
    }
    /* Let every member map and touch its pages before the byte starts. */
    usleep(300000);
    if (write(fd[0][1], "x", 1) != 1) {
        fprintf(stderr, "vexec-bench-ring: starting the ring: %s\n",
                strerror(errno));
        ret = 1;
        goto out;
    }
    usleep(200000);
    h0 = *hops;
    usleep((useconds_t)(ms * 1000));
    h1 = *hops;
    printf("%ld processes, %ld pages: %.2f us per hop\n", n, pages,
           h1 > h0 ? ms * 1000.0 / (double)(h1 - h0) : 0.0);
out:
    for (int i = 0; i < started; i++)
        kill(pid[i], SIGKILL);
    while (wait(NULL) > 0)
        ;
    return ret;
}
