/* daemon.c - the node daemon's event loop and its part in a job.
 *
 * The loop: poll the fabric again at once after a turn that moved
 * something, keep polling while something of ours is in flight, and
 * otherwise block in epoll on the doorbell (a peer posted a message for
 * us), the signalfd (our rank ended, or we are told to stop) and the
 * rank's pipes.  The rings of a turn's sends are held until its end, so a
 * peer sent several messages in one turn is woken once (fab_hold_rings).
 * Completions are routed by their context: the posted down receive, one
 * of the posted up receives, or one of our sends.
 *
 * Every down message is checked before anything else (auth.h): its
 * credential must verify with the cluster key and be fresh and unseen;
 * a refused request is logged, nothing of it is done or forwarded, and a
 * refused LAUNCH is answered with FAIL records so its sender does not
 * wait for ranks that will never run.
 *
 * A job on this node: LAUNCH arrives -> forward it to the children ->
 * the image broadcast (a bcast object the loop drives) -> once the image
 * is in, check it and spawn the rank (sends to the children go on) ->
 * collect output lines and children's batches into one up batch, sent
 * one message at a time -> the job ends when our rank has exited, every
 * rank of our subtree has reported its exit (counted once per rank) and
 * every send is done.  Nodes that cannot be reached, an image that fails
 * its check, or a broadcast that fails are reported as FAIL + EXIT records
 * for the ranks concerned, so the front end always hears of every rank.
 * A child that dies, and a parent that dies, are adopt.c's: the tree is
 * repaired around them while the job runs.
 */
#include "common/clock.h"
#include "common/evwait.h"
#include "common/err.h"
#include "launcher/daemon_priv.h"
#include "launcher/sweep.h"
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

/* The whole line goes out in one write: the daemons of an emulated
 * cluster share one log file (O_APPEND), and a line written in pieces
 * was seen cut in two by another daemon's line. */
void daemon_log(struct daemon *d, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "vexecd %s: ", d->o->node);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    n = (int)strnlen(line, sizeof(line) - 2);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;     /* nowhere left to say it */
}

/* ---- reporting up ---- */

void job_rec(struct job *j, uint32_t type, int rank, int32_t value,
             const void *data, size_t len)
{
    if (j->last && rank == j->rank)
        nodestat_last_note(j->last, type, value, mono_now());
    if (!j->orphan && proto_batch_add(&j->batch, type, (uint32_t)rank,
                                      value, data, (uint32_t)len) < 0)
        fprintf(stderr, "vexecd: out of memory for a report\n");
}

int job_note_exit(struct job *j, int rank, int status)
{
    if (rank < 0 || rank >= j->n || j->exited[rank])
        return 0;
    j->exited[rank] = 1;
    j->status[rank] = status;
    j->exits++;
    return 1;
}

/* The ranks of i's subtree cannot run: FAIL and EXIT for each. */
void job_fail_subtree(struct job *j, int i, const char *why)
{
    const int *kids;
    int n = topo_children(j->t, i, &kids);

    job_rec(j, PROTO_FAIL, i, EHOSTDOWN, why, strlen(why));
    job_rec(j, PROTO_EXIT, i, 127 << 8, NULL, 0);
    job_note_exit(j, i, 127 << 8);
    for (int k = 0; k < n; k++)
        job_fail_subtree(j, kids[k], why);
}

/* Our own rank cannot run. */
void job_fail_own(struct job *j, int errnum, const char *why)
{
    job_rec(j, PROTO_FAIL, j->rank, errnum, why, strlen(why));
    job_rec(j, PROTO_EXIT, j->rank, 127 << 8, NULL, 0);
    job_note_exit(j, j->rank, 127 << 8);
    j->own_done = 1;
}

/* Touch every page of a PROTO_MSG_MAX message buffer the first time it is
 * used (*full says whether it was).  Its footprint is then set by its
 * first use, not grown page by page as larger messages come: node 0,
 * which gets the largest batches, grew for hundreds of launches as its
 * 8 up receive buffers met ever larger ones.  Only bytes no message
 * occupies are written: a receive is touched before it is posted again,
 * the send buffer before a batch is put in it. */
static void touch_once(char *buf, unsigned char *full)
{
    if (*full)
        return;
    memset(buf + 64, 0, PROTO_MSG_MAX - 64);
    *full = 1;
}

