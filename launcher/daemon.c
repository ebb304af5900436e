/* daemon.c - the node daemon's event loop and its part in a job.
 *
 * The loop: poll the fabric only while something of ours is in flight or
 * a peer rang within the last LINGER_S, otherwise block in epoll on the
 * doorbell (a peer posted a message for us), the signalfd (our rank ended,
 * or we are told to stop) and the rank's pipes.  Completions are routed
 * by their context: the posted down receive, one of the posted up
 * receives, or one of our sends.
 *
 * Every down message is checked before anything else (auth.h): its
 * credential must verify with the cluster key and be fresh and unseen;
 * a refused request is logged, nothing of it is done or forwarded, and a
 * refused LAUNCH is answered with FAIL records so its sender does not
 * wait for ranks that will never run.
 *
 * A job on this node: LAUNCH arrives -> forward it to the children ->
 * broadcast (bcast_run; its other completions come back to on_event) ->
 * check the image -> spawn the rank -> collect output lines and children's
 * batches into one up batch, sent one message at a time -> the job ends
 * when our rank has exited and every rank of our subtree has reported its
 * exit.  Nodes that cannot be reached, an image that fails its check, or
 * a broadcast that fails are reported as FAIL + EXIT records for the ranks
 * concerned, so the front end always hears of every rank exactly once.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/bcast.h"
#include "fanout/fabric.h"
#include "fanout/topo.h"
#include "launcher/auth.h"
#include "launcher/daemon.h"
#include "launcher/hostlist.h"
#include "launcher/nodequery.h"
#include "launcher/nodestat.h"
#include "launcher/proto.h"
#include "vmadump/vmadump.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Up receives kept posted: a child has at most one batch in flight, and
 * more wait in shm's unexpected queue until a receive is free. */
#define UP_RECVS 8

/* After a ring, keep polling this long: shm may need a few progress calls
 * to finish a receive that the ring announced. */
#define LINGER_S 0.002

#define HUGE_PAGE (2UL << 20)

/* Image buffers up to this size are kept from job to job (at most this
 * much idle memory per node); larger ones are freed when the job ends. */
#define IMAGE_KEEP_MAX (16UL << 20)

/* Poll interval while lingering or with sends in flight: fab_idle's bound. */
#define BUSY_WAIT_NS FAB_IDLE_MAX_NS

/* Signals in flight down the tree at once (each needs its own buffer). */
#define SIG_SLOTS 8

/* A signed SIGNAL message: header, signal number, credential. */
#define SIG_MSG_MAX 128

/* Our rank's stdout or stderr, read into whole lines. */
struct stream {
    int fd;                     /* -1 once at end of file */
    int id;                     /* 1 stdout, 2 stderr */
    size_t len;
    char buf[PROTO_OUT_MAX];
};

struct job {
    uint64_t id;
    int rank, n;
    struct topo *t;
    struct hostlist *nodes;
    int parent;                 /* fab peer; the front end for rank 0 */
    int *kids, nkids;           /* fab peers of the reachable children */
    int subtree;                /* ranks in our subtree, ours included */
    int exits;                  /* EXIT records sent up for the subtree */
    int own_done;               /* our rank's EXIT is in the batch */
    int orphan;                 /* the parent is gone: report nothing */
    pid_t pid;                  /* our rank, 0 before it starts */
    int exited, status;
    int pending_signal;         /* arrived before the rank started */
    struct stream out, errs;
    int in_fd;                  /* rank 0's stdin, -1 otherwise */
    struct proto_batch in;      /* stdin bytes not yet written */
    int in_eof;
    size_t image_len;
    uint64_t image_sum;         /* the checksum the LAUNCH was signed with */
    char *launch;               /* the LAUNCH message, forwarded as is */
    size_t launch_len;
    struct proto_batch batch;   /* up records not yet sent */
    char sig[SIG_SLOTS][SIG_MSG_MAX];
    int next_sig;
    struct nodestat_last *last;  /* the daemon's record of its launches */
};

struct daemon {
    const struct daemon_opts *o;
    struct auth *auth;                  /* the cluster key, our nonce cache */
    struct fab *f;
    int ep, sigfd;
    int stop;
    struct job *job;
    double linger_until;
    char down[PROTO_MSG_MAX];           /* the posted down receive */
    char (*up)[PROTO_MSG_MAX];          /* UP_RECVS posted up receives */
    char sendbuf[PROTO_MSG_MAX];        /* the up batch in flight */
    int sending;
    void *image;                        /* the image buffer, kept */
    size_t image_size;
    struct nodeq *query;                /* a QUERY being answered */
    struct nodeq *query_old;            /* the last, its sends in flight */
    struct nodestat_last last;          /* our last launch, for queries */
};

