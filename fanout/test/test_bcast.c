/* test_bcast.c - the pipelined broadcast between real processes.
 *
 * Each case forks N processes, one per tree node, each with its own shm
 * endpoint ("vexec-test-<pid>-<rank>") and its own huge-page buffer.  Rank 0
 * fills its buffer with a pseudo-random pattern; after the broadcast every
 * rank hashes its whole copy, checks the byte past the end is untouched,
 * and reports through a pipe and its exit status.  Endpoints are announced
 * before anyone adds a peer: every child writes a byte to the "ready" pipe
 * once its endpoint exists, and the parent closes the "go" pipe (EOF in
 * every child) only when all N have.  The parent kills every child after a
 * deadline instead of hanging, and checks that no endpoint file is left in
 * /dev/shm.
 *
 *   test_bcast                                TAP unit test
 *   test_bcast --bench N SHAPE SIZE [CHUNK]   one timed broadcast (sizes
 *                                             take K and M suffixes)
 */
#include "common/clock.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/tap.h"
#include "fanout/bcast.h"
#include "fanout/fabric.h"
#include "fanout/topo.h"

/* A case that takes longer than this is stuck: a 4 MiB broadcast to 64
 * processes takes well under a second even on two busy cores. */
#define CASE_DEADLINE_S 20.0

/* Bench runs may be large (1023 processes start slowly). */
#define BENCH_DEADLINE_S 300.0

#define SENTINEL 0xa5

/* Child exit statuses. */
enum { CHILD_OK, CHILD_BAD_DATA, CHILD_SETUP_FAILED, CHILD_BCAST_FAILED };

struct bcase {
    int n;
    const char *shape;
    size_t len;
    size_t chunk;
    double deadline;
};

/* What a child reports through the result pipe (one write, < PIPE_BUF). */
struct report {
    int rank;
    int status;
    double t_done;
};

struct outcome {
    int ok;                 /* every rank reported CHILD_OK and exited 0 */
    int timed_out;
    int leftovers;          /* our files found in /dev/shm afterwards */
    double t_start;         /* fork to all endpoints ready */
    double t_bcast;         /* go to the last rank done */
};

static pid_t test_pid;
static uint64_t expected_hash;

