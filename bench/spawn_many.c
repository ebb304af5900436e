/* spawn_many.c - vexec-bench-spawn: the posix_spawn baseline of the launch
 * benchmark (scripts/run-launch-bench).
 *
 *     vexec-bench-spawn N PROG [ARGS...]
 *
 * starts PROG N times from this one process with posix_spawn, all of them
 * before any is waited for (the way a launcher starts its ranks), then
 * waits for all N.  It prints "spawned N in S.SSSSSS s", the wall time from
 * just before the first spawn to the last child's exit, and exits 0 only if
 * every child was started and exited 0; otherwise one line on stderr says
 * how many failed, and the exit status is 1.  PROG is looked up in PATH
 * (posix_spawnp); the children inherit stdin, stdout and stderr.  This is
 * the lower bound of a launch on one host: no image moves, every rank
 * execs the program from the page cache.
 */
#include "common/clock.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Parse N (1 .. INT_MAX).  Returns it, or -1. */
static long parse_count(const char *s)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || end == s || *end || n < 1 || n > INT_MAX)
        return -1;
    return n;
}

/* Start argv[0] n times; pids[i] is 0 for a child that could not be
 * started.  Returns the number of failed starts; the first failure's
 * cause is reported once on stderr. */
static long spawn_all(long n, char **argv, pid_t *pids)
{
    long failed = 0;

    for (long i = 0; i < n; i++) {
        int rc = posix_spawnp(&pids[i], argv[0], NULL, NULL, argv, environ);

        if (rc) {
            if (!failed)
                fprintf(stderr, "vexec-bench-spawn: posix_spawn %s: %s\n",
                        argv[0], strerror(rc));
            pids[i] = 0;
            failed++;
        }
    }
    return failed;
}

/* Wait for every started child (pids[i] != 0), in whatever order they
 * exit.  Returns the number that did not exit with status 0. */
static long wait_all(long n, const pid_t *pids)
{
    long started = 0, failed = 0;
    int status;

    for (long i = 0; i < n; i++)
        started += pids[i] != 0;
    while (started > 0) {
        if (waitpid(-1, &status, 0) < 0) {
            if (errno == EINTR)
                continue;
            perror("vexec-bench-spawn: waitpid");
            return failed + started;
        }
        started--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    return failed;
}

int main(int argc, char **argv)
{
    long n = argc >= 3 ? parse_count(argv[1]) : -1;
    long failed;
    pid_t *pids;
    double t0;

    if (n < 0) {
        fprintf(stderr, "usage: vexec-bench-spawn N PROG [ARGS...]  "
                        "(N >= 1)\n");
        return 2;
    }
    pids = calloc(n, sizeof *pids);
    if (!pids) {
        perror("vexec-bench-spawn");
        return 1;
    }
    t0 = mono_now();
    failed = spawn_all(n, argv + 2, pids);
    failed += wait_all(n, pids);
    printf("spawned %ld in %.6f s\n", n, mono_now() - t0);
    free(pids);
    if (failed) {
        fprintf(stderr, "vexec-bench-spawn: %ld of %ld children failed\n",
                failed, n);
        return 1;
    }
    return 0;
}
