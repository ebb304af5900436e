/* sweep.c - end the processes of a dead daemon's session and cgroup
 * (sweep.h). */
#include "launcher/sweep.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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

/* Is x in the n sorted ids? */
static bool among(pid_t x, const pid_t *ids, size_t n)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (ids[mid] == x)
            return true;
        if (ids[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* One pass over /proc: SIGKILL each live process of one of the n sorted
 * sessions sids, but not a session's leader itself.  Returns how many, or
 * -1. */
static int sweep_once(const pid_t *sids, size_t n)
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

        if (*end || pid <= 1 || among((pid_t)pid, sids, n)
            || ids_of(e->d_name, &g, &s) < 0 || !among(s, sids, n))
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

static int sweep(const pid_t *sids, size_t n)
{
    int k, total = 0;

    for (int i = 0; i < SWEEP_PASSES; i++) {
        if ((k = sweep_once(sids, n)) < 0)
            return total ? total : -1;
        if (k == 0)
            break;
        total += k;
    }
    return total;
}

int sweep_session(pid_t sid)
{
    if (sid <= 1 || sid == getsid(0))
        return 0;
    return sweep(&sid, 1);
}

/* cgroup v2: the directory of this process's cgroup, from the cgroup2
 * mount in /proc/self/mountinfo and the "0::PATH" line of
 * /proc/self/cgroup.  Returns 0, or -1 with err saying why. */
static int cgroup_here(char *dir, size_t len, char *err, size_t errlen)
{
    char line[4096], mnt[PATH_MAX] = "", path[PATH_MAX] = "";
    FILE *f;

    if (!(f = fopen("/proc/self/mountinfo", "re")))
        return seterr(err, errlen, errno, "/proc/self/mountinfo: %s",
                      strerror(errno));
    while (!mnt[0] && fgets(line, sizeof(line), f)) {
        char root[PATH_MAX], at[PATH_MAX], *dash = strstr(line, " - ");

        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE ...; a
         * namespaced mount (root not "/") or an escaped name is passed
         * over. */
        if (dash && !strncmp(dash, " - cgroup2 ", 11)
            && sscanf(line, "%*s %*s %*s %4095s %4095s", root, at) == 2
            && !strcmp(root, "/") && !strchr(at, '\\'))
            snprintf(mnt, sizeof(mnt), "%s", at);
    }
    fclose(f);
    if (!mnt[0])
        return seterr(err, errlen, ENOENT, "no cgroup2 file system mounted");
    if (!(f = fopen("/proc/self/cgroup", "re")))
        return seterr(err, errlen, errno, "/proc/self/cgroup: %s",
                      strerror(errno));
    while (!path[0] && fgets(line, sizeof(line), f))
        if (!strncmp(line, "0::/", 4)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(path, sizeof(path), "%s", line + 3);
        }
    fclose(f);
    if (!path[0])
        return seterr(err, errlen, ENOENT, "not in a cgroup2 hierarchy");
    if ((size_t)snprintf(dir, len, "%s%s", mnt,
                         strcmp(path, "/") ? path : "") >= len)
        return seterr(err, errlen, ENAMETOOLONG, "cgroup path too long");
    return 0;
}

/* The cgroup this process made and entered (cgroup_enter), or "". */
static char own_cgroup[PATH_MAX];

/* Write s into DIR/FILE.  Returns 0, or -1 with errno set. */
static int cgroup_write(const char *dir, const char *file, const char *s)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd, e;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file)
        >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return -1;
    n = write(fd, s, strlen(s));
    e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Make dir, the cgroup "vexecd-PID" below this process's own (an empty
 * one of that name, left by a keeper killed with its daemon, is made
 * again).  Returns 0, or -1 with err saying why. */
static int cgroup_make(char *dir, size_t len, char *err, size_t errlen)
{
    char here[PATH_MAX];

    if (cgroup_here(here, sizeof(here), err, errlen) < 0)
        return -1;
    if ((size_t)snprintf(dir, len, "%s/vexecd-%d", here, (int)getpid())
        >= len)
        return seterr(err, errlen, ENAMETOOLONG, "cgroup path too long");
    if (mkdir(dir, 0755) == 0)
        return 0;
    if (errno == EEXIST && rmdir(dir) < 0)
        return seterr(err, errlen, errno, "%s is left from an earlier "
                      "daemon and cannot be removed: %s", dir,
                      strerror(errno));
    if (errno != EEXIST || mkdir(dir, 0755) < 0)
        return seterr(err, errlen, errno, "mkdir %s: %s", dir,
                      strerror(errno));
    return 0;
}

