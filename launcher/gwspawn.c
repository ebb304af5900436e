/* gwspawn.c - run vexec-gateway for one launch (gwspawn.h). */
#include "common/clock.h"
#include "common/err.h"
#include "launcher/gwspawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the gateway may take to load libfabric and open its endpoint:
 * ~0.3 s on an idle host, seconds on a loaded one. */
#define START_LIMIT_S 60.0

/* The gateway's path: GWSPAWN_PROG beside /proc/self/exe. */
static int gateway_path(char *path, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", path, size - 1);
    char *slash;

    if (n < 0)
        return -1;
    path[n] = '\0';
    if (!(slash = strrchr(path, '/'))
        || (size_t)(slash - path) + sizeof(GWSPAWN_PROG) + 1 > size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(slash + 1, GWSPAWN_PROG);
    return 0;
}

/* In the child: its own session, the socket as fd 3, the ready pipe as
 * fd 4, stderr to the log; then exec. */
static void exec_gateway(const char *path, const char *address, int query,
                         int sock, int ready)
{
    const char *log = getenv("VEXEC_GATEWAY_LOG");
    int null = open("/dev/null", O_RDWR);
    int err = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    char *argv[] = { (char *)GWSPAWN_PROG, "--address", (char *)address,
                     query ? "--query-fd" : "--client-fd", "3",
                     "--ready-fd", "4", NULL };

    setsid();
    if (dup2(sock, 3) < 0 || dup2(ready, 4) < 0)
        _exit(126);
    dup2(null, 0);
    dup2(null, 1);
    dup2(err >= 0 ? err : null, 2);
    close_range(5, ~0U, 0);
    execv(path, argv);
    _exit(127);
}

/* Read the gateway's one line: its endpoint name, or "! why".  Returns
 * 0, or -1 with err saying why it did not start. */
static int read_ready(int fd, char *origin, size_t size, char *err,
                      size_t errlen)
{
    char line[600];
    size_t len = 0;
    double end = mono_now() + START_LIMIT_S;

    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, (int)((end - mono_now()) * 1000) + 1) == 0)
            return seterr(err, errlen, ETIMEDOUT, "the gateway did not "
                          "start within %.0f s", START_LIMIT_S);
        if ((n = read(fd, line + len, sizeof(line) - 1 - len)) <= 0)
            break;
        len += (size_t)n;
    }
    line[len] = '\0';
    line[strcspn(line, "\n")] = '\0';
    if (len == 0)
        return seterr(err, errlen, EIO, "the gateway (%s) did not start",
                      GWSPAWN_PROG);
    if (line[0] == '!')
        return seterr(err, errlen, EIO, "%s", line + 2);
    snprintf(origin, size, "%s", line);
    return 0;
}

int gwspawn_start(const char *ip, int query, int *sock, pid_t *pid,
                  char *origin, size_t size, char *err, size_t errlen)
{
    char path[PATH_MAX], address[64];
    int sp[2], ready[2];

    if (gateway_path(path, sizeof(path)) < 0)
        return seterr(err, errlen, errno, "finding %s: %s", GWSPAWN_PROG,
                      strerror(errno));
    snprintf(address, sizeof(address), "%s:0", ip);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return seterr(err, errlen, errno, "socketpair: %s", strerror(errno));
    if (pipe2(ready, O_CLOEXEC) < 0 || (*pid = fork()) < 0) {
        seterr(err, errlen, errno, "starting the gateway: %s",
               strerror(errno));
        close(sp[0]);
        close(sp[1]);
        return -1;
    }
    if (*pid == 0)
        exec_gateway(path, address, query, sp[1], ready[1]);
    close(sp[1]);
    close(ready[1]);
    *sock = sp[0];
    if (read_ready(ready[0], origin, size, err, errlen) == 0) {
        close(ready[0]);
        return 0;
    }
    close(ready[0]);
    close(sp[0]);
    gwspawn_reap(*pid, 0);
    *pid = 0;
    return -1;
}

void gwspawn_reap(pid_t pid, double limit_s)
{
    double end = mono_now() + limit_s;
    struct timespec ts = { 0, 10000000 };

    if (pid <= 0)
        return;
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (mono_now() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return;
        }
        nanosleep(&ts, NULL);
    }
}