/* Send the next piece of the batch if nothing of ours is in flight. */
static void flush_up(struct daemon *d)
{
    struct job *j = d->job;
    size_t len;

    if (!j || d->sending || j->orphan || j->parent_lost || j->batch.len == 0)
        return;
    touch_once(d->sendbuf, &d->send_full);
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
    /* Kill nothing: adopt.c waits for the adopter. */
    proto_batch_unget(&j->batch, d->sendbuf, len);
    daemon_log(d, "parent unreachable (%s): waiting to be adopted",
               strerror(errno));
    j->parent_lost = mono_now();
}

/* ---- the job ---- */

static int on_event(void *arg, const struct fab_event *ev, char *err,
                    size_t errlen);
static void retire_job(struct daemon *d);

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
                                       err, sizeof(err)) == 0
            && adopt_add_kid(j, kids[k], peer) == 0)
            continue;
        snprintf(why, sizeof(why), "unreachable from %s: %s", d->o->node,
                 err);
        daemon_log(d, "node %s %s", name, why);
        adopt_dead(d, kids[k], PROTO_DEAD_DIED, why);
    }
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
    adopt_end(j);
    bcast_destroy(j->bc);
    topo_destroy(j->t);
    hostlist_destroy(j->nodes);
    proto_batch_free(&j->batch);
    proto_batch_free(&j->in);
    for (int k = 0; k < j->nkid; k++)
        free(j->kid[k].adopt);
    free(j->kid);
    free(j->exited);
    free(j->status);
    free(j->launch);
    free(j);
}

/* Set up the job of a LAUNCH: our rank, the tree, our parent (the
 * tree's for parent_rank -2). */
static struct job *job_create(struct daemon *d, const struct proto_down *m,
                              const void *msg, size_t len, int parent_rank,
                              char *err, size_t errlen)
{
    const struct proto_launch *l = &m->launch;
    struct job *j = calloc(1, sizeof(*j));

    if (!j || !(j->launch = malloc(len)))
        goto nomem;
    /* Field by field: calloc zeroed the rest, and assigning a whole
     * struct job (67 KB) would write it all again on every node. */
    j->id = m->job;
    j->rank = -1;
    j->n = (int)l->nnodes;
    j->image_len = l->image_len;
    j->image_sum = l->image_sum;
    j->launch_len = len;
    j->in_fd = j->out.fd = j->errs.fd = j->up_probe = -1;
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
    if (!(j->exited = calloc((size_t)j->n, 1))
        || !(j->status = calloc((size_t)j->n, sizeof(*j->status))))
        goto nomem;
    j->parent_rank = parent_rank == -2 ? topo_parent(j->t, j->rank)
                                       : parent_rank;
    j->parent = fab_add_peer(d->f, j->rank ? hostlist_nth(j->nodes,
                             j->parent_rank) : l->origin, err, errlen);
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

    job_rec(j, PROTO_ACCEPTED, j->rank, 0, NULL, 0);
    len = proto_batch_take(&j->batch, j->id, d->sendbuf);
    if (fab_send_wait(d->f, j->parent, PROTO_TAG_UP, d->sendbuf, len,
                      d->sendbuf, BCAST_STALL_DEFAULT_S, on_event, d, err,
                      sizeof(err)) == 0)
        d->sending = 1;
    else
        daemon_log(d, "telling the root the launch is accepted: %s", err);
}

/* How long a LAUNCH may wait for the job before it to end: below vexec's
 * 10 s wait for node 0's answer, above the ~1.5 s node 0 takes to see a
 * one-shot gateway gone (adopt.c). */
#define HOLD_S 5.0

/* Is the job ending anyway: given up, cancelled, or every rank of its
 * subtree exited?  A LAUNCH that comes then is held, not refused: a
 * vexec killed (kill -9) and started again at once finds node 0 still
 * waiting to see its old gateway gone, with reports it cannot send. */
static int job_ending(const struct job *j)
{
    return j->orphan || j->killed || (j->own_done && j->exits >= j->subtree);
}

/* Start the held LAUNCH once the job before it has ended; refuse it when
 * that takes longer than HOLD_S.  Its credential was admitted when it
 * came. */