static void logmsg(struct daemon *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "vexecd %s: ", d->o->node);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- reporting up ---- */

static void add_rec(struct job *j, uint32_t type, int rank, int32_t value,
                    const void *data, size_t len)
{
    if (j->last && rank == j->rank)
        nodestat_last_note(j->last, type, value, mono_now());
    if (!j->orphan && proto_batch_add(&j->batch, type, (uint32_t)rank,
                                      value, data, (uint32_t)len) < 0)
        fprintf(stderr, "vexecd: out of memory for a report\n");
}

/* The ranks of i's subtree cannot run: FAIL and EXIT for each. */
static void fail_subtree(struct job *j, int i, const char *why)
{
    const int *kids;
    int n = topo_children(j->t, i, &kids);

    add_rec(j, PROTO_FAIL, i, EHOSTDOWN, why, strlen(why));
    add_rec(j, PROTO_EXIT, i, 127 << 8, NULL, 0);
    j->exits++;
    for (int k = 0; k < n; k++)
        fail_subtree(j, kids[k], why);
}

/* Our own rank cannot run. */
static void fail_own(struct job *j, int errnum, const char *why)
{
    add_rec(j, PROTO_FAIL, j->rank, errnum, why, strlen(why));
    add_rec(j, PROTO_EXIT, j->rank, 127 << 8, NULL, 0);
    j->exits++;
    j->own_done = 1;
}

/* Send the next piece of the batch if nothing of ours is in flight. */
static void flush_up(struct daemon *d)
{
    struct job *j = d->job;
    size_t len;

    if (!j || d->sending || j->orphan || j->batch.len == 0)
        return;
    len = proto_batch_take(&j->batch, j->id, d->sendbuf);
    if (fab_send(d->f, j->parent, PROTO_TAG_UP, d->sendbuf, len,
                 d->sendbuf) == 0) {
        d->sending = 1;
        return;
    }
    if (errno == EAGAIN) {
        proto_batch_unget(&j->batch, d->sendbuf, len);
        return;
    }
    logmsg(d, "parent gone (%s): killing rank %d", strerror(errno), j->rank);
    j->orphan = 1;
    if (j->pid > 0 && !j->exited)
        kill(j->pid, SIGKILL);
}

/* ---- the rank's output ---- */

static void stream_emit(struct job *j, struct stream *s, size_t len)
{
    add_rec(j, PROTO_OUT, j->rank, s->id, s->buf, len);
    memmove(s->buf, s->buf + len, s->len - len);
    s->len -= len;
}

/* Read what the pipe has; pass on whole lines, or a full buffer's worth
 * of a line longer than the buffer, or the rest at end of file. */
static void stream_read(struct daemon *d, struct stream *s)
{
    struct job *j = d->job;
    ssize_t n;

    while (s->fd >= 0) {
        char *nl;

        n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            epoll_ctl(d->ep, EPOLL_CTL_DEL, s->fd, NULL);
            close(s->fd);
            s->fd = -1;
            if (s->len)
                stream_emit(j, s, s->len);
            return;
        }
        s->len += (size_t)n;
        if ((nl = memrchr(s->buf, '\n', s->len)))
            stream_emit(j, s, (size_t)(nl - s->buf) + 1);
        else if (s->len == sizeof(s->buf))
            stream_emit(j, s, s->len);
    }
}

/* Our rank has exited and its pipes are drained: report its status. */
static void maybe_report_exit(struct job *j)
{
    if (j->own_done || !j->exited || j->out.fd >= 0 || j->errs.fd >= 0)
        return;
    add_rec(j, PROTO_EXIT, j->rank, j->status, NULL, 0);
    j->exits++;
    j->own_done = 1;
}

