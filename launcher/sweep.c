/* sweep.c - end the processes of a dead daemon's session (sweep.h). */
#include "launcher/sweep.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The process group and session ids in /proc/PID/stat.  Returns 0, or -1
 * (also for a zombie, which nothing can kill any more). */
static int ids_of(const char *pid, pid_t *pgrp, pid_t *sid)
{
    char path[64], buf[512], *p, state;
    long g, s;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* After the command's closing parenthesis: state, ppid, pgrp,
     * session. */
    if (!(p = strrchr(buf, ')'))
        || sscanf(p + 1, " %c %*d %ld %ld", &state, &g, &s) != 3
        || state == 'Z' || state == 'X')
        return -1;
    *pgrp = (pid_t)g;
    *sid = (pid_t)s;
    return 0;
}

/* One pass over /proc: SIGKILL each live process of session sid (and of
 * process group pgid, unless it is 0), but not sid itself.  Returns how
 * many, or -1. */
static int sweep_once(pid_t pgid, pid_t sid)
{
    struct dirent *e;
    DIR *dir;
    int killed = 0;

    if (!(dir = opendir("/proc")))
        return -1;
    while ((e = readdir(dir))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        pid_t g, s;

        if (*end || pid <= 1 || pid == sid || ids_of(e->d_name, &g, &s) < 0
            || s != sid || (pgid && g != pgid))
            continue;
        if (kill((pid_t)pid, SIGKILL) == 0)
            killed++;
    }
    closedir(dir);
    return killed;
}

/* A process forked while a pass reads /proc may be missed by it, so pass
 * again until one finds nothing left (a few passes: each kills every
 * process it finds, forkers first or not). */
#define SWEEP_PASSES 8

static int sweep(pid_t pgid, pid_t sid)
{
    int n, total = 0;

    for (int i = 0; i < SWEEP_PASSES; i++) {
        if ((n = sweep_once(pgid, sid)) < 0)
            return total ? total : -1;
        if (n == 0)
            break;
        total += n;
    }
    return total;
}

int sweep_session(pid_t sid)
{
    if (sid <= 1 || sid == getsid(0))
        return 0;
    return sweep(0, sid);
}

int sweep_group(pid_t pgid)
{
    pid_t sid = getsid(0);

    /* Only in a session of our own (vexec-cluster's daemons): in a shell's
     * session another job's group could have come to have that id. */
    if (pgid <= 1 || sid != getpid())
        return 0;
    return sweep(pgid, sid);
}

/* The keeper's life after the double fork: in a session of its own (no
 * terminal's or process group's signal meant for the daemon reaches it),
 * deaf to the signals that end daemons (`pkill vexecd` matches its name
 * too, and it must outlive the daemon to sweep), wait for the daemon's
 * pidfd to say it ended, sweep, go. */
static void __attribute__((noreturn)) keeper_wait(int pidfd, pid_t daemon)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    int n;

    setsid();
    prctl(PR_SET_NAME, "vexecd-keeper");    /* for ps and top */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    if ((n = sweep_session(daemon)) > 0)
        fprintf(stderr, "vexecd keeper: ended %d process%s left by pid %d\n",
                n, n == 1 ? "" : "es", (int)daemon);
    _exit(0);
}

/* The first child: drop every descriptor but stderr, take a pidfd of the
 * daemon while it is surely the daemon (still our parent after the open),
 * fork the keeper and exit, so that the keeper is nobody's child here. */
static void __attribute__((noreturn)) keeper_start(pid_t daemon)
{
    int null = open("/dev/null", O_RDWR), pidfd;

    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
        _exit(1);
    close_range(3, ~0U, 0);
    pidfd = (int)syscall(SYS_pidfd_open, daemon, 0);
    if (pidfd < 0 || getppid() != daemon)
        _exit(1);
    switch (fork()) {
    case -1:
        _exit(1);
    case 0:
        keeper_wait(pidfd, daemon);
    default:
        _exit(0);
    }
}

int sweep_keep(char *err, size_t errlen)
{
    pid_t self = getpid(), child;
    int status;

    if (getsid(0) != self && setsid() < 0)
        return seterr(err, errlen, errno, "not the leader of its session, "
                      "and cannot become one (setsid: %s; a shell's job?)",
                      strerror(errno));
    if ((child = fork()) < 0)
        return seterr(err, errlen, errno, "fork: %s", strerror(errno));
    if (child == 0)
        keeper_start(self);
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return seterr(err, errlen, errno, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        return seterr(err, errlen, ENOSYS, "the keeper did not start "
                      "(pidfd_open needs Linux 5.3)");
    return 0;
}
