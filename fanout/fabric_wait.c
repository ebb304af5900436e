/* fabric_wait.c - how an endpoint's owner sleeps and is woken: shm has
 * no wait object (fabric.h), so each endpoint binds a doorbell, a
 * datagram socket a sender rings after it posts; tcp's completion queue
 * has a wait fd of its own.  A ring carries the ringer's pid, through
 * which a peer's process state is read (fab_peer_state).
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/bell.h"
#include "fanout/fabric_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fi_eq.h>

/* The doorbell's name prefix (bell.h): "vexec-bell.NAME". */
#define BELL_PREFIX "vexec-bell."

static socklen_t bell_addr(const char *name, struct sockaddr_un *sa)
{
    return bell_sockaddr("bell", name, sa);
}

/* Bind our doorbell.  Its name is unique on the host like the endpoint's:
 * EADDRINUSE means another process owns the name. */
int fab_open_bell(struct fab *f, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    socklen_t len = bell_addr(f->name, &sa);

    f->bell = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->bell < 0)
        return seterr(err, errlen, errno, "%s: doorbell socket: %s",
                      f->name, strerror(errno));
    /* Each ring then carries its sender's pid, checked by the kernel. */
    if (setsockopt(f->bell, SOL_SOCKET, SO_PASSCRED, &(int){ 1 },
                   sizeof(int)) < 0)
        return seterr(err, errlen, errno, "%s: SO_PASSCRED: %s", f->name,
                      strerror(errno));
    if (bind(f->bell, (struct sockaddr *)&sa, len) < 0) {
        if (errno == EADDRINUSE)
            return seterr(err, errlen, EEXIST, "endpoint name '%s' is "
                          "taken by another process", f->name);
        return seterr(err, errlen, errno, "%s: binding doorbell: %s",
                      f->name, strerror(errno));
    }
    return 0;
}

void fab_note_bell(struct fab *f, int slot)
{
    f->peer_bell_len[slot] = bell_addr(f->peer_name[slot],
                                       &f->peer_bell[slot]);
}

int fab_fd(const struct fab *f)
{
    return f->tcp ? f->waitfd : f->bell;
}

int fab_ring(struct fab *f, int peer)
{
    if (peer < 0 || peer >= f->npeers || !f->peer_name[peer][0]) {
        errno = EINVAL;
        return -1;
    }
    /* tcp data wakes the peer's wait fd itself. */
    if (f->tcp)
        return 0;
    if (sendto(f->bell, "", 0, MSG_DONTWAIT,
               (struct sockaddr *)&f->peer_bell[peer],
               f->peer_bell_len[peer]) == 0)
        return 0;
    /* A full queue means it has been rung already. */
    if (errno == EAGAIN)
        return 0;
    if (errno == ECONNREFUSED || errno == ENOENT)
        errno = EHOSTDOWN;
    return -1;
}

/* Remember the pid a ring from a peer's doorbell carried. */
static void note_ringer(struct fab *f, const struct sockaddr_un *sa,
                        socklen_t salen, const struct msghdr *mh)
{
    size_t off = offsetof(struct sockaddr_un, sun_path) + 1;
    size_t pre = strlen(BELL_PREFIX), n;
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    char name[FAB_NAME_MAX + 1];
    struct ucred cred;

    if (!c || c->cmsg_type != SCM_CREDENTIALS || salen <= off + pre
        || memcmp(sa->sun_path + 1, BELL_PREFIX, pre))
        return;
    n = salen - off - pre;
    if (n > FAB_NAME_MAX)
        return;
    memcpy(name, sa->sun_path + 1 + pre, n);
    name[n] = '\0';
    memcpy(&cred, CMSG_DATA(c), sizeof(cred));
    for (int i = 0; i < f->npeers; i++)
        if (!strcmp(f->peer_name[i], name))
            f->peer_pid[i] = (int)cred.pid;
}

char fab_peer_state(struct fab *f, int peer)
{
    struct peer_stat *w;
    char path[64], buf[512], *p;
    int pid = fab_peer_pid(f, peer);
    double now;
    ssize_t n;

    if (pid <= 0)
        return 0;
    w = &f->stat[peer];
    if (w->pid != pid) {
        if (w->pid > 0 && w->fd >= 0)
            close(w->fd);
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        w->fd = open(path, O_RDONLY | O_CLOEXEC);
        w->pid = pid;
        w->at = -1;
    }
    if (w->fd < 0)
        return 0;
    now = mono_now();
    if (w->at >= 0 && now - w->at < FAB_STATE_FRESH_S)
        return w->state;
    n = pread(w->fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        close(w->fd);
        w->fd = -1;
        return 0;
    }
    buf[n] = '\0';
    /* "PID (COMM) S ...": COMM may hold anything, ')' too. */
    p = strrchr(buf, ')');
    w->state = p && p[1] == ' ' ? p[2] : 0;
    w->at = now;
    return w->state;
}

int fab_peer_stopped(struct fab *f, int peer)
{
    char s;

    if (f->tcp)
        return 0;
    s = fab_peer_state(f, peer);
    return s == 'T' || s == 't';
}

static void close_state(struct peer_stat *w)
{
    if (w->pid > 0 && w->fd >= 0)
        close(w->fd);
    w->pid = 0;
}

void fab_forget_states(struct fab *f)
{
    for (int i = 0; i < FAB_MAX_PEERS; i++)
        close_state(&f->stat[i]);
}

