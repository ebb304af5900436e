/* test_fabric_drop.c - giving up a peer and withdrawing receives (shm).
 *
 * libfabric 1.17's shm completes an endpoint's sends only in order, so a
 * send to a stopped peer holds every later completion: after fab_drop_peer
 * of that peer, the send already queued at a live peer is reported sent,
 * and a new send to it completes (it goes out on a new endpoint).  A
 * receive withdrawn with fab_cancel takes nothing: the next message goes
 * to a receive posted after it.  Nothing is posted to a peer whose
 * process is stopped (once its ring told us its pid): fab_send says
 * EAGAIN until it runs again.  A spin lock a dead process left taken is
 * taken over (libfabric's shm queue locks reach fabric_wait.c's
 * pthread_spin_lock).
 */
#include "common/clock.h"
#include "common/tap.h"
#include "fanout/fabric.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (1UL << 20)
#define TAG 7

static char big[BIG];

/* Poll until an event for ctx arrives or secs pass.  Returns its kind,
 * or -1. */
static int wait_for(struct fab *f, void *ctx, double secs)
{
    double end = mono_now() + secs;
    struct fab_event ev[8];

    while (mono_now() < end) {
        int n = fab_poll(f, ev, 8, NULL, 0);

        for (int i = 0; i < n; i++)
            if (ev[i].ctx == ctx)
                return (int)ev[i].kind;
        fab_idle(f);
    }
    return -1;
}

static int send_wait(struct fab *f, int peer, const void *buf, size_t len,
                     void *ctx)
{
    double end = mono_now() + 10;

    while (fab_send(f, peer, TAG, buf, len, ctx) < 0) {
        struct fab_event ev[8];

        if (mono_now() > end)
            return -1;
        fab_poll(f, ev, 8, NULL, 0);
        fab_idle(f);
    }
    return 0;
}

/* A peer that takes n messages of up to BIG bytes, then waits to die.
 * With ring set, it first waits for a byte on go_fd (our endpoint
 * exists) and rings us, so we learn its pid. */
static pid_t receiver(const char *name, int n, int pipe_fd,
                      const char *ring, int go_fd)
{
    pid_t pid = fork();

    if (pid == 0) {
        static char buf[BIG];
        struct fab *f = fab_create(name, NULL, 0);
        char c = f ? 'r' : 'x';

        if (write(pipe_fd, &c, 1) != 1 || !f)
            _exit(1);
        if (ring && (read(go_fd, &c, 1) != 1
                     || fab_add_peer(f, ring, NULL, 0) < 0))
            _exit(1);
        for (int i = 0; i < n; i++) {
            fab_recv(f, -1, TAG, buf, sizeof(buf), buf);
            if (wait_for(f, buf, 30) != FAB_RECEIVED)
                _exit(2);
        }
        pause();
        _exit(0);
    }
    return pid;
}

static void bail(const char *why)
{
    printf("Bail out! %s\n", why);
    exit(1);
}

/* A stopped peer is not sent to; once it runs again, it is. */
static void stopped_peer(void)
{
    char name[2][64], err[256], c = 'g';
    int ready[2], go[2], peer = -1, tag = 0;
    struct fab *f;
    double end;
    pid_t pid;

    for (int i = 0; i < 2; i++)
        snprintf(name[i], sizeof(name[i]), "tfs%d.%d", (int)getpid(), i);
    if (pipe(ready) < 0 || pipe(go) < 0)
        bail("pipe");
    pid = receiver(name[1], 2, ready[1], name[0], go[0]);
    if (read(ready[0], &c, 1) != 1 || c != 'r')
        bail("no ringer");
    f = fab_create(name[0], err, sizeof(err));
    if (f)
        peer = fab_add_peer(f, name[1], err, sizeof(err));
    if (!f || peer < 0 || write(go[1], "g", 1) != 1)
        bail(err);
    for (end = mono_now() + 10; !fab_peer_pid(f, peer) && mono_now() < end;)
        if (wait_for(f, &tag, 0.01) < 0)
            fab_bell_clear(f);
    ok(fab_peer_pid(f, peer) == pid && fab_peer_state(f, peer) != 'T',
       "a peer's ring tells its pid, and it is not stopped");
    ok(send_wait(f, peer, big, 16, &tag) == 0
       && wait_for(f, &tag, 10) == FAB_SENT, "it takes a first message");
    kill(pid, SIGSTOP);
    for (end = mono_now() + 10; fab_peer_state(f, peer) != 'T'
                                && mono_now() < end;)
        usleep(1000);
    errno = 0;
    ok(fab_peer_state(f, peer) == 'T'
       && fab_send(f, peer, TAG, big, BIG, &tag) < 0 && errno == EAGAIN
       && fab_sends_in_flight(f) == 0,
       "a send to it once it is stopped says EAGAIN and posts nothing");
    kill(pid, SIGCONT);
    ok(send_wait(f, peer, big, BIG, &tag) == 0
       && wait_for(f, &tag, 10) == FAB_SENT,
       "once it runs again, a send to it completes");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fab_destroy(f);
    snprintf(err, sizeof(err), "/dev/shm/%s", name[1]);
    unlink(err);
}

