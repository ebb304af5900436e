/* gateway.c - relay one client's launch between its Unix socket and the
 * fabric (gateway.h).
 *
 * Per client: receive the LAUNCH and the image memfd, then the client's
 * signed cancel; map the image, send the LAUNCH to node 0, wait until
 * node 0 accepts it, and broadcast the image as the tree's root; then
 * relay: report batches from node 0 go to the client as they are
 * received, SIGNAL and STDIN messages from the client go to node 0.
 * Everything the client sends is signed by it (auth.h) and passed on
 * byte for byte: the gateway holds no key and can start nothing itself.  The
 * fabric is polled while a send is in flight or a peer rang recently;
 * otherwise the gateway sleeps in epoll like a node daemon.
 *
 * Queries (vexec nodes) have a socket of their own and are answered by
 * the tree's engine (nodequery.h), with the gateway as the tree's origin.
 */
#include "common/clock.h"
#include "common/evwait.h"
#include "common/err.h"
#include "fanout/bcast.h"
#include "fanout/bell.h"
#include "fanout/fabric.h"
#include "fanout/netaddr.h"
#include "launcher/auth.h"
#include "launcher/gateway.h"
#include "launcher/hostlist.h"
#include "launcher/nodequery.h"
#include "launcher/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Report batches from node 0 kept posted (node 0 sends one at a time). */
#define UP_RECVS 4

/* Client messages in flight to node 0 at once (each needs its buffer). */
#define DOWN_SLOTS 8

/* Keep polling this long after a ring (see daemon.c). */
#define LINGER_S 0.002

/* Pages of the lent image memfd kept between launches; a bigger image's
 * rest is freed once it was sent. */
#define LEND_KEEP (64ul << 20)

/* One shot: how long the cancel sent when the client left may take to
 * leave before the gateway exits anyway. */
#define DRAIN_S 2.0
/* The client's signed SIGKILL: header, signal number, credential. */
#define CANCEL_MAX 128

struct gw {
    const struct gateway_opts *o;
    struct fab *f;
    int lsock, ep, sigfd, stop;
    int client;                         /* connected client, or -1 */
    int node0;                          /* fab peer */
    uint64_t job;
    int answer;                         /* node 0: 1 accepted, -1 refused */
    int refused;                        /* the client's launch was refused */
    double linger_until;
    char launch[PROTO_MSG_MAX];
    char cancel[CANCEL_MAX];            /* the client's signed SIGKILL */
    ssize_t cancel_len;
    char (*up)[PROTO_MSG_MAX];
    char (*down)[PROTO_MSG_MAX];
    int down_busy[DOWN_SLOTS];          /* its send has not completed */
    int next_down;
    int lend_fd;                        /* the image memfd lent, or -1 */
    int lent;                           /* lent to the current client */
    void *lend_map;                     /* its mapping, lend_maplen long */
    size_t lend_maplen;
    int qsock, qclient;                 /* queries: listening, connected */
    int qclient_asked;                  /* qclient sent its QUERY */
    struct nodeq *query;                /* the query being answered */
    struct nodeq *query_old;            /* the last, its sends in flight */
};

/* One write per line, as the daemons do (daemon.c): the log is shared. */
static void logmsg(const char *fmt, const char *arg)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "vexec gateway: ");

    if (n >= 0 && (size_t)n < sizeof(line))
        snprintf(line + n, sizeof(line) - (size_t)n, fmt, arg);
    n = (int)strnlen(line, sizeof(line) - 2);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;     /* nowhere left to say it */
}

/* Tell the client the launch failed: a FAIL record for no rank. */
static void tell_failure(struct gw *g, const char *why)
{
    static char msg[PROTO_MSG_MAX];
    struct proto_batch b = { 0 };
    size_t len;

    if (g->client < 0)
        return;
    proto_batch_add(&b, PROTO_FAIL, UINT32_MAX, EIO, why, strlen(why));
    len = proto_batch_take(&b, g->job, msg);
    if (send(g->client, msg, len, MSG_NOSIGNAL) < 0)
        logmsg("telling the client: %s", strerror(errno));
    proto_batch_free(&b);
}