/* Empty our doorbell's queue: the rings have done their job once we poll. */
void fab_bell_clear(struct fab *f)
{
    char cbuf[CMSG_SPACE(sizeof(struct ucred))], c;
    struct sockaddr_un sa;
    struct iovec iov = { &c, sizeof(c) };
    struct msghdr mh;

    while (!f->tcp) {
        mh = (struct msghdr){ .msg_name = &sa, .msg_namelen = sizeof(sa),
                              .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = cbuf,
                              .msg_controllen = sizeof(cbuf) };
        if (recvmsg(f->bell, &mh, MSG_DONTWAIT) < 0)
            return;
        note_ringer(f, &sa, mh.msg_namelen, &mh);
    }
}

int fab_can_sleep(struct fab *f)
{
    struct fid *cq;

    if (!f->tcp)
        return 1;
    /* libfabric's rule for wait objects: fi_trywait, and block on the fd
     * only if it says nothing is pending (it also re-arms the fd). */
    cq = &f->cq->fid;
    return fi_trywait(f->fabric, &cq, 1) == FI_SUCCESS;
}

void fab_idle(struct fab *f)
{
    struct pollfd pfd = { .fd = fab_fd(f), .events = POLLIN };
    struct timespec ts = { 0, FAB_IDLE_MAX_NS };

    /* No sched_yield first: with hundreds of daemons on two cores each
     * yield is a context switch that finds nothing new (A/B at 511 nodes:
     * 8 yields, 1, none: CPU 1.18 s, 1.14 s; 1.34 s, 1.29 s).  With sends
     * in flight, start short and grow to the bound: a transfer about to
     * complete costs little, a long one costs little CPU. */
    fab_ring_due(f);
    if (f->in_flight == 0)
        ts.tv_nsec = FAB_IDLE_QUIET_NS;
    else if (f->idle < 8)
        ts.tv_nsec = FAB_IDLE_MAX_NS / 8 * (f->idle + 1);
    f->idle++;
    if (fab_can_sleep(f) && ppoll(&pfd, 1, &ts, NULL) > 0)
        fab_bell_clear(f);
}

/* ---- shm's queue locks ----
 *
 * libfabric 1.17's shm guards each endpoint's queue with a pthread spin
 * lock in the endpoint's shared region: its owner takes it while it reads
 * the queue, every sender while it posts.  A daemon killed (kill -9) or
 * stopped while it holds one leaves its owner and all its senders
 * spinning for good: seen on this VM, n1 killed while posting to its
 * child n4 left n4 spinning in fi_cq_read and n0 in fi_tsend to n4.  So
 * this program's pthread_spin_lock, which libfabric's calls reach before
 * libc's (an executable's symbols come first), gives up waiting once it
 * has spun fab_spin_stuck_s on a lock never seen free nor changed: its
 * holder died or stopped (a live one holds it for microseconds; the
 * longest a runnable process waits for a CPU on a loaded 2-core host is
 * about a second), and the lock is taken over.  A stopped holder that runs again later frees
 * a lock someone else then holds, and that queue may be garbled: a daemon
 * stopped that long was given up already (adopt.c's STOPPED_S).  Same
 * lock word as glibc's on x86_64: 1 free, 0 or less taken, so its
 * pthread_spin_unlock and trylock still fit. */
double fab_spin_stuck_s = 10.0;
unsigned fab_spin_takeovers;

/* Gaps between two looks at the lock longer than this were spent off the
 * CPU (preempted), not watching it, and do not count. */
#define SPIN_GAP_S 0.01

/* Pauses between two yields of a waiter.  A holder holds the lock for a
 * few microseconds unless it lost its CPU, and with hundreds of daemons
 * on two cores it often has: spinning on cannot help it, only burn the
 * rest of our time slice (5% of a 1023-node launch's samples were in
 * this loop).  64 pauses are a few microseconds; then we let the holder
 * run.  A/B at 511 nodes: CPU per launch -33 ms, 6 of 10 pairs, which is
 * within this VM's noise. */
#define SPINS_PER_YIELD 64

/* sched_yield(2), inline.  libc's wrapper sits in a 64 kB stretch of its
 * text (beside regcomp, getopt and getaddrinfo) that a daemon runs nothing
 * else of, so the first contended lock of a daemon's life faulted that
 * stretch in (the kernel maps 16 pages around a fault in file text):
 * +64 kB of RSS on 482 of a 1023-node cluster's daemons, each at some
 * launch of its own, which the soak's "RSS flat" check counted as
 * growth (found by diffing /proc/PID/smaps and pagemap between
 * launches). */
static inline void yield_cpu(void)
{
    long ret = SYS_sched_yield;

    __asm__ volatile("syscall" : "+a"(ret) : : "rcx", "r11", "memory");
}

int pthread_spin_lock(pthread_spinlock_t *lock)
{
    volatile int *l = (volatile int *)lock;

    for (;;) {
        double watched = 0, last = 0;
        int seen = 0;

        if (__atomic_fetch_sub(l, 1, __ATOMIC_ACQUIRE) == 1)
            return 0;
        /* Stuck means taken, and unchanged, for fab_spin_stuck_s of our
         * own spinning: a holder that frees it now and then, or a lock
         * word that moves, starts the count again. */
        for (unsigned spins = 1; *l <= 0; spins++) {
            double now;
            int v;

            __builtin_ia32_pause();
            if (spins % SPINS_PER_YIELD)
                continue;
            yield_cpu();
            now = mono_now();
            v = *l;
            if (last == 0 || v != seen)
                watched = 0;
            else if (now - last < SPIN_GAP_S)
                watched += now - last;
            seen = v;
            last = now;
            if (watched > fab_spin_stuck_s) {
                __atomic_store_n(l, 0, __ATOMIC_SEQ_CST);
                fab_spin_takeovers++;
                fprintf(stderr, "%s: a libfabric lock stayed taken for "
                        "%.1f s (its holder died or stopped): taking it "
                        "over\n", program_invocation_short_name,
                        fab_spin_stuck_s);
                return 0;
            }
        }
    }
}