/* One pass at the processes of cgroup dir of daemon owner: count those
 * in cgroup.procs, then end them all with one write to cgroup.kill (Linux
 * 5.14; it also reaches a process forked meanwhile) or, without it, a
 * SIGKILL to each.  Returns how many were listed; -1 if the cgroup is
 * gone; -2, killing nothing, if owner is listed: a dead daemon is not (nor
 * is any zombie), so owner's pid has come round to a live daemon, which
 * made the cgroup again for itself. */
static int cgroup_kill(const char *dir, pid_t owner, bool *atomic)
{
    char path[PATH_MAX];
    long pid;
    int n = 0;
    FILE *f;

    if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", dir)
        >= sizeof(path) || !(f = fopen(path, "re")))
        return -1;
    while (fscanf(f, "%ld", &pid) == 1) {
        if (pid == owner) {
            fclose(f);
            return -2;
        }
        n++;
    }
    fclose(f);
    if (!n)
        return 0;
    if (*atomic && cgroup_write(dir, "cgroup.kill", "1") == 0)
        return n;
    *atomic = false;                    /* no cgroup.kill: one by one */
    if (!(f = fopen(path, "re")))
        return -1;
    while (fscanf(f, "%ld", &pid) == 1)
        if (pid != owner)
            kill((pid_t)pid, SIGKILL);
    fclose(f);
    return n;
}

/* End every process of cgroup dir of dead daemon owner and remove it,
 * passing again until rmdir takes it (it refuses a populated cgroup;
 * zombies do not count).  Returns how many processes the first pass
 * that found any found. */
#define CGROUP_END_PASSES 500           /* 10 ms apart: 5 s */
#define OWNER_PASSES 20                 /* 0.2 s */

static int cgroup_end(const char *dir, pid_t owner)
{
    bool atomic = true;
    int found = 0, n;

    for (int i = 0; i < CGROUP_END_PASSES; i++) {
        /* An owner SIGKILLed a moment ago (vexec-cluster down) may not
         * have left yet: give it OWNER_PASSES. */
        n = cgroup_kill(dir, owner, &atomic);
        if (n == -2 && i < OWNER_PASSES) {
            usleep(10000);
            continue;
        }
        if (n < 0)
            return found;
        if (!found)
            found = n;
        if (rmdir(dir) == 0 || errno != EBUSY)
            return found;
        usleep(10000);
    }
    fprintf(stderr, "cgroup %s still has processes after 5 s; left in "
            "place\n", dir);
    return found;
}

int sweep_leftovers(void)
{
    char path[PATH_MAX + 16];
    pid_t self = getpid();
    int total = 0;

    if (!own_cgroup[0])
        return 0;
    snprintf(path, sizeof(path), "%s/cgroup.procs", own_cgroup);
    for (int i = 0; i < SWEEP_PASSES; i++) {
        FILE *f = fopen(path, "re");
        long p;
        int n = 0;

        if (!f)
            return total;
        while (fscanf(f, "%ld", &p) == 1)
            if (p != self && kill((pid_t)p, SIGKILL) == 0)
                n++;
        fclose(f);
        if (!n)
            break;
        total += n;
    }
    return total;
}

int sweep_adopt_orphans(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/* Children taken per pass: a pass that finds more leaves them to the
 * next.  A chain of processes takes a pass per level (each comes to us
 * when the one above it ends), a fork loop a few passes at most once its
 * forker is gone. */
#define CHILDREN_MAX 512
#define DESCENDANT_PASSES 1000

/* Up to max of our children but keep, from /proc/self/task/PID/children
 * (Linux 4.2 with CONFIG_PROC_CHILDREN): the children of our main thread,
 * which forks our ranks and to which an orphan is given while it lives.
 * Returns how many, or -1. */
static int list_children(pid_t keep, pid_t *kids, int max)
{
    char path[64];
    long pid;
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/self/task/%d/children",
             (int)getpid());
    if (!(f = fopen(path, "re")))
        return -1;
    while (n < max && fscanf(f, "%ld", &pid) == 1)
        if ((pid_t)pid != keep)
            kids[n++] = (pid_t)pid;
    fclose(f);
    return n;
}

int sweep_descendants(pid_t keep)
{
    pid_t kids[CHILDREN_MAX];
    int n, alive = 0;

    for (int pass = 0; pass < DESCENDANT_PASSES; pass++) {
        if ((n = list_children(keep, kids, CHILDREN_MAX)) <= 0)
            return n < 0 && !pass ? -1 : alive;
        for (int i = 0; i < n; i++) {
            char pid[24];
            pid_t g, s;

            snprintf(pid, sizeof(pid), "%d", (int)kids[i]);
            if (ids_of(pid, &g, &s) == 0)       /* not a zombie */
                alive++;
            kill(kids[i], SIGKILL);
        }
        /* Each ends (SIGKILL), and what it leaves comes to us. */
        for (int i = 0; i < n; i++)
            while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
                ;
    }
    return alive;
}