/* A spin lock in shared memory that a process took and died holding (as
 * a daemon killed while it posts to a peer's shm queue) is taken over
 * after fab_spin_stuck_s, and glibc's unlock and trylock still fit. */
static void dead_holder(void)
{
    pthread_spinlock_t *l = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double t0, took;
    pid_t pid;

    if (l == MAP_FAILED || pthread_spin_init(l, PTHREAD_PROCESS_SHARED))
        bail("a shared lock");
    if ((pid = fork()) == 0) {
        pthread_spin_lock(l);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    fab_spin_stuck_s = 0.5;
    t0 = mono_now();
    pthread_spin_lock(l);
    took = mono_now() - t0;
    fab_spin_stuck_s = 10;
    ok(took >= 0.5 && pthread_spin_trylock(l) == EBUSY
       && fab_spin_takeovers == 1,
       "a lock its dead holder left taken is taken over after the limit "
       "(%.2f s), and is ours", took);
    pthread_spin_unlock(l);
    ok(pthread_spin_trylock(l) == 0 && pthread_spin_trylock(l) == EBUSY,
       "after glibc's unlock it is free, then taken, as glibc sees it");
    pthread_spin_unlock(l);
    pthread_spin_lock(l);
    ok(*(volatile int *)l == 0 && pthread_spin_trylock(l) == EBUSY,
       "a free lock is taken with glibc's lock word");
    pthread_spin_unlock(l);
    /* A live holder that keeps it 2 ms at a time, for 2 s: waited for,
     * never taken over. */
    if ((pid = fork()) == 0) {
        for (double end = mono_now() + 2; mono_now() < end;) {
            double until = mono_now() + 0.002;

            pthread_spin_lock(l);
            while (mono_now() < until)
                ;
            pthread_spin_unlock(l);
            usleep(50);
        }
        _exit(0);
    }
    fab_spin_stuck_s = 0.5;
    usleep(100000);
    for (int i = 0; i < 200; i++) {
        pthread_spin_lock(l);
        pthread_spin_unlock(l);
        usleep(5000);
    }
    fab_spin_stuck_s = 10;
    waitpid(pid, NULL, 0);
    ok(fab_spin_takeovers == 1,
       "a lock its live holder frees now and then is never taken over "
       "(%u take-overs in all)", fab_spin_takeovers);
    munmap((void *)l, 4096);
}

int main(void)
{
    char name[3][64], err[256], c;
    int p[2], peer[2];
    pid_t pid[2];
    struct fab *f;

    if (pipe(p) < 0 || fab_init(err, sizeof(err)) < 0)
        return printf("Bail out! %s\n", err), 1;
    for (int i = 0; i < 3; i++)
        snprintf(name[i], sizeof(name[i]), "tfd%d.%d", (int)getpid(), i);
    pid[0] = receiver(name[1], 1, p[1], NULL, -1);    /* will be stopped */
    pid[1] = receiver(name[2], 2, p[1], NULL, -1);
    for (int i = 0; i < 2; i++)
        if (read(p[0], &c, 1) != 1 || c != 'r')
            return printf("Bail out! no receiver\n"), 1;
    f = fab_create(name[0], err, sizeof(err));
    for (int i = 0; f && i < 2; i++)
        peer[i] = fab_add_peer(f, name[i + 1], err, sizeof(err));
    ok(f && peer[0] >= 0 && peer[1] >= 0, "an endpoint and two peers");
    /* The first message lets the first peer poll once, then it stops. */
    ok(f && send_wait(f, peer[0], big, 16, &p[0]) == 0
       && wait_for(f, &p[0], 10) == FAB_SENT, "a first peer takes a message");
    usleep(200000);
    kill(pid[0], SIGSTOP);
    ok(send_wait(f, peer[0], big, BIG, &pid[0]) == 0
       && send_wait(f, peer[1], big, BIG, &pid[1]) == 0
       && wait_for(f, &pid[1], 2) == -1,
       "a send to a live peer, queued behind one to a stopped peer, does not complete");
    fab_drop_peer(f, peer[0]);
    ok(wait_for(f, &pid[1], 2) == FAB_SENT && fab_sends_in_flight(f) == 0,
       "giving the stopped peer up reports the live peer's send sent");
    ok(send_wait(f, peer[1], big, BIG, &peer[1]) == 0
       && wait_for(f, &peer[1], 10) == FAB_SENT,
       "and the next send to the live peer completes");
    ok(fab_recv(f, -1, TAG, big, 64, &peer[0]) == 0
       && fab_cancel(f, &peer[0]) == 1 && fab_cancel(f, &peer[0]) == 0
       && wait_for(f, &peer[0], 0.5) == -1,
       "a withdrawn receive reports nothing, and is withdrawn once");
    kill(pid[0], SIGKILL);
    kill(pid[1], SIGKILL);
    waitpid(pid[0], NULL, 0);
    waitpid(pid[1], NULL, 0);
    fab_destroy(f);
    /* The killed peers' endpoint files. */
    for (int i = 1; i < 3; i++) {
        char path[96];

        snprintf(path, sizeof(path), "/dev/shm/%s", name[i]);
        unlink(path);
    }
    stopped_peer();
    dead_holder();
    return done_testing();
}