static void start_held(struct daemon *d)
{
    struct proto_down m;
    char err[256];
    int body;

    if (!d->held || (d->job && mono_now() < d->held_until))
        return;
    if (d->job)
        daemon_log(d, "refusing a held launch: job %#llx is still running",
                   (unsigned long long)d->job->id);
    else if ((body = auth_payload_len(d->held, d->held_len, err,
                                      sizeof(err))) < 0
             || proto_decode_down(d->held, (size_t)body, &m, err,
                                  sizeof(err)) < 0)
        daemon_log(d, "refusing a held launch: %s", err);
    else
        daemon_start_job(d, &m, d->held, d->held_len, -2);
    free(d->held);
    d->held = NULL;
}

int daemon_start_job(struct daemon *d, const struct proto_down *m,
                     const void *msg, size_t len, int parent_rank)
{
    char err[512];
    void *buf;

    if (d->job && job_reported(d->job))
        retire_job(d);
    if (d->job && parent_rank == -2 && !d->held && job_ending(d->job)
        && (d->held = malloc(len))) {
        memcpy(d->held, msg, len);
        d->held_len = len;
        d->held_until = mono_now() + HOLD_S;
        daemon_log(d, "holding job %#llx until job %#llx has ended",
                   (unsigned long long)m->job,
                   (unsigned long long)d->job->id);
        return 0;
    }
    if (d->job) {
        daemon_log(d, "refusing job %#llx: job %#llx is running",
                   (unsigned long long)m->job,
                   (unsigned long long)d->job->id);
        return -1;
    }
    if (!(d->job = job_create(d, m, msg, len, parent_rank, err,
                              sizeof(err)))) {
        daemon_log(d, "refusing launch: %s", err);
        return -1;
    }
    nodestat_last_begin(&d->last, m->job, d->job->rank, mono_now());
    d->job->last = &d->last;
    if (d->job->rank == 0)
        send_accepted(d);
    /* The buffer first, then the children: a first launch faults in a
     * fresh buffer on every node (~6 MB; slow in this VM), and a child
     * that hears of the job before its parent can send would wait
     * through its parent's faults as well as its own. */
    buf = image_buffer(d, m->launch.image_lead, m->launch.image_len, err,
                       sizeof(err));
    forward_launch(d);
    image_begin_broadcast(d, buf, m->launch.chunk, err, sizeof(err));
    return 0;
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

    if (d->job || !(j = job_create(d, m, d->down, len, -2, err,
                                   sizeof(err))))
        return;
    d->job = j;
    j->image_len = 0;
    snprintf(text, sizeof(text), "node %s refused the launch: %s",
             d->o->node, why);
    if (j->rank == 0) {
        /* Rank -1 is UINT32_MAX on the wire: the whole launch. */
        job_rec(j, PROTO_FAIL, -1, EACCES, text, strlen(text));
        for (int i = 0; i < j->n; i++)
            job_note_exit(j, i, 127 << 8);
    } else {
        job_fail_subtree(j, j->rank, text);
    }
    j->own_done = 1;
}

/* Post the signal in slot to child k, or leave it due when the provider
 * says EAGAIN (a tcp connection still opening, a full shm queue): every
 * signal vexec passes ends the job, so one a child lacks must not be
 * lost, and the latest one due is the one that counts. */
static void signal_kid(struct daemon *d, struct kid *k, int slot)
{
    struct job *j = d->job;

    k->sig_due = 0;
    if (fab_send(d->f, k->peer, PROTO_TAG_DOWN, j->sig[slot], j->sig_len[slot],
                 j->sig[slot]) == 0)
        return;
    if (errno == EAGAIN) {
        k->sig_due = slot + 1;
        j->sigs_due = 1;
        return;
    }
    daemon_log(d, "passing signal %d down to %s: %s", j->sig_no[slot],
               hostlist_nth(j->nodes, k->rank), strerror(errno));
}

void daemon_pass_due_signals(struct daemon *d)
{
    struct job *j = d->job;

    if (!j || !j->sigs_due)
        return;
    j->sigs_due = 0;
    for (int i = 0; i < j->nkid; i++) {
        struct kid *k = &j->kid[i];

        /* A child that died lost its due signal: its children get theirs
         * when they are adopted. */
        if (k->sig_due && k->state == KID_LIVE)
            signal_kid(d, k, k->sig_due - 1);
        else
            k->sig_due = 0;
    }
}

/* Keep the len-byte signal message msg in the next slot; returns it. */
static int keep_signal(struct job *j, const void *msg, size_t len, int signo)
{
    int slot = j->next_sig++ % SIG_SLOTS;

    memcpy(j->sig[slot], msg, len);
    j->sig_len[slot] = len;
    j->sig_no[slot] = signo;
    return slot;
}