static int cgroup_enter(const char *dir, char *err, size_t errlen)
{
    char pid[24];

    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (cgroup_write(dir, "cgroup.procs", pid) == 0) {
        snprintf(own_cgroup, sizeof(own_cgroup), "%s", dir);
        return 0;
    }
    seterr(err, errlen, errno, "%s/cgroup.procs: %s", dir, strerror(errno));
    rmdir(dir);
    return -1;
}

int sweep_enter(char *err, size_t errlen)
{
    char dir[PATH_MAX];

    if (cgroup_make(dir, sizeof(dir), err, errlen) < 0)
        return -1;
    return cgroup_enter(dir, err, errlen);
}

/* The cgroup of daemon pid, "vexecd-PID" below here, our own cgroup (we
 * are its keeper, vexec or vexec-cluster), or beside it (we are a daemon
 * of the same cluster).  Returns 0 if it exists, else -1. */
static int cgroup_of_daemon(const char *here, pid_t pid, char *dir,
                            size_t len)
{
    const char *slash = strrchr(here, '/');
    struct stat st;

    if ((size_t)snprintf(dir, len, "%s/vexecd-%d", here, (int)pid) < len
        && stat(dir, &st) == 0)
        return 0;
    if (!slash || strncmp(slash, "/vexecd-", 8))
        return -1;
    if ((size_t)snprintf(dir, len, "%.*s/vexecd-%d", (int)(slash - here),
                         here, (int)pid) < len
        && stat(dir, &st) == 0)
        return 0;
    return -1;
}

static int by_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

    return (x > y) - (x < y);
}

int sweep_daemons(const pid_t *pids, size_t n)
{
    pid_t *sids = malloc((n ? n : 1) * sizeof(*sids)), our_sid = getsid(0);
    char here[PATH_MAX], dir[PATH_MAX];
    bool cgroups = cgroup_here(here, sizeof(here), NULL, 0) == 0;
    size_t k = 0;
    int found = 0, swept;

    if (!sids)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (pids[i] <= 1 || pids[i] == getpid() || pids[i] == our_sid)
            continue;
        if (cgroups && cgroup_of_daemon(here, pids[i], dir, sizeof(dir)) == 0)
            found += cgroup_end(dir, pids[i]);
        sids[k++] = pids[i];
    }
    qsort(sids, k, sizeof(*sids), by_pid);
    swept = k ? sweep(sids, k) : 0;
    free(sids);
    return swept < 0 ? (found ? found : -1) : found + swept;
}

int sweep_daemon(pid_t pid)
{
    return sweep_daemons(&pid, 1);
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
    if ((n = sweep_daemon(daemon)) > 0)
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
    char cgroup[PATH_MAX], cgerr[256] = "", nosid[192] = "";
    pid_t self = getpid(), child;
    int status;

    /* A shell's job leads its process group and cannot start a session;
     * then the cgroup alone holds what the ranks start. */
    if (getsid(0) != self && setsid() < 0)
        snprintf(nosid, sizeof(nosid), "not the leader of its session, and "
                 "cannot become one (setsid: %s; a shell's job?)",
                 strerror(errno));
    /* The cgroup is entered after the keeper has started, so that the
     * keeper stays outside it (sweep_daemon finds it below its own). */
    if (cgroup_make(cgroup, sizeof(cgroup), cgerr, sizeof(cgerr)) < 0) {
        cgroup[0] = '\0';
        if (nosid[0])
            return seterr(err, errlen, EPERM, "%s, and no cgroup: %s", nosid,
                          cgerr);
    }
    if ((child = fork()) < 0) {
        seterr(err, errlen, errno, "fork: %s", strerror(errno));
        goto fail;
    }
    if (child == 0)
        keeper_start(self);
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR) {
            seterr(err, errlen, errno, "waitpid: %s", strerror(errno));
            goto fail;
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        seterr(err, errlen, ENOSYS, "the keeper did not start "
               "(pidfd_open needs Linux 5.3)");
        goto fail;
    }
    if (cgroup[0] && cgroup_enter(cgroup, cgerr, sizeof(cgerr)) == 0)
        return 0;
    if (nosid[0])           /* the keeper has nothing to sweep: it just goes */
        return seterr(err, errlen, EPERM, "%s, and no cgroup: %s", nosid,
                      cgerr);
    seterr(err, errlen, 0, "%s", cgerr);
    return 1;

fail:
    if (cgroup[0])
        rmdir(cgroup);
    return -1;
}