/* Write pending stdin bytes to rank 0; close its stdin at end of file. */
static void stdin_write(struct daemon *d)
{
    struct job *j = d->job;

    while (j->in_fd >= 0 && j->in.len) {
        ssize_t n = write(j->in_fd, j->in.buf, j->in.len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {                /* EPIPE: rank 0 closed its stdin */
            j->in.len = 0;
            j->in_eof = 1;
            break;
        }
        memmove(j->in.buf, j->in.buf + n, j->in.len - (size_t)n);
        j->in.len -= (size_t)n;
    }
    if (j->in_fd >= 0 && j->in_eof && j->in.len == 0) {
        epoll_ctl(d->ep, EPOLL_CTL_DEL, j->in_fd, NULL);
        close(j->in_fd);
        j->in_fd = -1;
    }
}

/* ---- starting the rank ---- */

static int watch(struct daemon *d, int fd, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.fd = fd };

    return epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
}

static int set_nonblock(int fd)
{
    return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Pipes for the rank's stdio: ours are non-blocking and close-on-exec. */
static int make_pipes(struct job *j, int child[3])
{
    int out[2], errp[2], in[2] = { -1, -1 };

    if (pipe2(out, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(errp, O_CLOEXEC) < 0)
        goto close_out;
    if (j->rank == 0 && pipe2(in, O_CLOEXEC) < 0)
        goto close_err;
    j->out = (struct stream){ .fd = out[0], .id = 1 };
    j->errs = (struct stream){ .fd = errp[0], .id = 2 };
    j->in_fd = in[1];
    child[0] = in[0];
    child[1] = out[1];
    child[2] = errp[1];
    set_nonblock(out[0]);
    set_nonblock(errp[0]);
    if (in[1] >= 0)
        set_nonblock(in[1]);
    return 0;
close_err:
    close(errp[0]);
    close(errp[1]);
close_out:
    close(out[0]);
    close(out[1]);
    return -1;
}

static int spawn_rank(struct daemon *d, size_t len, char *err, size_t errlen)
{
    struct job *j = d->job;
    struct vmad_restore_opts ro = { .rank = j->rank, .verified = 1,
                                    .label = d->o->node };
    /* The rank gets its own process group, so a signal for the job
     * reaches whatever it starts too. */
    struct vmad_spawn_io io = { .new_pgroup = 1, .lean = 1 };
    int ret;

    if (make_pipes(j, io.fds) < 0)
        return seterr(err, errlen, errno, "pipe: %s", strerror(errno));
    ret = vmad_spawn_image(d->image, len, &ro, &io, &j->pid, err, errlen);
    for (int i = 0; i < 3; i++)
        if (io.fds[i] >= 0)
            close(io.fds[i]);
    if (ret < 0)
        return -1;
    watch(d, j->out.fd, EPOLLIN);
    watch(d, j->errs.fd, EPOLLIN);
    if (j->in_fd >= 0)
        watch(d, j->in_fd, EPOLLOUT | EPOLLET);   /* no spin while stdin is empty */
    add_rec(j, PROTO_STARTED, j->rank, 0, NULL, 0);
    if (j->pending_signal)
        kill(-j->pid, j->pending_signal);
    return 0;
}

static size_t huge_round(size_t len)
{
    return (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

/* Anonymous private memory for images up to size bytes, 2 MiB aligned
 * with huge pages requested: cross-memory copies into huge pages are
 * several times faster.  Returns it, or NULL. */
static void *new_image_buffer(size_t size)
{
    char *area = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), *buf;

    if (area == MAP_FAILED)
        return NULL;
    buf = (char *)(((uintptr_t)area + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    if (buf > area)
        munmap(area, (size_t)(buf - area));
    munmap(buf + size, (size_t)(area + HUGE_PAGE - buf));
    madvise(buf, size, MADV_HUGEPAGE);
    /* Fault every page in now, before the broadcast: faults taken inside
     * the cross-memory copies of the first launch (a few GB at once on a
     * 1023-node cluster) stalled whole subtrees past the 10 s limit. */
    madvise(buf, size, MADV_POPULATE_WRITE);
    return buf;
}

static void drop_image_buffer(struct daemon *d)
{
    if (d->image)
        munmap(d->image, d->image_size);
    d->image = NULL;
    d->image_size = 0;
}

/* The buffer for this job's image: the one kept from the last job if it
 * is large enough — its pages are already allocated, and ranks started
 * from it hold copy-on-write pages of their own (vmad_spawn_image) —,
 * else a new one. */
static void *image_buffer(struct daemon *d, size_t len, char *err,
                          size_t errlen)
{
    if (d->image && d->image_size >= len)
        return d->image;
    drop_image_buffer(d);
    if (!(d->image = new_image_buffer(huge_round(len)))) {
        seterr(err, errlen, ENOMEM, "mapping a %zu-byte image: %s", len,
               strerror(errno));
        return NULL;
    }
    d->image_size = huge_round(len);
    return d->image;
}

/* ---- the job ---- */

static int on_event(void *arg, const struct fab_event *ev, char *err,
                    size_t errlen);

/* Connect to the children and hand them the LAUNCH; a child that cannot
 * be reached has its whole subtree reported failed. */
static void forward_launch(struct daemon *d)
{
    struct job *j = d->job;
    const int *kids;
    int n = topo_children(j->t, j->rank, &kids);
    char err[256], why[512];

    for (int k = 0; k < n; k++) {
        const char *name = hostlist_nth(j->nodes, kids[k]);
        int peer = fab_add_peer(d->f, name, err, sizeof(err));

        if (peer >= 0 && fab_send_wait(d->f, peer, PROTO_TAG_DOWN, j->launch,
                                       j->launch_len, j->launch,
                                       BCAST_STALL_DEFAULT_S, on_event, d,
                                       err, sizeof(err)) == 0) {
            j->kids[j->nkids++] = peer;
            continue;
        }
        snprintf(why, sizeof(why), "node %s unreachable from %s: %s", name,
                 d->o->node, err);
        logmsg(d, "%s", why);
        fail_subtree(j, kids[k], why);
    }
}

/* Is the image the one the LAUNCH was signed for?  Its checksum is
 * checked against its bytes already (vmad_check); this binds it to the
 * signed request, as far as a 64-bit checksum can (vmadump.h). */
static int image_is_signed(struct daemon *d, const void *buf, size_t len,
                           char *err, size_t errlen)
{
    struct job *j = d->job;
    uint64_t sum = vmad_image_checksum(buf, len);

    if (sum == j->image_sum)
        return 0;
    seterr(err, errlen, EACCES, "the image received is not the one the "
           "launch was signed for (checksum %#llx, signed %#llx)",
           (unsigned long long)sum, (unsigned long long)j->image_sum);
    logmsg(d, "refused the image of job %#llx: %s",
           (unsigned long long)j->id, err);
    return -1;
}

/* Receive the image into buf (NULL: it could not be had, err says why),
 * check it and start our rank from it. */
static void receive_and_start(struct daemon *d, void *buf, size_t len,
                              size_t chunk, char *err, size_t errlen)
{
    struct job *j = d->job;
    struct bcast_io io = { .parent = j->parent, .kids = j->kids,
                           .nkids = j->nkids, .other = on_event, .arg = d };

    if (!buf)
        goto fail;
    if (bcast_run(d->f, &io, buf, len, chunk, err, errlen) < 0) {
        /* The endpoint may still hold receives into buf: keep it mapped
         * (leaked) rather than let a late copy land in freed or reused
         * memory. */
        logmsg(d, "broadcast failed: %s", err);
        d->image = NULL;
        d->image_size = 0;
        goto fail;
    }
    if (vmad_check(buf, len, err, errlen) < 0
        || image_is_signed(d, buf, len, err, errlen) < 0)
        goto fail;
    add_rec(j, PROTO_IMAGE, j->rank, 0, NULL, 0);
    if (j->pending_signal == SIGKILL)
        snprintf(err, errlen, "cancelled before start");
    else if (spawn_rank(d, len, err, errlen) == 0)
        return;
fail:
    fail_own(j, errno ? errno : EIO, err);
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    if (j->out.fd >= 0)
        close(j->out.fd);
    if (j->errs.fd >= 0)
        close(j->errs.fd);
    if (j->in_fd >= 0)
        close(j->in_fd);
    topo_destroy(j->t);
    hostlist_destroy(j->nodes);
    proto_batch_free(&j->batch);
    proto_batch_free(&j->in);
    free(j->kids);
    free(j->launch);
    free(j);
}

/* Set up the job of a LAUNCH: our rank, the tree, our parent. */
static struct job *job_create(struct daemon *d, const struct proto_down *m,
                              const void *msg, size_t len, char *err,
                              size_t errlen)
{
    const struct proto_launch *l = &m->launch;
    struct job *j = calloc(1, sizeof(*j));

    if (!j || !(j->launch = malloc(len)))
        goto nomem;
    *j = (struct job){ .id = m->job, .rank = -1, .n = (int)l->nnodes,
                       .image_len = l->image_len, .image_sum = l->image_sum,
                       .launch = j->launch, .launch_len = len, .in_fd = -1,
                       .out.fd = -1, .errs.fd = -1 };
    memcpy(j->launch, msg, len);
    if (!(j->nodes = hostlist_create(l->nodes, err, errlen))
        || !(j->t = topo_create(l->tree, j->n, err, errlen)))
        goto error;
    if (hostlist_count(j->nodes) != j->n) {
        seterr(err, errlen, EPROTO, "launch names %d nodes for %d ranks",
               hostlist_count(j->nodes), j->n);
        goto error;
    }
    for (int i = 0; i < j->n && j->rank < 0; i++)
        if (!strcmp(hostlist_nth(j->nodes, i), fab_name(d->f)))
            j->rank = i;
    if (j->rank < 0) {
        seterr(err, errlen, EPROTO, "launch does not name this node");
        goto error;
    }
    j->subtree = topo_subtree_size(j->t, j->rank);
    if (!(j->kids = calloc((size_t)j->subtree, sizeof(*j->kids))))
        goto nomem;
    j->parent = fab_add_peer(d->f, j->rank ? hostlist_nth(j->nodes,
                             topo_parent(j->t, j->rank)) : l->origin,
                             err, errlen);
    if (j->parent < 0)
        goto error;
    return j;
nomem:
    seterr(err, errlen, ENOMEM, "out of memory");
error:
    job_free(j);
    return NULL;
}

/* Node 0 tells the root it took the LAUNCH: the root broadcasts the image
 * only then (gateway.c).  Waits while the root, a new peer, is not ready
 * for its first message. */
static void send_accepted(struct daemon *d)
{
    struct job *j = d->job;
    char err[256];
    size_t len;

    add_rec(j, PROTO_ACCEPTED, j->rank, 0, NULL, 0);
    len = proto_batch_take(&j->batch, j->id, d->sendbuf);
    if (fab_send_wait(d->f, j->parent, PROTO_TAG_UP, d->sendbuf, len,
                      d->sendbuf, BCAST_STALL_DEFAULT_S, on_event, d, err,
                      sizeof(err)) == 0)
        d->sending = 1;
    else
        logmsg(d, "telling the root the launch is accepted: %s", err);
}

static void start_job(struct daemon *d, const struct proto_down *m,
                      const void *msg, size_t len)
{
    char err[512];
    void *buf;

    if (d->job) {
        logmsg(d, "refusing job %#llx: job %#llx is running",
               (unsigned long long)m->job, (unsigned long long)d->job->id);
        return;
    }
    if (!(d->job = job_create(d, m, msg, len, err, sizeof(err)))) {
        logmsg(d, "refusing launch: %s", err);
        return;
    }
    nodestat_last_begin(&d->last, m->job, d->job->rank, mono_now());
    d->job->last = &d->last;
    if (d->job->rank == 0)
        send_accepted(d);
    /* The buffer first, then the children: a first launch faults in a
     * fresh buffer on every node (~6 MB; slow in this VM), and a child
     * that hears of the job before its parent can send would wait
     * through its parent's faults as well as its own. */
    buf = image_buffer(d, m->launch.image_len, err, sizeof(err));
    forward_launch(d);
    receive_and_start(d, buf, m->launch.image_len, m->launch.chunk, err,
                      sizeof(err));
}

/* Answer a LAUNCH whose credential was refused, so that a real sender
 * with a wrong key ends instead of waiting: node 0 says the whole launch
 * was refused, another node reports its subtree failed.  The job exists
 * only until that report is sent; nothing is started or forwarded, and
 * no memory is sized by the request's unchecked image length. */
static void answer_refused_launch(struct daemon *d, const struct proto_down *m,
                                  size_t len, const char *why)
{
    struct job *j;
    char text[512], err[256];

    if (d->job || !(j = job_create(d, m, d->down, len, err, sizeof(err))))
        return;
    d->job = j;
    j->image_len = 0;
    snprintf(text, sizeof(text), "node %s refused the launch: %s",
             d->o->node, why);
    if (j->rank == 0) {
        /* Rank -1 is UINT32_MAX on the wire: the whole launch. */
        add_rec(j, PROTO_FAIL, -1, EACCES, text, strlen(text));
        j->exits = j->subtree;
    } else {
        fail_subtree(j, j->rank, text);
    }
    j->own_done = 1;
}

/* Signal our rank (or remember it for the start) and pass it down. */
static void deliver_signal(struct daemon *d, const void *msg, size_t len,
                           int signo)
{
    struct job *j = d->job;
    char *slot = j->sig[j->next_sig++ % SIG_SLOTS];

    memcpy(slot, msg, len);
    for (int k = 0; k < j->nkids; k++)
        if (fab_send(d->f, j->kids[k], PROTO_TAG_DOWN, slot, len, slot) < 0)
            logmsg(d, "passing signal %d down: %s", signo, strerror(errno));
    if (j->pid > 0 && !j->exited)
        kill(-j->pid, signo);
    else
        j->pending_signal = signo;
}

/* ---- node status queries (vexec nodes; nodequery.h) ---- */

/* A verified QUERY in d->down (len bytes, signed_len of them signed):
 * answer it for our subtree. */
static void answer_query(struct daemon *d, const struct proto_down *m,
                         size_t signed_len, size_t len)
{
    struct nodestat own;
    char err[256];

    if (nodeq_make_room(&d->query, &d->query_old) < 0) {
        logmsg(d, "refusing query %#llx: query %#llx is being answered",
               (unsigned long long)m->job,
               (unsigned long long)nodeq_id(d->query));
        return;
    }
    if (!(d->query = nodeq_create(d->f, d->down, len, signed_len, err,
                                  sizeof(err)))) {
        logmsg(d, "refusing query: %s", err);
        return;
    }
    nodestat_self(&d->last, d->job != NULL, mono_now(), &own);
    nodeq_start(d->query, &own, on_event, d);
}

/* Send the answer once it is complete; forget the query once it left. */
static void serve_query(struct daemon *d)
{
    char err[256];

    if (d->query && nodeq_flush(d->query, mono_now(), err, sizeof(err)) < 0)
        logmsg(d, "%s", err);
    nodeq_reap(&d->query);
    nodeq_reap(&d->query_old);
}

/* How long the query lets us sleep: ts, or NULL for no limit. */
static struct timespec *query_wait(struct daemon *d, struct timespec *ts)
{
    long ns = nodeq_wait_ns(d->query, mono_now());

    if (ns < 0)
        return NULL;
    *ts = (struct timespec){ ns / 1000000000L, ns % 1000000000L };
    return ts;
}

static const char *type_name(uint16_t type)
{
    switch (type) {
    case PROTO_LAUNCH: return "LAUNCH";
    case PROTO_SIGNAL: return "SIGNAL";
    case PROTO_STDIN: return "STDIN";
    case PROTO_QUERY: return "QUERY";
    }
    return "request";
}

/* Check the credential of the len-byte message in d->down and admit it
 * (fresh, not seen before).  Returns the length of its signed part, with
 * *admitted 0 if it verified but is stale or replayed; or -1.  why says
 * what is wrong. */
static int check_credential(struct daemon *d, size_t len, int *admitted,
                            char *why, size_t whylen)
{
    struct auth_cred c;
    int n = auth_verify(d->auth, d->down, len, &c, why, whylen);

    *admitted = n >= 0 && auth_admit(d->auth, &c, auth_now(), why,
                                     whylen) == 0;
    return n;
}

/* A verified SIGKILL is obeyed even when stale or replayed: it is also
 * the gateway's cancel of a job whose vexec went away, which vexec signed
 * when the job started (gateway.h).  It can end only the job its job id
 * names, which the key holder started, and ending a job twice is ending
 * it once. */
static int is_kill(const struct proto_down *m)
{
    return m->type == PROTO_SIGNAL && m->signo == SIGKILL;
}

static void on_down(struct daemon *d, size_t len)
{
    struct proto_down m;
    char why[256], err[256];
    int admitted, n = check_credential(d, len, &admitted, why, sizeof(why));
    int body = n >= 0 ? n : auth_payload_len(d->down, len, NULL, 0);

    /* Without a verified credential the request is decoded only to name
     * it in the log (and to answer a LAUNCH's sender). */
    if (proto_decode_down(d->down, body >= 0 ? (size_t)body : len, &m, err,
                          sizeof(err)) < 0) {
        logmsg(d, "refused a malformed request: %s (%s)", err,
               n < 0 ? why : "credential valid");
        return;
    }
    if (n < 0 || (!admitted && !is_kill(&m))) {
        logmsg(d, "refused %s of job %#llx: %s", type_name(m.type),
               (unsigned long long)m.job, why);
        if (m.type == PROTO_LAUNCH)
            answer_refused_launch(d, &m, len, why);
        return;
    }
    if (m.type == PROTO_LAUNCH) {
        start_job(d, &m, d->down, len);
        return;
    }
    if (m.type == PROTO_QUERY) {
        answer_query(d, &m, (size_t)n, len);
        return;
    }
    if (!d->job || d->job->id != m.job)
        return;                 /* for a job that has ended here */
    if (m.type == PROTO_SIGNAL && len <= SIG_MSG_MAX)
        deliver_signal(d, d->down, len, m.signo);
    else if (m.type == PROTO_STDIN && d->job->rank == 0) {
        if (m.len == 0)
            d->job->in_eof = 1;
        else
            proto_batch_append(&d->job->in, m.data, m.len);
        stdin_write(d);
    }
}

static int count_exit(void *arg, const struct proto_rec *r)
{
    if (r->type == PROTO_EXIT)
        (*(int *)arg)++;
    return 0;
}

static void on_up(struct daemon *d, const char *msg, size_t len)
{
    struct job *j = d->job;
    uint64_t job;
    int exits = 0;
    char err[256];

    if (proto_each_rec(msg, len, &job, count_exit, &exits, err,
                       sizeof(err)) < 0) {
        logmsg(d, "bad report: %s", err);
        return;
    }
    if (nodeq_on_up(d->query, msg, len) || nodeq_on_up(d->query_old, msg, len))
        return;
    if (!j || job != j->id)
        return;
    j->exits += exits;
    if (!j->orphan)
        proto_batch_merge(&j->batch, msg, len);
}

/* Where fab completions go, in the loop and during a broadcast. */
static int on_event(void *arg, const struct fab_event *ev, char *err,
                    size_t errlen)
{
    struct daemon *d = arg;
    char *ctx = ev->ctx;

    if (ev->kind == FAB_SENT) {
        if (ctx == d->sendbuf)
            d->sending = 0;
        nodeq_on_sent(d->query, ctx);
        nodeq_on_sent(d->query_old, ctx);
        return 0;
    }
    if (ctx == d->down)
        on_down(d, ev->len);
    else if (ctx >= d->up[0] && ctx <= d->up[UP_RECVS - 1])
        on_up(d, ctx, ev->len);
    else
        return seterr(err, errlen, EPROTO, "completion of an unknown "
                      "receive");
    if (fab_recv(d->f, -1, ctx == d->down ? PROTO_TAG_DOWN : PROTO_TAG_UP,
                 ctx, PROTO_MSG_MAX, ctx) < 0)
        return seterr(err, errlen, errno, "reposting a receive: %s",
                      strerror(errno));
    return 0;
}

/* ---- the loop ---- */

/* Has this node done its part: its rank reported, every rank below it
 * reported, all of it sent?  Then the job ends here. */
static void maybe_end_job(struct daemon *d)
{
    struct job *j = d->job;

    if (!j)
        return;
    maybe_report_exit(j);
    if (j->orphan) {
        if (j->pid > 0 && !j->exited)
            return;
    } else if (!j->own_done || j->exits < j->subtree || j->batch.len
               || d->sending) {
        return;
    }
    if (fab_sends_in_flight(d->f) > 0)
        return;
    if (d->image_size > IMAGE_KEEP_MAX)
        drop_image_buffer(d);
    job_free(j);
    d->job = NULL;
}

static int progress(struct daemon *d)
{
    struct fab_event ev[16];
    char err[256];
    int n, total = 0;

    while ((n = fab_poll(d->f, ev, 16, err, sizeof(err))) > 0) {
        total += n;
        for (int i = 0; i < n; i++)
            if (on_event(d, &ev[i], err, sizeof(err)) < 0)
                logmsg(d, "%s", err);
    }
    if (n < 0)
        logmsg(d, "%s", err);
    return total;
}

static void reap(struct daemon *d)
{
    struct job *j = d->job;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (j && pid == j->pid) {
            j->exited = 1;
            j->status = status;
        }
}

static void on_signalfd(struct daemon *d)
{
    struct signalfd_siginfo si;

    while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            reap(d);
        else
            d->stop = 1;
    }
}

static void on_ready_fd(struct daemon *d, int fd, uint32_t events)
{
    struct job *j = d->job;

    if (fd == fab_fd(d->f)) {
        fab_bell_clear(d->f);
        d->linger_until = mono_now() + LINGER_S;
    } else if (fd == d->sigfd) {
        on_signalfd(d);
    } else if (j && fd == j->out.fd) {
        stream_read(d, &j->out);
    } else if (j && fd == j->errs.fd) {
        stream_read(d, &j->errs);
    } else if (j && fd == j->in_fd && (events & (EPOLLOUT | EPOLLERR))) {
        stdin_write(d);
    }
}

/* Poll the fabric soon (something is moving) or sleep until woken? */
static int busy(struct daemon *d)
{
    if (fab_sends_in_flight(d->f) > 0 || !fab_can_sleep(d->f))
        return 1;
    if (d->job && d->job->batch.len && !d->sending && !d->job->orphan)
        return 1;
    return mono_now() < d->linger_until;
}

static void serve(struct daemon *d)
{
    struct timespec tick = { 0, BUSY_WAIT_NS }, qts;
    struct epoll_event ev[16];

    while (!d->stop) {
        int n;

        if (progress(d) > 0)
            d->linger_until = mono_now() + LINGER_S;
        flush_up(d);
        maybe_end_job(d);
        serve_query(d);
        n = epoll_pwait2(d->ep, ev, 16, busy(d) ? &tick : query_wait(d, &qts),
                         NULL);
        for (int i = 0; i < n; i++)
            on_ready_fd(d, ev[i].data.fd, ev[i].events);
    }
}

static int post_receives(struct daemon *d, char *err, size_t errlen)
{
    if (fab_recv(d->f, -1, PROTO_TAG_DOWN, d->down, sizeof(d->down),
                 d->down) < 0)
        return seterr(err, errlen, errno, "posting a receive: %s",
                      strerror(errno));
    for (int i = 0; i < UP_RECVS; i++)
        if (fab_recv(d->f, -1, PROTO_TAG_UP, d->up[i], PROTO_MSG_MAX,
                     d->up[i]) < 0)
            return seterr(err, errlen, errno, "posting a receive: %s",
                          strerror(errno));
    return 0;
}

/* Signals become events on the signalfd; SIGPIPE is ignored (a rank that
 * closed its stdin shows as EPIPE). */
static int setup(struct daemon *d, char *err, size_t errlen)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0
        || (d->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return seterr(err, errlen, errno, "%s", strerror(errno));
    if (!(d->up = calloc(UP_RECVS, sizeof(*d->up))))
        return seterr(err, errlen, ENOMEM, "out of memory");
    if (!(d->auth = auth_create(d->o->key_file, err, errlen)))
        return -1;
    if (!(d->f = fab_create(d->o->endpoint, err, errlen)))
        return -1;
    if (watch(d, fab_fd(d->f), EPOLLIN) < 0 || watch(d, d->sigfd, EPOLLIN) < 0)
        return seterr(err, errlen, errno, "epoll: %s", strerror(errno));
    return post_receives(d, err, errlen);
}

static void teardown(struct daemon *d)
{
    struct job *j = d->job;

    if (j && j->pid > 0 && !j->exited) {
        kill(-j->pid, SIGKILL);
        waitpid(j->pid, NULL, 0);
    }
    job_free(j);
    nodeq_destroy(d->query);
    nodeq_destroy(d->query_old);
    drop_image_buffer(d);
    fab_destroy(d->f);
    auth_destroy(d->auth);
    free(d->up);
    if (d->ep >= 0)
        close(d->ep);
    if (d->sigfd >= 0)
        close(d->sigfd);
}

int daemon_run(const struct daemon_opts *o, char *err, size_t errlen)
{
    struct daemon *d = calloc(1, sizeof(*d));
    int ret = 0;

    if (!d)
        return seterr(err, errlen, ENOMEM, "out of memory");
    d->o = o;
    d->ep = d->sigfd = -1;
    if (setup(d, err, errlen) < 0) {
        ret = -1;
    } else {
        if (o->ready_fd >= 0) {
            if (write(o->ready_fd, "1", 1) != 1)
                logmsg(d, "ready pipe: %s", strerror(errno));
            close(o->ready_fd);
        }
        serve(d);
    }
    teardown(d);
    free(d);
    return ret;
}