/* xorshift64*, seeded by length: a pattern no two offsets share. */
static void fill_pattern(unsigned char *buf, size_t len)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ len;

    for (size_t i = 0; i < len; i += 8) {
        uint64_t v;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v = x * 0x2545f4914f6cdd1dULL;
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

/* FNV-1a over 64-bit words, then the tail bytes. */
static uint64_t hash_buf(const unsigned char *buf, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w;

        memcpy(&w, buf + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < len; i++)
        h = (h ^ buf[i]) * 0x100000001b3ULL;
    return h;
}

static void node_name(char *name, size_t size, int rank)
{
    snprintf(name, size, "vexec-test-%d-%d", (int)test_pid, rank);
}

/* Add rank's parent and children as peers and describe rank's place in
 * the tree in io; kid_peer holds the children's peer indices. */
static int tree_io(struct fab *f, const struct topo *t, int rank,
                   struct bcast_io *io, int *kid_peer, char *err,
                   size_t errlen)
{
    const int *kids;
    int nkids = topo_children(t, rank, &kids);
    int parent = topo_parent(t, rank);
    char name[64];

    *io = (struct bcast_io){ .parent = -1, .kids = kid_peer, .nkids = nkids };
    if (parent >= 0) {
        node_name(name, sizeof(name), parent);
        if ((io->parent = fab_add_peer(f, name, err, errlen)) < 0)
            return -1;
    }
    for (int k = 0; k < nkids; k++) {
        node_name(name, sizeof(name), kids[k]);
        if ((kid_peer[k] = fab_add_peer(f, name, err, errlen)) < 0)
            return -1;
    }
    return 0;
}

/* Wait for EOF on the go pipe: the parent closes it once all are ready. */
static void wait_for_go(int go_fd)
{
    char c;

    while (read(go_fd, &c, 1) < 0 && errno == EINTR)
        ;
}

static int child_verify(const unsigned char *buf, size_t len)
{
    return hash_buf(buf, len) == expected_hash && buf[len] == SENTINEL;
}

/* One tree node.  Returns its exit status. */
static int child_main(const struct bcase *bc, int rank, int ready_fd,
                      int go_fd, int result_fd)
{
    struct report rep = { .rank = rank, .status = CHILD_SETUP_FAILED };
    struct topo *t = topo_create(bc->shape, bc->n, NULL, 0);
    struct bcast_io io;
    int *peer = calloc((size_t)bc->n, sizeof(*peer));
    unsigned char *buf = NULL;
    struct fab *f = NULL;
    char name[64], err[256] = "out of memory";

    node_name(name, sizeof(name), rank);
    if (!t || !peer || !(f = fab_create(name, err, sizeof(err)))
        || !(buf = fab_buf_alloc(bc->len + 1, err, sizeof(err))))
        goto out;
    /* Touch the buffer now, as a daemon reusing its buffer would have. */
    if (rank == 0)
        fill_pattern(buf, bc->len);
    else
        memset(buf, 0, bc->len);
    buf[bc->len] = SENTINEL;
    if (write(ready_fd, "r", 1) != 1)
        goto out;
    close(ready_fd);
    wait_for_go(go_fd);
    if (tree_io(f, t, rank, &io, peer, err, sizeof(err)) < 0)
        goto out;
    rep.status = CHILD_BCAST_FAILED;
    if (bcast_run(f, &io, buf, bc->len, bc->chunk, err, sizeof(err)) < 0)
        goto out;
    rep.t_done = mono_now();
    rep.status = child_verify(buf, bc->len) ? CHILD_OK : CHILD_BAD_DATA;
    snprintf(err, sizeof(err), "copy differs from the pattern");
out:
    if (rep.status != CHILD_OK)
        fprintf(stderr, "rank %d: %s\n", rank, err);
    if (write(result_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        rep.status = CHILD_SETUP_FAILED;
    fab_destroy(f);
    fab_buf_free(buf, bc->len + 1);
    free(peer);
    topo_destroy(t);
    return rep.status;
}

struct family {
    pid_t *pids;
    char *ready_bytes;
    int n;
    int ready[2], go[2], result[2];
};

static pid_t spawn_child(struct family *fam, const struct bcase *bc, int rank)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    /* Never outlive the test, whatever happens to it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != test_pid)
        _exit(CHILD_SETUP_FAILED);
    close(fam->ready[0]);
    close(fam->go[1]);
    close(fam->result[0]);
    /* The parent's tables are not the child's to keep (LeakSanitizer
     * checks every child when it exits). */
    free(fam->pids);
    free(fam->ready_bytes);
    exit(child_main(bc, rank, fam->ready[1], fam->go[0], fam->result[1]));
}

/* Read until want bytes arrived or the deadline passed.  Returns bytes. */
static size_t read_until(int fd, void *buf, size_t want, double deadline)
{
    size_t got = 0;

    while (got < want) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        double left = deadline - mono_now();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) < 0)
            break;
        if (!(p.revents & (POLLIN | POLLHUP)))
            continue;
        n = read(fd, (char *)buf + got, want - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* Reap every child by the deadline; kill those still running.  Returns
 * 1 if all exited with status 0. */
static int reap_all(struct family *fam, double deadline, int *timed_out)
{
    int alive = fam->n, all_ok = 1;

    while (alive > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);

        if (pid > 0) {
            alive--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                all_ok = 0;
            for (int i = 0; i < fam->n; i++)
                if (fam->pids[i] == pid)
                    fam->pids[i] = 0;
        } else if (mono_now() > deadline) {
            *timed_out = 1;
            for (int i = 0; i < fam->n; i++)
                if (fam->pids[i] > 0)
                    kill(fam->pids[i], SIGKILL);
            deadline += 3600;   /* SIGKILL'd children will exit */
        } else {
            usleep(1000);
        }
    }
    return all_ok && !*timed_out;
}

/* Remove our endpoint files from /dev/shm; returns how many there were.
 * Only a killed child leaves one: fab_destroy removes its own. */
static int clean_shm(void)
{
    char prefix[64], path[512];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int found = 0;

    snprintf(prefix, sizeof(prefix), "vexec-test-%d-", (int)test_pid);
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        found++;
        snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    return found;
}

static void close_pipes(struct family *fam)
{
    int *fds[] = { fam->ready, fam->go, fam->result };

    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        for (int j = 0; j < 2; j++)
            if (fds[i][j] >= 0)
                close(fds[i][j]);
}

/* Collect one report per rank; every rank must say CHILD_OK. */
static int collect_reports(struct family *fam, double t_go, double deadline,
                           struct outcome *o)
{
    struct report rep;
    int good = 0;

    for (int i = 0; i < fam->n; i++) {
        if (read_until(fam->result[0], &rep, sizeof(rep), deadline)
            != sizeof(rep))
            break;
        if (rep.status == CHILD_OK) {
            good++;
            if (rep.t_done - t_go > o->t_bcast)
                o->t_bcast = rep.t_done - t_go;
        }
    }
    return good == fam->n;
}

/* Fork the tree, wait for every endpoint, start the broadcast, collect. */
static void run_case(const struct bcase *bc, struct outcome *o)
{
    struct family fam = { .n = bc->n };
    double t0 = mono_now(), deadline = t0 + bc->deadline, t_go;
    int reports_ok = 0;

    memset(o, 0, sizeof(*o));
    fam.pids = calloc((size_t)bc->n, sizeof(*fam.pids));
    fam.ready_bytes = malloc((size_t)bc->n);
    if (!fam.pids || !fam.ready_bytes || pipe(fam.ready) < 0 || pipe(fam.go) < 0
        || pipe(fam.result) < 0) {
        diag("setup: %s", strerror(errno));
        exit(1);
    }
    fflush(stdout);
    for (int r = 0; r < bc->n; r++)
        if ((fam.pids[r] = spawn_child(&fam, bc, r)) < 0)
            fam.n = r;
    close(fam.ready[1]);
    close(fam.go[0]);
    close(fam.result[1]);
    fam.ready[1] = fam.go[0] = fam.result[1] = -1;
    if (fam.n == bc->n && read_until(fam.ready[0], fam.ready_bytes, (size_t)bc->n,
                                     deadline) == (size_t)bc->n) {
        t_go = mono_now();
        o->t_start = t_go - t0;
        close(fam.go[1]);
        fam.go[1] = -1;
        reports_ok = collect_reports(&fam, t_go, deadline, o);
    }
    close_pipes(&fam);  /* a child still waiting for go sees EOF */
    o->ok = reap_all(&fam, deadline, &o->timed_out) && reports_ok;
    o->leftovers = clean_shm();
    free(fam.pids);
    free(fam.ready_bytes);
}

static void report_case(const struct bcase *bc, const struct outcome *o)
{
    ok(o->ok && !o->leftovers, "%d processes, %s, %zu bytes in chunks of "
       "%zu: every copy intact", bc->n, bc->shape, bc->len,
       bc->chunk ? bc->chunk : BCAST_CHUNK_DEFAULT);
    if (o->timed_out)
        diag("killed after %.0f s", bc->deadline);
    if (o->leftovers)
        diag("%d endpoint files left in /dev/shm", o->leftovers);
    diag("start %.3f s, broadcast %.4f s", o->t_start, o->t_bcast);
}

static void check_bcase(const struct bcase *bc)
{
    unsigned char *pattern = malloc(bc->len);
    struct outcome o;

    if (!pattern) {
        diag("out of memory");
        exit(1);
    }
    fill_pattern(pattern, bc->len);
    expected_hash = hash_buf(pattern, bc->len);
    free(pattern);
    run_case(bc, &o);
    report_case(bc, &o);
}

static void check_case(int n, const char *shape, size_t len, size_t chunk)
{
    struct bcase bc = { n, shape, len, chunk, CASE_DEADLINE_S };

    check_bcase(&bc);
}

/* The endpoint layer alone: names, errors, and destroy removing the
 * /dev/shm file. */
static void check_fabric_api(void)
{
    char err[256], name[64], path[128];
    struct fab *f, *g;

    node_name(name, sizeof(name), 999999);
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    ok(fab_create("bad/name", err, sizeof(err)) == NULL && errno == EINVAL,
       "fab_create refuses a name with '/': %s", err);
    f = fab_create(name, err, sizeof(err));
    ok(f != NULL, "fab_create(%s)%s%s", name, f ? "" : ": ", f ? "" : err);
    ok(f && access(path, F_OK) == 0, "the endpoint is %s", path);
    g = fab_create(name, err, sizeof(err));
    ok(g == NULL, "a second endpoint of the same name is refused: %s",
       g ? "(created)" : err);
    fab_destroy(g);
    ok(f && fab_add_peer(f, name, err, sizeof(err)) == 0,
       "an endpoint can add itself as peer 0");
    fab_destroy(f);
    ok(access(path, F_OK) < 0 && errno == ENOENT,
       "fab_destroy removes %s", path);
}

static const char *const shapes[] = {
    "chain", "kary:2", "kary:8", "binomial", "flat",
};

static int unit_tests(void)
{
    static const int sizes[] = { 1, 2, 3, 16, 64 };
    const size_t mib4 = 4UL << 20;
    double t0 = mono_now();
    char err[256];

    if (!ok(fab_init(err, sizeof(err)) == 0, "libfabric offers shm")) {
        diag("%s", err);
        return done_testing();
    }
    check_fabric_api();
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            if (sizes[i] < 3 && s > 1)
                continue;   /* with 1 or 2 nodes every shape is a chain */
            check_case(sizes[i], shapes[s], mib4, 0);
        }
    check_case(16, "kary:2", mib4 - 12345, 0);
    check_case(16, "binomial", 3 * 256 * 1024 + 1, 256 * 1024);
    check_case(16, "kary:8", mib4, 1 << 20);
    check_case(64, "kary:8", mib4 + 4096, 64 * 1024);
    check_case(16, "binomial", 1, 0);
    check_case(3, "flat", 1, 0);
    diag("total %.1f s", mono_now() - t0);
    return done_testing();
}

