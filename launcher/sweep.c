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

/* The session id in /proc/PID/stat, or -1 (also for a zombie, which
 * nothing can kill any more). */
static pid_t session_of(const char *pid)
{
    char path[64], buf[512], *p, state;
    long sid;
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
        || sscanf(p + 1, " %c %*d %*d %ld", &state, &sid) != 2
        || state == 'Z' || state == 'X')
        return -1;
    return (pid_t)sid;
}

/* One pass over /proc: SIGKILL each live process of session sid.  Returns
 * how many, or -1. */
static int sweep_once(pid_t sid)
{
    struct dirent *e;
    DIR *dir;
    int killed = 0;

    if (!(dir = opendir("/proc")))
        return -1;
    while ((e = readdir(dir))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);

        if (*end || pid <= 1 || pid == sid || session_of(e->d_name) != sid)
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

int sweep_session(pid_t sid)
{
    int n, total = 0;

    if (sid <= 1 || sid == getsid(0))
        return 0;
    for (int i = 0; i < SWEEP_PASSES; i++) {
        if ((n = sweep_once(sid)) < 0)
            return total ? total : -1;
        if (n == 0)
            break;
        total += n;
    }
    return total;
}