static int watch(struct gw *g, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

    return epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* The client is gone, or is sent away: listen for the next one.  What
 * it sent and we did not read is read first: closing a Unix socket with
 * unread messages resets the client's end, and the client would then see
 * that instead of the failure we told it. */
static void drop_client(struct gw *g)
{
    char buf[64];

    if (g->client < 0)
        return;
    while (recv(g->client, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) > 0)
        continue;
    epoll_ctl(g->ep, EPOLL_CTL_DEL, g->client, NULL);
    close(g->client);
    g->client = -1;
    if (g->lsock >= 0)
        watch(g, g->lsock);
}

/* Node 0's answer to the LAUNCH, among the records of a batch. */
static int note_answer(void *arg, const struct proto_rec *r)
{
    struct gw *g = arg;

    if (r->type == PROTO_ACCEPTED && r->rank == 0)
        g->answer = 1;
    else if (r->type == PROTO_FAIL && r->rank == UINT32_MAX)
        g->answer = -1;
    return 0;
}

/* A report batch from node 0: pass it to the client as it is. */
static int on_event(void *arg, const struct fab_event *ev, char *err,
                    size_t errlen)
{
    struct gw *g = arg;
    char *ctx = ev->ctx;
    uint64_t job;

    if (ev->kind == FAB_SENT || (ev->kind == FAB_FAILED && !ev->recv)) {
        for (int i = 0; i < DOWN_SLOTS; i++)
            if (ctx == g->down[i])
                g->down_busy[i] = 0;
        nodeq_on_sent(g->query, ctx);
        nodeq_on_sent(g->query_old, ctx);
        return 0;
    }
    /* Only our report receives are expected; a failed broadcast may leave
     * completions of its own behind. */
    if (ctx < g->up[0] || ctx > g->up[UP_RECVS - 1])
        return 0;
    if (ev->kind == FAB_FAILED)
        ;   /* its sender died mid-copy: post it again */
    else if (nodeq_on_up(g->query, ctx, ev->len)
             || nodeq_on_up(g->query_old, ctx, ev->len))
        goto repost;            /* an answer to the query, for its client */
    else if (!g->answer)
        proto_each_rec(ctx, ev->len, &job, note_answer, g, NULL, 0);
    if (ev->kind == FAB_RECEIVED && g->client >= 0
        && send(g->client, ctx, ev->len, MSG_NOSIGNAL) < 0)
        drop_client(g);
repost:
    if (fab_recv(g->f, -1, PROTO_TAG_UP, ctx, PROTO_MSG_MAX, ctx) < 0)
        return seterr(err, errlen, errno, "reposting a receive: %s",
                      strerror(errno));
    return 0;
}

static int progress(struct gw *g)
{
    struct fab_event ev[16];
    char err[256];
    int n, total = 0;

    while ((n = fab_poll(g->f, ev, 16, err, sizeof(err))) > 0) {
        total += n;
        for (int i = 0; i < n; i++)
            if (on_event(g, &ev[i], err, sizeof(err)) < 0)
                logmsg("%s", err);
    }
    if (n < 0)
        logmsg("%s", err);
    return total;
}

/* Post a send to node 0, waiting while the provider says EAGAIN. */
static int send_down(struct gw *g, const void *msg, size_t len, void *ctx)
{
    char err[256];

    return fab_send_wait(g->f, g->node0, PROTO_TAG_DOWN, msg, len, ctx,
                         BCAST_STALL_DEFAULT_S, on_event, g, err,
                         sizeof(err));
}

/* Receive the client's LAUNCH and its image fd. */
static ssize_t recv_launch(struct gw *g, int *fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { g->launch, sizeof(g->launch) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c;
    ssize_t n = recvmsg(g->client, &mh, MSG_CMSG_CLOEXEC);

    *fd = -1;
    c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        memcpy(fd, CMSG_DATA(c), sizeof(int));
    return n;
}

/* The memfd we lend, made at the first lending.  Only ever grown (sealed
 * so): a client cannot shrink it under our mapping.  Returns it, or -1. */
static int lend_memfd(struct gw *g)
{
    if (g->lend_fd >= 0)
        return g->lend_fd;
    g->lend_fd = memfd_create("vexec-gw-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (g->lend_fd >= 0
        && fcntl(g->lend_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        close(g->lend_fd);
        g->lend_fd = -1;
    }
    return g->lend_fd;
}

/* Offer the client our image memfd (gateway.h): to a client of our own
 * user only, since it holds the last launch's image.  Returns 0, or -1 if
 * the client is gone. */
static int lend_buffer(struct gw *g)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { (void *)GATEWAY_LEND, sizeof(GATEWAY_LEND) - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *c;
    struct ucred cred;
    socklen_t clen = sizeof(cred);

    g->lent = getsockopt(g->client, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0
              && cred.uid == geteuid() && lend_memfd(g) >= 0;
    if (g->lent) {
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &g->lend_fd, sizeof(int));
    }
    if (sendmsg(g->client, &mh, MSG_NOSIGNAL) < 0) {
        g->lent = 0;
        return -1;
    }
    return 0;
}

/* The lent memfd mapped for an image of len bytes, or NULL (errno). */
static void *lent_image(struct gw *g, size_t len)
{
    struct stat st;

    if (fstat(g->lend_fd, &st) < 0)
        return NULL;
    if ((uint64_t)st.st_size < len) {
        errno = EPROTO;
        return NULL;
    }
    if (len > g->lend_maplen) {
        if (g->lend_map)
            munmap(g->lend_map, g->lend_maplen);
        g->lend_maplen = 0;
        g->lend_map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
                           g->lend_fd, 0);
        if (g->lend_map == MAP_FAILED) {
            g->lend_map = NULL;
            return NULL;
        }
        g->lend_maplen = (size_t)st.st_size;
    }
    return g->lend_map;
}

/* After a big image, free what the lent memfd holds beyond LEND_KEEP. */
static void trim_lent(struct gw *g, size_t len)
{
    if (len > LEND_KEEP
        && fallocate(g->lend_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     LEND_KEEP, (off_t)(len - LEND_KEEP)) < 0)
        logmsg("freeing the image memfd: %s", strerror(errno));
}

/* The client's signed SIGKILL for its job, sent right after the LAUNCH. */
static int recv_cancel(struct gw *g, char *err, size_t errlen)
{
    g->cancel_len = recv(g->client, g->cancel, sizeof(g->cancel), 0);
    if (g->cancel_len <= 0)
        return seterr(err, errlen, EPROTO, "the request carries no cancel");
    return 0;
}

/* Wait for node 0's answer to the LAUNCH.  The image goes out only once
 * node 0 accepted it: a node that refused a launch takes no part in its
 * broadcast, whose messages would stay queued on its endpoint and be
 * taken for the next launch's.  A refusal has gone to the client with the
 * batch that carried it.  Returns 0, or -1 (EACCES: refused). */
static int wait_accepted(struct gw *g, char *err, size_t errlen)
{
    double end = mono_now() + BCAST_STALL_DEFAULT_S;

    while (!g->answer) {
        if (mono_now() > end)
            return seterr(err, errlen, ETIMEDOUT, "node 0 did not answer "
                          "the launch within %.0f s", BCAST_STALL_DEFAULT_S);
        if (progress(g) == 0)
            fab_idle(g->f);
    }
    if (g->answer < 0)
        return seterr(err, errlen, EACCES, "node 0 refused the launch");
    return 0;
}

/* Start the client's job: LAUNCH to node 0, then the image once node 0
 * accepted it.  Returns 0, or -1 (see serve_client). */
/* How long node 0 may take no chunk before the gateway gives up: as long
 * as a daemon waits for its parent's data (daemon.c), since node 0 may be
 * slow for the same reasons: on the first launch of a big image every
 * node faults its whole buffer in at once (16 GB for 255 nodes x 64 MB).
 * A node 0 that died is noticed sooner, by vexec. */
#define GW_STALL_S 60.0

static int start(struct gw *g, char *err, size_t errlen)
{
    struct proto_down d;
    struct hostlist *h = NULL;
    void *image = MAP_FAILED;
    struct bcast_io io = { .nkids = 1, .parent = -1, .other = on_event,
                           .arg = g, .stall_s = GW_STALL_S };
    int fd, ret = -1, body;
    ssize_t n = recv_launch(g, &fd);

    if (n == 0) {
        /* A liveness probe (cluster_gateway_up) connects and leaves. */
        seterr(err, errlen, ENOTCONN, "the client left");
        goto out;
    }
    if (n < 0 || (fd < 0 && !g->lent)) {
        seterr(err, errlen, EPROTO, "the request carries no image");
        goto out;
    }
    /* Read, not checked: node 0 checks the credential. */
    if ((body = auth_payload_len(g->launch, (size_t)n, err, errlen)) < 0
        || proto_decode_down(g->launch, (size_t)body, &d, err, errlen) < 0
        || recv_cancel(g, err, errlen) < 0)
        goto out;
    if (d.type != PROTO_LAUNCH) {
        seterr(err, errlen, EPROTO, "the first request is not a launch");
        goto out;
    }
    /* Node 0 sends its reports to the origin the LAUNCH names: a vexec
     * that read the cluster record before `vexec-cluster up` replaced a
     * dead gateway names the dead one, and would wait for reports that
     * go nowhere. */
    if (!netaddr_is_tcp(fab_name(g->f))
        && strcmp(d.launch.origin, fab_name(g->f))) {
        seterr(err, errlen, ESTALE, "the launch names gateway %s, but this "
               "is %s (the cluster's gateway was replaced): run vexec again",
               d.launch.origin, fab_name(g->f));
        goto out;
    }
    g->job = d.job;
    io.stream = proto_stream(d.job, 0);
    if (!(h = hostlist_create(d.launch.nodes, err, errlen))
        || (g->node0 = fab_add_peer(g->f, hostlist_nth(h, 0), err,
                                    errlen)) < 0)
        goto out;
    if (fd < 0) {
        if (!(image = lent_image(g, d.launch.image_len))) {
            image = MAP_FAILED;
            seterr(err, errlen, errno, "mapping the image: %s",
                   errno == EPROTO ? "longer than the memfd it was written to"
                                   : strerror(errno));
            goto out;
        }
    } else if ((image = mmap(NULL, d.launch.image_len, PROT_READ, MAP_SHARED,
                             fd, 0)) == MAP_FAILED) {
        seterr(err, errlen, errno, "mapping the image: %s", strerror(errno));
        goto out;
    }
    io.kids = &g->node0;
    if (send_down(g, g->launch, (size_t)n, g->launch) < 0) {
        seterr(err, errlen, errno, "sending to %s: %s", hostlist_nth(h, 0),
               strerror(errno));
        goto out;
    }
    if (wait_accepted(g, err, errlen) < 0)
        goto out;
    if (bcast_run(g->f, &io, image, d.launch.image_len, d.launch.chunk, err,
                  errlen) == 0)
        ret = 0;
out:
    if (image != MAP_FAILED && fd >= 0)
        munmap(image, d.launch.image_len);
    else if (image != MAP_FAILED)
        trim_lent(g, d.launch.image_len);
    if (fd >= 0)
        close(fd);
    hostlist_destroy(h);
    return ret;
}

/* The next down buffer, once the send from it has completed: shm may
 * still read a buffer after its send was posted, and a message changed
 * under it would arrive as a copy of a later one, which daemons refuse
 * as a replay.  Returns its index, or -1 if it stays busy. */
static int free_slot(struct gw *g)
{
    int i = g->next_down % DOWN_SLOTS;
    double end = mono_now() + BCAST_STALL_DEFAULT_S;

    while (g->down_busy[i] && mono_now() < end)
        if (progress(g) == 0)
            fab_idle(g->f);
    if (g->down_busy[i])
        return -1;
    g->next_down++;
    return i;
}

/* Send slot i's len bytes to node 0. */
static int send_slot(struct gw *g, int i, size_t len)
{
    if (send_down(g, g->down[i], len, g->down[i]) < 0)
        return -1;
    g->down_busy[i] = 1;
    return 0;
}

/* A SIGNAL or STDIN message from the client: on to node 0. */
static void relay_down(struct gw *g)
{
    int i = free_slot(g);
    ssize_t n;

    if (i < 0) {
        logmsg("relaying to node 0: %s", "no send completed for 10 s");
        drop_client(g);
        return;
    }
    n = recv(g->client, g->down[i], PROTO_MSG_MAX, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) {
        g->next_down--;
        return;
    }
    if (n <= 0) {
        drop_client(g);
        return;
    }
    if (g->refused)
        return;                 /* for a job that does not exist */
    if (send_slot(g, i, (size_t)n) < 0)
        logmsg("relaying to node 0: %s", strerror(errno));
}

/* The client left: whatever still runs of its job is killed, with the
 * SIGKILL the client signed for that. */
static void cancel_job(struct gw *g)
{
    int i;

    if (g->cancel_len <= 0 || (i = free_slot(g)) < 0)
        return;
    memcpy(g->down[i], g->cancel, (size_t)g->cancel_len);
    if (send_slot(g, i, (size_t)g->cancel_len) < 0)
        logmsg("cancelling: %s", strerror(errno));
    g->cancel_len = 0;
}

/* ---- node status queries (vexec nodes) ---- */

static void query_drop(struct gw *g)
{
    if (g->qclient < 0)
        return;
    epoll_ctl(g->ep, EPOLL_CTL_DEL, g->qclient, NULL);
    close(g->qclient);
    g->qclient = -1;
    if (g->qsock >= 0)
        watch(g, g->qsock);
}

/* Tell the query's client it cannot be answered, and let it go. */
static void query_refuse(struct gw *g, uint64_t id, const char *why)
{
    char msg[1024];
    struct proto_batch b = { 0 };
    size_t len;

    logmsg("query refused: %s", why);
    if (proto_batch_add(&b, PROTO_FAIL, UINT32_MAX, EPROTO, why,
                        (uint32_t)strnlen(why, 512)) == 0
        && (len = proto_batch_take(&b, id, msg)) > 0)
        send(g->qclient, msg, len, MSG_NOSIGNAL);
    proto_batch_free(&b);
    query_drop(g);
}

/* The client's QUERY: start answering it.  Anything after it, or its
 * leaving, ends the client. */
static void query_read(struct gw *g)
{
    static char msg[PROTO_MSG_MAX];
    char err[512];
    ssize_t n = recv(g->qclient, msg, sizeof(msg), MSG_DONTWAIT);
    int body;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || (g->query && g->qclient_asked)) {
        query_drop(g);
        return;
    }
    g->qclient_asked = 1;
    /* Read, not checked: every node checks the credential. */
    if (nodeq_make_room(&g->query, &g->query_old) < 0)
        query_refuse(g, 0, "the previous query is still being answered");
    else if ((body = auth_payload_len(msg, (size_t)n, err, sizeof(err))) < 0
             || !(g->query = nodeq_create(g->f, msg, (size_t)n, (size_t)body,
                                          err, sizeof(err))))
        query_refuse(g, 0, err);
    else
        nodeq_start(g->query, NULL, on_event, g);
}

/* Hand the client the answer once it is complete. */
static void query_serve(struct gw *g)
{
    static char msg[PROTO_MSG_MAX];
    size_t len;

    nodeq_reap(&g->query_old);
    if (!g->query)
        return;
    while ((len = nodeq_take(g->query, mono_now(), msg)) > 0)
        if (g->qclient >= 0 && send(g->qclient, msg, len, MSG_NOSIGNAL) < 0)
            query_drop(g);
    nodeq_reap(&g->query);
}

/* How long the query lets the gateway sleep: ts, or NULL for no limit. */
static struct timespec *query_wait(struct gw *g, struct timespec *ts)
{
    long ns = nodeq_wait_ns(g->query, mono_now());

    if (ns < 0)
        return NULL;
    *ts = (struct timespec){ ns / 1000000000L, ns % 1000000000L };
    return ts;
}

static void query_accept(struct gw *g)
{
    if (g->qclient >= 0)
        return;
    if ((g->qclient = accept4(g->qsock, NULL, NULL, SOCK_CLOEXEC)) < 0)
        return;
    g->qclient_asked = 0;
    epoll_ctl(g->ep, EPOLL_CTL_DEL, g->qsock, NULL);
    watch(g, g->qclient);
}

static void on_ready(struct gw *g, int fd)
{
    struct signalfd_siginfo si;

    if (fd == g->sigfd) {
        while (read(g->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            g->stop = 1;
    } else if (fd == fab_fd(g->f)) {
        fab_bell_clear(g->f);
        g->linger_until = mono_now() + LINGER_S;
    } else if (fd == g->client) {
        relay_down(g);
    } else if (fd == g->qclient) {
        query_read(g);
    } else if (fd == g->qsock) {
        query_accept(g);
    } else if (fd == g->lsock && g->client < 0) {
        g->client = accept4(g->lsock, NULL, NULL, SOCK_CLOEXEC);
    }
}

/* Serve a newly accepted client until it leaves; others wait in the
 * listen queue meanwhile. */
static void serve_client(struct gw *g)
{
    char err[512];
    int ret;

    if (g->lsock >= 0)
        epoll_ctl(g->ep, EPOLL_CTL_DEL, g->lsock, NULL);
    g->cancel_len = 0;
    g->answer = 0;
    if (g->o->client_fd < 0 && lend_buffer(g) < 0) {
        drop_client(g);     /* a liveness probe, gone already */
        return;
    }
    ret = start(g, err, sizeof(err));
    g->refused = ret < 0 && g->answer < 0;
    if (g->refused) {
        /* Node 0 has told the client; the client leaves when it has read
         * that (closing first could reset the connection before it does,
         * if it had sent more), and nothing it sends goes on. */
        g->cancel_len = 0;
    } else if (ret < 0) {
        if (errno != ENOTCONN) {
            logmsg("launch failed: %s", err);
            tell_failure(g, err);
        }
        drop_client(g);
        return;
    }
    watch(g, g->client);
}

/* One shot, the client gone: let the cancel leave, then stop. */
static void drain(struct gw *g)
{
    double end = mono_now() + DRAIN_S;

    while (fab_sends_in_flight(g->f) > 0 && mono_now() < end)
        if (progress(g) == 0)
            fab_idle(g->f);
    g->stop = 1;
}

static void serve(struct gw *g)
{
    struct timespec tick = { 0, FAB_IDLE_MAX_NS }, qts;
    struct epoll_event ev[8];
    int had_client = g->client >= 0;

    while (!g->stop) {
        int n, busy;

        if (progress(g) > 0)
            g->linger_until = mono_now() + LINGER_S;
        if (had_client && g->client < 0) {
            cancel_job(g);
            if (g->o->client_fd >= 0) {
                drain(g);
                break;
            }
        }
        if (g->o->query_fd >= 0 && g->qclient < 0) {
            drain(g);           /* the query's last sends */
            break;
        }
        had_client = g->client >= 0;
        query_serve(g);
        busy = fab_sends_in_flight(g->f) > 0 || mono_now() < g->linger_until
               || !fab_can_sleep(g->f);
        n = evwait(g->ep, ev, 8, busy ? &tick : query_wait(g, &qts));
        for (int i = 0; i < n; i++) {
            int was = g->client;

            on_ready(g, ev[i].data.fd);
            if (was < 0 && g->client >= 0) {
                serve_client(g);
                had_client = g->client >= 0;
            }
        }
    }
}

/* A cluster socket of kind, where vexec clients connect: into *fd. */
static int listen_kind(struct gw *g, const char *kind, int *fd, char *err,
                       size_t errlen)
{
    struct sockaddr_un sa;
    socklen_t len = bell_sockaddr(kind, g->o->cluster, &sa);

    if ((*fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        return seterr(err, errlen, errno, "%s", strerror(errno));
    if (bind(*fd, (struct sockaddr *)&sa, len) < 0 || listen(*fd, 64) < 0)
        return seterr(err, errlen, errno, "gateway socket: %s",
                      strerror(errno));
    return watch(g, *fd) < 0 ? seterr(err, errlen, errno, "epoll: %s",
                                      strerror(errno)) : 0;
}

/* The cluster's sockets: launches, and queries. */
static int listen_cluster(struct gw *g, char *err, size_t errlen)
{
    if (listen_kind(g, GATEWAY_KIND, &g->lsock, err, errlen) < 0)
        return -1;
    return listen_kind(g, GATEWAY_QUERY_KIND, &g->qsock, err, errlen);
}

/* Started by vexec for one client over tcp, not a cluster's gateway? */
static int one_shot(const struct gw *g)
{
    return g->o->client_fd >= 0 || g->o->query_fd >= 0;
}

static int setup(struct gw *g, char *err, size_t errlen)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    g->up = calloc(UP_RECVS, sizeof(*g->up));
    g->down = calloc(DOWN_SLOTS, sizeof(*g->down));
    if (!g->up || !g->down)
        return seterr(err, errlen, ENOMEM, "out of memory");
    if ((g->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0
        || (g->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return seterr(err, errlen, errno, "%s", strerror(errno));
    if (!one_shot(g) && listen_cluster(g, err, errlen) < 0)
        return -1;
    if (!(g->f = fab_create(g->o->endpoint, err, errlen)))
        return -1;
    for (int i = 0; i < UP_RECVS; i++)
        if (fab_recv(g->f, -1, PROTO_TAG_UP, g->up[i], PROTO_MSG_MAX,
                     g->up[i]) < 0)
            return seterr(err, errlen, errno, "posting a receive: %s",
                          strerror(errno));
    if (watch(g, g->sigfd) < 0 || watch(g, fab_fd(g->f)) < 0)
        return seterr(err, errlen, errno, "epoll: %s", strerror(errno));
    return 0;
}

/* Say we serve: one byte for vexec-cluster, which counts its ready
 * daemons; our endpoint's name for a one-shot gateway's vexec, which
 * puts it in the LAUNCH as the tree's origin. */
static void announce(struct gw *g)
{
    char msg[FAB_NAME_MAX + 2];
    int len;

    if (g->o->ready_fd < 0)
        return;
    if (one_shot(g))
        len = snprintf(msg, sizeof(msg), "%s\n", fab_name(g->f));
    else
        len = snprintf(msg, sizeof(msg), "1");
    if (write(g->o->ready_fd, msg, (size_t)len) != len)
        logmsg("ready pipe: %s", strerror(errno));
    close(g->o->ready_fd);
}

int gateway_run(const struct gateway_opts *o, char *err, size_t errlen)
{
    struct gw g = { .o = o, .lsock = -1, .ep = -1, .sigfd = -1,
                    .client = -1, .qsock = -1, .qclient = -1, .lend_fd = -1 };
    int ret = 0;

    if (setup(&g, err, errlen) < 0) {
        ret = -1;
    } else {
        announce(&g);
        if (o->client_fd >= 0) {
            g.client = o->client_fd;
            serve_client(&g);
        } else if (o->query_fd >= 0) {
            g.qclient = o->query_fd;
            watch(&g, g.qclient);
        }
        /* A one-shot launch that failed to start has nothing to cancel. */
        if (o->client_fd < 0 || g.client >= 0)
            serve(&g);
    }
    drop_client(&g);
    query_drop(&g);
    nodeq_destroy(g.query);
    nodeq_destroy(g.query_old);
    fab_destroy(g.f);
    free(g.up);
    free(g.down);
    if (g.lsock >= 0)
        close(g.lsock);
    if (g.qsock >= 0)
        close(g.qsock);
    if (g.ep >= 0)
        close(g.ep);
    if (g.sigfd >= 0)
        close(g.sigfd);
    if (g.lend_map)
        munmap(g.lend_map, g.lend_maplen);
    if (g.lend_fd >= 0)
        close(g.lend_fd);
    return ret;
}