/* Signal our rank (or remember it for the start) and pass it down. */
static void deliver_signal(struct daemon *d, const void *msg, size_t len,
                           int signo)
{
    struct job *j = d->job;
    int slot = keep_signal(j, msg, len, signo);

    if (signo == SIGKILL)
        j->killed = 1;
    if (signo == SIGINT || signo == SIGTERM || signo == SIGHUP
        || signo == SIGKILL) {
        j->told_to_end = 1;
        j->end_signo = j->killed ? SIGKILL : signo;
    }
    for (int k = 0; k < j->nkid; k++)
        if (j->kid[k].state == KID_LIVE)
            signal_kid(d, &j->kid[k], slot);
    if (j->pid > 0 && !j->rank_exited)
        kill(-j->pid, signo);
    else if (j->pid > 0 && j->told_to_end && !j->swept)
        rank_end_leftovers(d);          /* see reap() */
    else
        j->pending_signal = signo;
}

/* A SIGNAL message for our job, signed by us, in *msg; returns its length
 * or -1 (err says why). */
static int sign_signal(struct daemon *d, int signo, char *msg, size_t size,
                       char *err, size_t errlen)
{
    int len = proto_encode_signal(msg, size, d->job->id, signo, err, errlen);

    return len < 0 ? -1 : auth_sign(d->auth, msg, (size_t)len, size, err,
                                     errlen);
}

void daemon_signal_adopted(struct daemon *d, struct kid *k)
{
    struct job *j = d->job;
    char msg[SIG_MSG_MAX], err[256];
    int len;

    if (!j->told_to_end)
        return;
    if ((len = sign_signal(d, j->end_signo, msg, sizeof(msg), err,
                           sizeof(err))) < 0) {
        daemon_log(d, "passing signal %d down: %s", j->end_signo, err);
        return;
    }
    signal_kid(d, k, keep_signal(j, msg, (size_t)len, j->end_signo));
}

/* End the job here and below it: our rank, and every rank under us
 * through a SIGKILL we sign with the cluster key (as an adopter signs an
 * ADOPT) and pass down.  For a job with no one left above to report to or
 * to cancel it; it reports nothing more. */
void daemon_kill_job(struct daemon *d)
{
    struct job *j = d->job;
    char msg[SIG_MSG_MAX], err[256];
    int len = sign_signal(d, SIGKILL, msg, sizeof(msg), err, sizeof(err));

    j->orphan = 1;
    if (len < 0) {
        daemon_log(d, "ending the ranks below: %s", err);
        if (j->pid > 0 && !j->rank_exited)
            kill(-j->pid, SIGKILL);
        return;
    }
    deliver_signal(d, msg, (size_t)len, SIGKILL);
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
        daemon_log(d, "refusing query %#llx: query %#llx is being answered",
                   (unsigned long long)m->job,
                   (unsigned long long)nodeq_id(d->query));
        return;
    }
    if (!(d->query = nodeq_create(d->f, d->down, len, signed_len, err,
                                  sizeof(err)))) {
        daemon_log(d, "refusing query: %s", err);
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
        daemon_log(d, "%s", err);
    nodeq_reap(&d->query);
    nodeq_reap(&d->query_old);
}

static const char *type_name(uint16_t type)
{
    switch (type) {
    case PROTO_LAUNCH: return "LAUNCH";
    case PROTO_SIGNAL: return "SIGNAL";
    case PROTO_STDIN: return "STDIN";
    case PROTO_ADOPT: return "ADOPT";
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
        daemon_log(d, "refused a malformed request: %s (%s)", err,
               n < 0 ? why : "credential valid");
        return;
    }
    if (n < 0 || (!admitted && !is_kill(&m))) {
        daemon_log(d, "refused %s of job %#llx: %s", type_name(m.type),
               (unsigned long long)m.job, why);
        /* A second copy of a LAUNCH whose job ran here is not answered. */
        if (m.type == PROTO_LAUNCH && !(d->done && d->done->id == m.job))
            answer_refused_launch(d, &m, len, why);
        return;
    }
    if (m.type == PROTO_LAUNCH) {
        daemon_start_job(d, &m, d->down, len, -2);
        return;
    }
    if (m.type == PROTO_ADOPT) {
        adopt_on_request(d, &m);
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
        rank_write_stdin(d);
    }
}

/* Exits are counted once per rank: an adopted node sends again the exits
 * it had sent to its dead parent. */
