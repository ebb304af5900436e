/* sweep.c - end the processes of a dead daemon's session (sweep.h). */
#include "launcher/sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
