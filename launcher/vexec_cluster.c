/* vexec_cluster.c - an emulated cluster of node daemons on this host.
 *
 *   vexec-cluster [--dir DIR] [--key FILE] up N
 *                                      start N daemons, nodes n0..n{N-1}
 *   vexec-cluster [--dir DIR] status   which nodes are up
 *   vexec-cluster [--dir DIR] down     stop them, leave nothing behind
 *
 * Each node is its own process with its own endpoint ("CLUSTER.nI", also
 * its /dev/shm file), doorbell and memory.  One more process, the
 * gateway (endpoint "CLUSTER.gw", gateway.h), is the root of every launch
 * tree and the only fabric user vexec talks to; its pid and endpoint are
 * in DIR/gateway (a restarted one is "CLUSTER.gw1", ...: `up N` over N
 * running daemons whose gateway died starts a new one).  `up` loads
 * libfabric once and forks the daemons from that state: a daemon exec'd
 * afresh would spend
 * ~0.1 s of CPU in Debian libfabric's provider start-up (DESIGN.md), a
 * minute for 1023 of them on two cores.  The record (cluster.h) lives in
 * the cluster directory together with the daemons' log and the cluster
 * key (auth.h): DIR/key, 32 fresh random bytes, mode 0600, or with --key
 * a symbolic link to FILE.  Daemons accept only requests signed with it;
 * vexec reads it to sign; the gateway never sees it.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/fabric.h"
#include "launcher/auth.h"
#include "launcher/cluster.h"
#include "launcher/daemon.h"
#include "launcher/gateway.h"
#include "launcher/hostlist.h"
#include "launcher/sweep.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Largest emulated cluster: 65536 would be allowed by the tree, but each
 * node costs ~6 MB of RAM and a process. */
#define MAX_NODES 16384

/* How long `down` waits for daemons to exit after SIGTERM before KILL. */
#define DOWN_GRACE_S 5.0

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "vexec-cluster: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 1;
}