static int count_rec(void *arg, const struct proto_rec *r)
{
    struct daemon *d = arg;

    if (r->type == PROTO_EXIT)
        job_note_exit(d->job, (int)r->rank, r->value);
    else if (r->type == PROTO_ADOPTED)
        adopt_on_adopted(d, r);
    else if (r->type == PROTO_ALIVE)
        adopt_on_alive(d, r);
    return 0;
}

static void on_up(struct daemon *d, const char *msg, size_t len)
{
    struct job *j = d->job;
    uint64_t job;
    char err[256];

    if (proto_each_rec(msg, len, &job, NULL, NULL, err, sizeof(err)) < 0) {
        daemon_log(d, "bad report: %s", err);
        return;
    }
    if (nodeq_on_up(d->query, msg, len) || nodeq_on_up(d->query_old, msg, len))
        return;
    if (!j || job != j->id)
        return;
    proto_each_rec(msg, len, &job, count_rec, d, NULL, 0);
    if (!j->orphan)
        proto_batch_merge(&j->batch, msg, len);
}

/* Where fab completions go, in the loop and during a broadcast. */
static int on_event(void *arg, const struct fab_event *ev, char *err,
                    size_t errlen)
{
    struct daemon *d = arg;
    char *ctx = ev->ctx;
    int r = d->job && d->job->bc ? bcast_event(d->job->bc, ev, err, errlen)
                                 : 0;

    if (r != 0) {
        if (r < 0)
            image_broadcast_failed(d, err);
        return 0;
    }
    if (ev->kind == FAB_SENT || (ev->kind == FAB_FAILED && !ev->recv)) {
        if (ctx == d->sendbuf)
            d->sending = 0;
        nodeq_on_sent(d->query, ctx);
        nodeq_on_sent(d->query_old, ctx);
        return 0;
    }
    if (ev->kind == FAB_FAILED && (ctx == d->down || (ctx >= d->up[0]
                                       && ctx <= d->up[UP_RECVS - 1])))
        ;   /* its sender died mid-copy: post it again */
    else if (ctx == d->down)
        on_down(d, ev->len);
    else if (ctx >= d->up[0] && ctx <= d->up[UP_RECVS - 1])
        on_up(d, ctx, ev->len);
    else
        return seterr(err, errlen, EPROTO, "completion of an unknown "
                      "receive");
    memset(ctx, 0, 64);
    touch_once(ctx, ctx == d->down ? &d->down_full
                                   : &d->up_full[(ctx - d->up[0])
                                                 / PROTO_MSG_MAX]);
    if (fab_recv(d->f, -1, ctx == d->down ? PROTO_TAG_DOWN : PROTO_TAG_UP,
                 ctx, PROTO_MSG_MAX, ctx) < 0)
        return seterr(err, errlen, errno, "reposting a receive: %s",
                      strerror(errno));
    return 0;
}

/* ---- the loop ---- */

/* Has this node done its part: its rank reported, every rank below it
 * reported, all of it sent?  Then the job ends here. */
/* Has the job here reported everything, with at most its last sends
 * still completing?  The front end may have its answer and launch again
 * before those completions reach us (seen under ASan). */
int job_reported(const struct job *j)
{
    return !j->orphan && j->own_done && j->exits >= j->subtree
           && j->batch.len == 0 && (!j->bc || bcast_done(j->bc));
}

static void maybe_end_job(struct daemon *d)
{
    struct job *j = d->job;

    if (!j)
        return;
    rank_report_exit(d);
    if (j->orphan) {
        if (j->pid > 0 && !j->rank_exited)
            return;
    } else if (!j->own_done || j->exits < j->subtree || j->batch.len
               || d->sending || (j->bc && !bcast_done(j->bc))) {
        return;
    }
    if (fab_sends_in_flight(d->f) > 0)
        return;
    if (d->image_buf_size > IMAGE_KEEP_MAX)
        image_buffer_drop(d);
    retire_job(d);
}

/* End the job here.  It is kept until the next job ends: a parent that
 * stopped may have taken our last report with it, and an adopter then
 * asks again (adopt.c).  A send of its last batch may still be in flight:
 * d->sending holds the next batch back until it completes. */