/* "4M", "512K", "1000": bytes. */
static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);

    if (*end == 'K' || *end == 'k')
        v <<= 10;
    else if (*end == 'M' || *end == 'm')
        v <<= 20;
    else if (*end)
        return 0;
    return (size_t)v;
}

static int bench(int argc, char **argv)
{
    struct bcase bc = { .deadline = BENCH_DEADLINE_S };
    struct topo *t;
    char err[256];
    double t0 = mono_now();

    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: test_bcast --bench N SHAPE SIZE [CHUNK]\n");
        return 2;
    }
    bc.n = atoi(argv[2]);
    bc.shape = argv[3];
    bc.len = parse_size(argv[4]);
    bc.chunk = argc == 6 ? parse_size(argv[5]) : 0;
    if (!(t = topo_create(bc.shape, bc.n, err, sizeof(err))) || bc.len == 0) {
        fprintf(stderr, "test_bcast: %s\n", t ? "bad size" : err);
        return 2;
    }
    topo_destroy(t);
    if (fab_init(err, sizeof(err)) < 0) {
        fprintf(stderr, "test_bcast: %s\n", err);
        return 1;
    }
    diag("fab_init %.3f s", mono_now() - t0);
    check_bcase(&bc);
    return done_testing();
}

int main(int argc, char **argv)
{
    test_pid = getpid();
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench(argc, argv);
    return unit_tests();
}