/* Hold dir/lock while changing the cluster. */
static int lock_dir(const char *dir)
{
    char p[4200];
    int fd;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    snprintf(p, sizeof(p), "%s/lock", dir);
    if ((fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return -1;
    if (flock(fd, LOCK_EX) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Is pid one of our daemons (not a recycled pid)? */
static int is_daemon(pid_t pid)
{
    char p[64], comm[32] = "";
    FILE *f;

    snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
    if (!(f = fopen(p, "r")))
        return 0;
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    return !strcmp(comm, "vexecd\n") || !strcmp(comm, "vexec-gateway\n");
}

/* Remove the files in /dev/shm named prefix followed by one of the
 * characters in next, or (with whole) prefix itself: the endpoint files a
 * daemon killed with SIGKILL could not remove. */
static void remove_shm(const char *prefix, int whole, const char *next)
{
    size_t len = strlen(prefix);
    struct dirent *e;
    DIR *dir = opendir("/dev/shm");
    char p[512];

    if (!dir)
        return;
    while ((e = readdir(dir)))
        if (!strncmp(e->d_name, prefix, len)
            && (e->d_name[len] ? strchr(next, e->d_name[len]) != NULL
                               : whole)) {
            snprintf(p, sizeof(p), "/dev/shm/%s", e->d_name);
            unlink(p);
        }
    closedir(dir);
}

/* The files of every endpoint of cluster name: NAME.* */
static void remove_shm_files(const char *name)
{
    remove_shm(name, 0, ".");
}

/* Stop every daemon of c: TERM, a grace period, then KILL. */
static void stop_daemons(const struct cluster *c)
{
    double end = mono_now() + DOWN_GRACE_S;
    int left = 0;

    if (c->gateway > 0 && is_daemon(c->gateway))
        kill(c->gateway, SIGKILL);  /* nothing to clean but its endpoint */
    for (int i = 0; i < c->n; i++)
        if (is_daemon(c->pids[i]))
            kill(c->pids[i], SIGTERM);
    do {
        struct timespec ts = { 0, 10000000 };

        left = 0;
        for (int i = 0; i < c->n; i++)
            left += is_daemon(c->pids[i]);
        if (left)
            nanosleep(&ts, NULL);
    } while (left && mono_now() < end);
    for (int i = 0; i < c->n && left; i++)
        if (is_daemon(c->pids[i]))
            kill(c->pids[i], SIGKILL);
    /* What their ranks left, also out of their sessions, and their
     * cgroups. */
    sweep_daemons(c->pids, (size_t)c->n);
    remove_shm_files(c->name);
}

static int count_up(const struct cluster *c)
{
    int up = 0;

    for (int i = 0; i < c->n; i++)
        up += cluster_node_up(c, i);
    return up;
}

/* In a forked daemon: its own session (a terminal's ^C is not for it),
 * its name for ps and `down`, no inherited descriptors but its log (as
 * stdout and stderr) and the ready pipe (as fd 3). */
static void detach(const char *comm, int ready, int log)
{
    int null = open("/dev/null", O_RDONLY);

    setsid();
    prctl(PR_SET_NAME, comm);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    dup2(ready, 3);
    close_range(4, ~0U, 0);
}

static void daemon_child(const struct cluster *c, int i, int ready,
                         int log)
{
    struct daemon_opts o = { .node = c->nodes[i], .ready_fd = 3 };
    char ep[FAB_NAME_MAX + 1], err[512], key[4200];

    detach("vexecd", ready, log);
    if (sweep_enter(err, sizeof(err)) < 0)
        fprintf(stderr, "vexecd %s: no cgroup: %s; what its ranks take out "
                "of its session (setsid) outlives a kill -9 of it\n",
                c->nodes[i], err);
    snprintf(key, sizeof(key), "%s/%s", c->dir, CLUSTER_KEY_FILE);
    o.key_file = key;
    o.endpoint = cluster_endpoint(c, i, ep, sizeof(ep));
    if (daemon_run(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "vexecd %s: %s\n", c->nodes[i], err);
        _exit(1);
    }
    _exit(0);
}

static void gateway_child(const struct cluster *c, int ready, int log)
{
    struct gateway_opts o = { .cluster = c->name, .ready_fd = 3,
                              .client_fd = -1, .query_fd = -1 };
    char ep[FAB_NAME_MAX + 1], err[512];

    detach("vexec-gateway", ready, log);
    snprintf(ep, sizeof(ep), "%s", c->gw_endpoint);
    o.endpoint = ep;
    if (gateway_run(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "vexec gateway: %s\n", err);
        _exit(1);
    }
    _exit(0);
}

/* Fork the first ndaemons daemons of c (all of them for `up`, none to
 * replace a dead gateway) and the gateway, and wait until each has said
 * it is ready or died.  Returns how many are ready. */
static int start_daemons(struct cluster *c, int ndaemons, int log)
{
    int ready[2], got = 0;
    char buf[256];
    ssize_t n;

    if (pipe2(ready, O_CLOEXEC) < 0)
        return 0;
    for (int i = 0; i < ndaemons; i++) {
        pid_t pid = fork();

        if (pid == 0)
            daemon_child(c, i, ready[1], log);
        c->pids[i] = pid;
        if (pid < 0)
            break;
    }
    if ((c->gateway = fork()) == 0)
        gateway_child(c, ready[1], log);
    close(ready[1]);
    /* Every daemon writes one byte when ready; EOF once all have written
     * or died. */
    while ((n = read(ready[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        got += n > 0 ? (int)n : 0;
    close(ready[0]);
    return got;
}

/* The daemons' log, DIR/log, for appending (path: its name, for errors).
 * Returns its fd or -1. */
static int open_log(const char *dir, char *path, size_t size)
{
    snprintf(path, size, "%s/log", dir);
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static int parse_count(const char *s)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || end == s || *end || n < 1 || n > MAX_NODES)
        return -1;
    return (int)n;
}

static int alloc_nodes(struct cluster *c, int n)
{
    char name[32];

    c->nodes = calloc((size_t)n, sizeof(*c->nodes));
    c->pids = calloc((size_t)n, sizeof(*c->pids));
    if (!c->nodes || !c->pids)
        return -1;
    for (c->n = 0; c->n < n; c->n++) {
        snprintf(name, sizeof(name), "n%d", c->n);
        if (!(c->nodes[c->n] = strdup(name)))
            return -1;
    }
    return 0;
}

/* A record left by a cluster whose daemons are all gone is cleaned up;
 * a live one is refused. */
static int check_no_cluster(const char *dir)
{
    struct cluster old;
    int up;

    if (cluster_load(dir, &old, NULL, 0) < 0)
        return 0;
    if ((up = count_up(&old)) > 0 || cluster_gateway_up(&old)) {
        fprintf(stderr, "vexec-cluster: a cluster of %d nodes is already up "
                "in %s (%d running); run vexec-cluster down first\n", old.n,
                dir, up);
        cluster_free(&old);
        return -1;
    }
    stop_daemons(&old);
    cluster_remove(&old, NULL, 0);
    cluster_free(&old);
    return 0;
}

/* The cluster key at dir/key: a new random one, or a link to keyfile.
 * Either way it is loaded once here, so a bad key file is one error line
 * instead of every daemon failing. */
static int setup_key(const char *dir, const char *keyfile)
{
    char p[4200], abs[PATH_MAX], err[512];
    struct auth *a;

    snprintf(p, sizeof(p), "%s/%s", dir, CLUSTER_KEY_FILE);
    unlink(p);                      /* a failed `up` may have left one */
    if (keyfile) {
        if (!(a = auth_create(keyfile, err, sizeof(err))))
            return fail("%s", err);
        auth_destroy(a);
        if (!realpath(keyfile, abs) || symlink(abs, p) < 0)
            return fail("cannot link the cluster key into %s", dir);
    } else if (auth_key_create(p, err, sizeof(err)) < 0) {
        return fail("%s", err);
    }
    if (!(a = auth_create(p, err, sizeof(err))))
        return fail("%s", err);
    auth_destroy(a);
    return 0;
}

/* The files of the dead endpoint ep and of the send-only endpoints it
 * opened (ep~K, fabric.h). */
static void remove_endpoint_files(const char *ep)
{
    remove_shm(ep, 1, "~");
}

/* The endpoint name of the gateway after the one named old: NAME.gw1
 * after NAME.gw, NAME.gw2 after NAME.gw1, and so on.  A new name, because
 * the nodes that talked to the old gateway keep its name mapped to its
 * dead shm region (fabric.h: a dropped peer stays addressable). */
static void next_gateway_endpoint(struct cluster *c)
{
    size_t len = strlen(c->name) + 1 + strlen(GATEWAY_KIND);
    long k = strtol(c->gw_endpoint + len, NULL, 10);

    snprintf(c->gw_endpoint, sizeof(c->gw_endpoint), "%s.%s%ld", c->name,
             GATEWAY_KIND, k + 1);
}

/* `up N` over a cluster whose N daemons all run but whose gateway died:
 * start a new gateway for them instead of refusing, so that the cluster
 * takes launches again without a `down` and a fresh `up` (seconds per
 * hundred nodes).  Returns -1 if there is no such cluster (the caller
 * goes on with a fresh `up`), else `up`'s exit status. */
static int restart_gateway(const char *dir, int n, const char *keyfile)
{
    struct cluster c;
    double t0 = mono_now();
    char err[512], p[4200], old[CLUSTER_GW_ENDPOINT_MAX + 1];
    int log, got, ret = 1;

    if (cluster_load(dir, &c, NULL, 0) < 0)
        return -1;
    if (cluster_gateway_up(&c) || count_up(&c) < c.n) {
        cluster_free(&c);
        return -1;
    }
    if (n != c.n) {
        fprintf(stderr, "vexec-cluster: the %d nodes in %s run without a "
                "gateway; `up %d` starts one for them, or run vexec-cluster "
                "down first\n", c.n, dir, c.n);
        goto out;
    }
    if (keyfile) {
        fprintf(stderr, "vexec-cluster: the %d nodes in %s run without a "
                "gateway and keep their key: `up %d` without --key starts "
                "one for them\n", c.n, dir, c.n);
        goto out;
    }
    if (c.gateway > 0 && is_daemon(c.gateway))
        kill(c.gateway, SIGKILL);   /* alive but its socket gone */
    snprintf(old, sizeof(old), "%s", c.gw_endpoint);
    remove_endpoint_files(old);
    next_gateway_endpoint(&c);
    if ((log = open_log(dir, p, sizeof(p))) < 0) {
        fail("cannot open the daemons' log %s", p);
        goto out;
    }
    if (fab_init(err, sizeof(err)) < 0) {
        fail("cannot start the gateway: %s", err);
        close(log);
        goto out;
    }
    got = start_daemons(&c, 0, log) == 1 && cluster_gateway_up(&c);
    close(log);
    if (!got) {
        fprintf(stderr, "vexec-cluster: the new gateway for the %d nodes in "
                "%s did not start (see %s/log)\n", c.n, dir, dir);
        if (c.gateway > 0)
            kill(c.gateway, SIGKILL);
        remove_endpoint_files(c.gw_endpoint);
        goto out;
    }
    if (cluster_save(&c, err, sizeof(err)) < 0) {
        kill(c.gateway, SIGKILL);
        remove_endpoint_files(c.gw_endpoint);
        fail("%s", err);
        goto out;
    }
    printf("vexec-cluster: %d nodes up, their gateway restarted in %.2f s "
           "(%s)\n", c.n, mono_now() - t0, dir);
    ret = 0;
out:
    cluster_free(&c);
    return ret;
}

static int cmd_up(const char *dir, const char *count, const char *keyfile)
{
    struct cluster c = { 0 };
    double t0 = mono_now();
    char err[512], p[4200];
    int n = parse_count(count), lock, log, ready, ret;

    if (n < 0)
        return fail("node count '%s' is not a number from 1 to 16384", count);
    if ((lock = lock_dir(dir)) < 0)
        return fail("%s: cannot lock the cluster directory", dir);
    if ((ret = restart_gateway(dir, n, keyfile)) >= 0) {
        close(lock);
        return ret;
    }
    if (check_no_cluster(dir) < 0 || setup_key(dir, keyfile))
        return 1;
    snprintf(c.dir, sizeof(c.dir), "%s", dir);
    snprintf(c.name, sizeof(c.name), "vx%d", (int)getpid());
    snprintf(c.gw_endpoint, sizeof(c.gw_endpoint), "%s.%s", c.name,
             GATEWAY_KIND);
    if (alloc_nodes(&c, n) < 0)
        return fail("%s", "out of memory");
    if ((log = open_log(dir, p, sizeof(p))) < 0)
        return fail("cannot open the daemons' log %s", p);
    if (fab_init(err, sizeof(err)) < 0)
        return fail("%s", err);
    if ((ready = start_daemons(&c, c.n, log)) < n + 1) {
        fprintf(stderr, "vexec-cluster: only %d of %d daemons and the "
                "gateway started (see %s)\n", ready, n, p);
        stop_daemons(&c);
        return 1;
    }
    if (cluster_save(&c, err, sizeof(err)) < 0) {
        stop_daemons(&c);
        return fail("%s", err);
    }
    printf("vexec-cluster: %d nodes up in %.2f s (%s)\n", n, mono_now() - t0, dir);
    cluster_free(&c);
    close(lock);
    return 0;
}

/* "down: n[3,7]": the nodes that are down, as a hostlist. */
static void print_down(const struct cluster *c)
{
    const char **down = calloc((size_t)c->n, sizeof(*down));
    int n = 0, len;
    char *expr;

    for (int i = 0; down && i < c->n; i++)
        if (!cluster_node_up(c, i))
            down[n++] = c->nodes[i];
    if (down && n && (len = hostlist_compress(down, n, NULL, 0)) > 0
        && (expr = malloc((size_t)len + 1))) {
        hostlist_compress(down, n, expr, (size_t)len + 1);
        printf("down: %s\n", expr);
        free(expr);
    }
    free(down);
}

static int cmd_status(const char *dir)
{
    struct cluster c;
    char err[512];
    int up, all;

    if (cluster_load(dir, &c, err, sizeof(err)) < 0)
        return fail("%s", err);
    up = count_up(&c);
    printf("%d nodes: %d up, %d down\n", c.n, up, c.n - up);
    if (up < c.n)
        print_down(&c);
    all = up == c.n;
    if (!cluster_gateway_up(&c)) {
        printf("gateway: down\n");
        all = 0;
    }
    cluster_free(&c);
    return all ? 0 : 1;
}

static int cmd_down(const char *dir)
{
    struct cluster c;
    char err[512], p[4200];
    int lock = lock_dir(dir);

    if (cluster_load(dir, &c, err, sizeof(err)) < 0)
        return fail("%s", err);
    stop_daemons(&c);
    if (cluster_remove(&c, err, sizeof(err)) < 0)
        return fail("%s", err);
    printf("vexec-cluster: %d nodes down\n", c.n);
    snprintf(p, sizeof(p), "%s/log", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock", dir);
    unlink(p);
    if (lock >= 0)
        close(lock);
    cluster_free(&c);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: vexec-cluster [--dir DIR] [--key FILE] up N | "
            "status | down\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *keyfile = NULL;
    int i = 1;

    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--key"))
            keyfile = argv[i + 1];
        else
            return usage();
    }
    dir = cluster_dir(dir);
    if (i + 2 == argc && !strcmp(argv[i], "up"))
        return cmd_up(dir, argv[i + 1], keyfile);
    if (i + 1 == argc && !strcmp(argv[i], "status"))
        return cmd_status(dir);
    if (i + 1 == argc && !strcmp(argv[i], "down"))
        return cmd_down(dir);
    return usage();
}