static void retire_job(struct daemon *d)
{
    struct job *j = d->job;

    /* A job given up ends here once its rank has exited, its output
     * perhaps still held open by what the rank left. */
    rank_end_leftovers(d);
    bcast_destroy(j->bc);
    j->bc = NULL;
    adopt_end(j);
    /* The neighbours' /proc files: an idle daemon holds no more fds than
     * it did before the job. */
    fab_forget_states(d->f);
    job_free(d->done);
    d->done = j->orphan ? NULL : j;
    if (j->orphan)
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
                daemon_log(d, "%s", err);
    }
    if (n < 0)
        daemon_log(d, "%s", err);
    return total;
}

/* A wait status, as waitpid gives it, from what waitid said. */
static int wait_status(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED)
        return (si->si_status & 0xff) << 8;
    return si->si_status | (si->si_code == CLD_DUMPED ? 0x80 : 0);
}

/* Our rank is our only child (the next starts once its job has ended
 * here).  Its exit is seen, not reaped: its zombie keeps its pid, the id
 * of its process group, from coming round to another process (pid_max is
 * 32768 on a machine of few CPUs, ~30 launches of 1023 ranks), so that
 * kill(-pid) reaches what is left of that group and nothing else until
 * rank_end_leftovers reaps it. */
static void reap(struct daemon *d)
{
    struct job *j = d->job;
    siginfo_t si = { 0 };

    if (!j || j->pid <= 0 || j->rank_exited
        || waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0
        || si.si_pid != j->pid)
        return;
    j->rank_exited = 1;
    j->rank_status = wait_status(&si);
    /* A rank told to end has ended; what it started goes too, even a
     * process that ignores the signal (a shell's `cmd &` ignores SIGINT)
     * and holds the rank's output open, so that its exit can be
     * reported. */
    if (j->told_to_end)
        rank_end_leftovers(d);
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
    } else if (fd == d->sigfd) {
        on_signalfd(d);
    } else if (j && fd == j->out.fd) {
        rank_read_stream(d, &j->out);
    } else if (j && fd == j->errs.fd) {
        rank_read_stream(d, &j->errs);
    } else if (j && fd == j->in_fd && (events & (EPOLLOUT | EPOLLERR))) {
        rank_write_stdin(d);
    }
}

static void serve(struct daemon *d)
{
    struct epoll_event ev[16];
    struct timespec ts;

    while (!d->stop) {
        int n, moved;

        fab_hold_rings(d->f);
        moved = progress(d) > 0;
        image_drive_broadcast(d);
        adopt_tick(d);
        daemon_pass_due_signals(d);
        /* Our rank's exit goes in the batch with its last output lines:
         * one message up, not two. */
        if (d->job)
            rank_report_exit(d);
        flush_up(d);
        maybe_end_job(d);
        start_held(d);
        serve_query(d);
        fab_flush_rings(d->f);
        n = evwait(d->ep, ev, 16, daemon_wait_time(d, moved, &ts));
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
    /* Orphans of our ranks come to us (sweep_keep's keeper has gone). */
    if (sweep_adopt_orphans() < 0)
        return seterr(err, errlen, errno, "PR_SET_CHILD_SUBREAPER: %s",
                      strerror(errno));
    if (!(d->up = calloc(UP_RECVS, sizeof(*d->up))))
        return seterr(err, errlen, ENOMEM, "out of memory");
    if (!(d->auth = auth_create(d->o->key_file, err, errlen)))
        return -1;
    if (!(d->f = fab_create(d->o->endpoint, err, errlen)))
        return -1;
    if (rank_watch(d, fab_fd(d->f), EPOLLIN) < 0
        || rank_watch(d, d->sigfd, EPOLLIN) < 0)
        return seterr(err, errlen, errno, "epoll: %s", strerror(errno));
    return post_receives(d, err, errlen);
}

static void teardown(struct daemon *d)
{
    struct job *j = d->job;

    if (j && j->pid > 0 && !j->swept) {
        kill(-j->pid, SIGKILL);
        waitpid(j->pid, NULL, 0);
        sweep_descendants(0);           /* what it left us: setsid */
    }
    job_free(j);
    job_free(d->done);
    nodeq_destroy(d->query);
    nodeq_destroy(d->query_old);
    image_buffer_drop(d);
    fab_destroy(d->f);
    auth_destroy(d->auth);
    free(d->up);
    free(d->held);
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
                daemon_log(d, "ready pipe: %s", strerror(errno));
            close(o->ready_fd);
        }
        serve(d);
    }
    teardown(d);
    free(d);
    return ret;
}
