/* adopt.c - the daemon's neighbours: noticing that one died or stopped,
 * and repairing the tree around it while the job runs.
 *
 * Each node watches the children whose subtrees still owe exits, and its
 * parent, every ADOPT_CHECK_S:
 * - on this host, a peer whose doorbell is unbound died (kill -9 shows at
 *   the next look); one whose process (its pid came with its doorbell
 *   rings, fabric.h) has been stopped for STOPPED_S is stopped.  A peer
 *   that runs is never declared dead, however slow: that is what a loaded
 *   machine looks like;
 * - where no pid is known (another host), a child that took nothing we
 *   sent for SILENT_S has stopped answering, and so has one we have not
 *   heard from for SILENT_S: over tcp every node sends its parent an
 *   ALIVE record every ALIVE_S while its job runs (a child that died
 *   after the broadcast, while its rank runs, takes no sends to miss).
 *   One not heard from for QUIET_S is probed as vexec probes node 0, by a
 *   connect to its address, once per look: refused means nothing listens
 *   there any more, its daemon died (libfabric's connections to it go
 *   the same way, so no firewall tells the two apart); unreachable, or
 *   no answer at all for UNANSWERED_S, means its host is gone (a live
 *   host's kernel answers a connect whatever its daemon does).  A host
 *   that answers for a daemon that does not is given SILENT_S.
 * A dead child is reported up (DEAD, and EXIT for its rank if it had not
 * reported one), dropped from the broadcast, and each of its children is
 * adopted: sent an ADOPT (vexec's signed LAUNCH unchanged, our rank, a new
 * broadcast epoch; signed by us with the cluster key), after which it
 * reports to us and we stream it the image from the first chunk it lacks.
 * A child of the dead node that is dead too is handled the same way, so
 * the nearest live ancestor adopts every orphan.  A child that does not
 * answer its ADOPT within SILENT_S is dead as well.
 *
 * A node whose job ended (its report sent to a parent that then stopped,
 * so perhaps never passed on) keeps that job's record until its next job
 * ends, and an ADOPT for it makes it send its exits to the adopter.
 *
 * A child sees its parent die on this host as above.  Over tcp it probes
 * the parent's address every PARENT_PROBE_S: once one probe has been
 * accepted, a refusal means the parent's daemon died, and no route or no
 * answer for UNANSWERED_S that its host went away; the parent is lost
 * the same way.
 *
 * A node whose parent died kills nothing: it keeps its rank running and
 * its records, and waits ORPHAN_WAIT_S for an ADOPT; it then follows the
 * adopter, listens for the image on the adopter's epoch, and sends every
 * exit status it knows again (the dead parent may have taken some with
 * it; ranks are counted once).  With no adopter by then (vexec or the
 * whole path above died), it ends the job: it kills its rank and passes a
 * SIGKILL down, so that no rank below runs on unowned.  Nothing can adopt
 * node 0's children (vexec gives up a dead node 0 and all below it) nor
 * node 0 itself: a child of node 0 whose parent died, and node 0 whose
 * gateway died, end the job so at once.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/bell.h"
#include "fanout/netaddr.h"
#include "launcher/daemon_priv.h"
#include "launcher/sweep.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often neighbours are looked at: a killed daemon is noticed within
 * this; each look costs a few system calls per neighbour. */
#define ADOPT_CHECK_S 0.5

/* How long a peer must stay stopped (SIGSTOP, a debugger) to be given up:
 * long enough that a debugger's brief stop or a job-control hiccup is not
 * a death. */
#define STOPPED_S 2.0

/* With no pid to look at (another host): how long a child may take none
 * of the sends we posted, or leave our ADOPT unanswered.  Far above any
 * chunk's copy time on a loaded machine. */
#define SILENT_S 30.0

/* How long a probe of a silent child may go unanswered, neither accepted
 * nor refused, before its host is taken as gone.  A live host's kernel
 * answers a connect within a round trip however busy its daemon is; this
 * leaves room for two lost SYNs (resent after 1 and 3 s). */
#define UNANSWERED_S 5
#define STR_(x) #x
#define STR(x) STR_(x)

/* Over tcp, how often a child probes its parent's address.  Its parent
 * sends it nothing once the image is in, so this is how it finds the
 * parent's host gone; what an orphan then waits (ORPHAN_WAIT_S) is far
 * longer. */
#define PARENT_PROBE_S 5.0

/* Over tcp, how often a node tells its parent it lives. */
#define ALIVE_S 1.0

/* Over tcp, how long a child may be silent before its address is probed:
 * a few ALIVEs missed. */
#define QUIET_S (3 * ALIVE_S)

/* An ADOPT unanswered for this long is made and sent again, with a new
 * credential: seen on this VM, rarely, an ADOPT reaching its node as a
 * copy of an older one, which the node refuses as a replay. */
#define ADOPT_RESEND_S 3.0

/* How long an orphan waits for its adopter.  The adopter notices within
 * STOPPED_S + ADOPT_CHECK_S on this host, or SILENT_S elsewhere. */
#define ORPHAN_WAIT_S 60.0

/* What a look at a peer found. */
enum verdict { PEER_OK, PEER_UNKNOWN, PEER_DIED, PEER_STOPPED };

/* Close a probe (if open) and mark it closed. */
static void drop_probe(int *fd)
{
    netaddr_close_reset(*fd);
    *fd = -1;
}

int adopt_add_kid(struct job *j, int rank, int peer)
{
    if (j->nkid == j->kid_cap) {
        int cap = j->kid_cap ? 2 * j->kid_cap : 8;
        struct kid *k = realloc(j->kid, (size_t)cap * sizeof(*k));

        if (!k)
            return -1;
        j->kid = k;
        j->kid_cap = cap;
    }
    j->kid[j->nkid++] = (struct kid){ .rank = rank, .peer = peer,
                                      .heard = mono_now(), .probe = -1 };
    return 0;
}

static struct kid *find_kid(struct job *j, int rank)
{
    for (int k = 0; k < j->nkid; k++)
        if (j->kid[k].rank == rank)
            return &j->kid[k];
    return NULL;
}

/* Does a rank of r's subtree still owe us its exit? */
static int subtree_pending(const struct job *j, int r)
{
    const int *kids;
    int n = topo_children(j->t, r, &kids);

    if (!j->exited[r])
        return 1;
    for (int k = 0; k < n; k++)
        if (subtree_pending(j, kids[k]))
            return 1;
    return 0;
}

/* Look at peer: gone, stopped for STOPPED_S (*stopped: since when), or
 * running; PEER_UNKNOWN when this host cannot tell.  A peer whose process
 * (the pid its rings carry) still runs is alive without a look at its
 * doorbell: it owns the doorbell. */
static enum verdict look_at(struct daemon *d, int peer, double *stopped)
{
    const char *name = fab_peer_name(d->f, peer);
    char state;

    if (peer < 0 || peer >= FAB_MAX_PEERS || netaddr_is_tcp(name))
        return PEER_UNKNOWN;
    state = fab_peer_state(d->f, peer);
    if (!state || state == 'Z' || state == 'X') {
        /* Gone, or a pid we never learned; a live doorbell then is a
         * newer owner's, and this host cannot tell more. */
        return bell_alive(name) ? PEER_UNKNOWN : PEER_DIED;
    }
    if (state != 'T' && state != 't') {
        *stopped = 0;
        return PEER_OK;
    }
    if (*stopped == 0)
        *stopped = mono_now();
    return mono_now() - *stopped >= STOPPED_S ? PEER_STOPPED : PEER_OK;
}

/* An ADOPT for kid k: vexec's LAUNCH, our rank and k's epoch, signed. */
static int make_adopt(struct daemon *d, struct kid *k, char *err,
                      size_t errlen)
{
    struct job *j = d->job;
    int len;

    if (!k->adopt && !(k->adopt = malloc(PROTO_MSG_MAX)))
        return seterr(err, errlen, ENOMEM, "out of memory");
    len = proto_encode_adopt(k->adopt, PROTO_MSG_MAX, j->id, k->epoch,
                             (uint32_t)j->rank, j->launch, j->launch_len,
                             err, errlen);
    if (len < 0 || (len = auth_sign(d->auth, k->adopt, (size_t)len,
                                    PROTO_MSG_MAX, err, errlen)) < 0)
        return -1;
    k->adopt_len = (size_t)len;
    return 0;
}

/* Make rank c, a child of a dead node, ours. */
static void adopt_child(struct daemon *d, int c)
{
    struct job *j = d->job;
    char err[256], why[512];
    int peer;
    struct kid *k;

    if (!subtree_pending(j, c))
        return;
    if ((peer = fab_add_peer(d->f, hostlist_nth(j->nodes, c), err,
                             sizeof(err))) < 0) {
        adopt_dead(d, c, PROTO_DEAD_DIED, "died");
        return;
    }
    if (adopt_add_kid(j, c, peer) < 0) {
        job_fail_subtree(j, c, "out of memory for an adoption");
        return;
    }
    k = &j->kid[j->nkid - 1];
    k->state = KID_ADOPTING;
    k->since = mono_now();
    /* Unique per adopter and adoption, never 0 (the launch's epoch). */
    k->epoch = (uint32_t)(j->rank + 1) << 12 | (uint32_t)(++j->adoptions
                                                         & 0xfff);
    if (make_adopt(d, k, err, sizeof(err)) < 0) {
        k->state = KID_DEAD;
        snprintf(why, sizeof(why), "could not be adopted: %s", err);
        job_fail_subtree(j, c, why);
    }
}

void adopt_dead(struct daemon *d, int rank, int why, const char *text)
{
    struct job *j = d->job;
    struct kid *k = find_kid(j, rank);
    const int *kids;
    int n;

    if (k && k->state == KID_DEAD)
        return;
    if (!k && adopt_add_kid(j, rank, -1) == 0)
        k = &j->kid[j->nkid - 1];
    if (k) {
        drop_probe(&k->probe);
        if (j->bc && k->peer >= 0)
            bcast_drop_kid(j->bc, k->peer);
        if (k->peer >= 0)
            fab_drop_peer(d->f, k->peer);
        k->state = KID_DEAD;
    }
    daemon_log(d, "node %s (rank %d) %s: adopting its children",
               hostlist_nth(j->nodes, rank), rank, text);
    job_rec(j, PROTO_DEAD, rank, why, text, strlen(text));
    if (job_note_exit(j, rank, 127 << 8))
        job_rec(j, PROTO_EXIT, rank, 127 << 8, NULL, 0);
    n = topo_children(j->t, rank, &kids);
    for (int i = 0; i < n; i++)
        adopt_child(d, kids[i]);
}

/* Post the ADOPTs the provider could not take yet. */
static void post_adopts(struct daemon *d)
{
    struct job *j = d->job;

    for (int i = 0; i < j->nkid; i++) {
        struct kid *k = &j->kid[i];

        if (k->state != KID_ADOPTING)
            continue;
        /* Its last send completed, so its buffer may be written again. */
        if (k->adopt_sent && mono_now() - k->sent_at > ADOPT_RESEND_S
            && fab_sends_in_flight(d->f) == 0
            && make_adopt(d, k, NULL, 0) == 0) {
            daemon_log(d, "node %s (rank %d) left its ADOPT unanswered for "
                       "%.0f s: sending it again",
                       hostlist_nth(j->nodes, k->rank), k->rank,
                       mono_now() - k->sent_at);
            k->adopt_sent = 0;
        }
        if (k->adopt_sent)
            continue;
        if (fab_send(d->f, k->peer, PROTO_TAG_DOWN, k->adopt, k->adopt_len,
                     k->adopt) == 0) {
            k->adopt_sent = 1;
            k->sent_at = mono_now();
        }
        else if (errno != EAGAIN)
            adopt_dead(d, k->rank, PROTO_DEAD_DIED, "died");
    }
}

/* End what the dead daemon of peer left running here: its rank died with
 * it, but not the processes that rank started (sweep.h). */
static void sweep_dead(struct daemon *d, int peer)
{
    pid_t pid = fab_peer_pid(d->f, peer);
    int n = pid > 0 ? sweep_daemon(pid) : 0;

    if (n > 0)
        daemon_log(d, "ended %d process%s left by dead %s (pid %d)", n,
                   n == 1 ? "" : "es", fab_peer_name(d->f, peer), (int)pid);
}

/* A probe of name (a neighbour's address): started if *fd is not open
 * (*since: when), to be read at the next look, else read.  Returns 0
 * (accepted), EINPROGRESS (no answer yet, or just started) or the
 * connect's errno. */
static int probe_addr(const char *name, int *fd, double *since)
{
    int e;

    if (*fd < 0) {
        *since = mono_now();
        *fd = netaddr_connect(name);
        return *fd >= 0 ? EINPROGRESS : errno;
    }
    if ((e = netaddr_connect_result(*fd)) != EINPROGRESS)
        drop_probe(fd);
    return e;
}

/* Does probe result e (of the probe fd, open since since) say its host
 * went away: no route to it, or no answer at all for UNANSWERED_S? */
static bool no_route(int e)
{
    return e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN
           || e == ETIMEDOUT;
}

static bool no_answer(int e, int fd, double since)
{
    return e == EINPROGRESS && fd >= 0 && mono_now() - since > UNANSWERED_S;
}

/* Has child k died or stopped, or left its adoption unanswered?  Returns
 * PROTO_DEAD_* with *text saying which, or 0; *stuck: for how long it
 * took nothing we sent, if this host cannot tell (else 0). */
static int kid_lost(struct daemon *d, struct kid *k, const char **text,
                    double *stuck)
{
    struct job *j = d->job;
    enum verdict v = look_at(d, k->peer, &k->stopped);
    int failed = 0, e;

    *stuck = j->bc ? bcast_kid_stuck(j->bc, k->peer, &failed) : 0;
    if (v != PEER_UNKNOWN)
        *stuck = 0;
    if (v == PEER_DIED)
        sweep_dead(d, k->peer);
    if (v == PEER_DIED || failed) {
        *text = "died";
        return PROTO_DEAD_DIED;
    }
    if (v == PEER_STOPPED) {
        *text = "was stopped (SIGSTOP or a debugger)";
        return PROTO_DEAD_STOPPED;
    }
    if (k->state == KID_ADOPTING && mono_now() - k->since > SILENT_S) {
        *text = "did not answer its adoption";
        return PROTO_DEAD_SILENT;
    }
    if (k->state != KID_LIVE || !netaddr_is_tcp(fab_peer_name(d->f, k->peer)))
        return 0;
    if (mono_now() - k->heard <= QUIET_S) {
        drop_probe(&k->probe);         /* heard from again: not needed */
        return 0;
    }
    e = probe_addr(fab_peer_name(d->f, k->peer), &k->probe, &k->probe_since);
    if (e == ECONNREFUSED) {
        *text = "died (its address refused a connection)";
        return PROTO_DEAD_DIED;
    }
    if (no_route(e)) {
        *text = "stopped answering (its host is unreachable)";
        return PROTO_DEAD_SILENT;
    }
    if (no_answer(e, k->probe, k->probe_since)) {
        *text = "stopped answering (its host did not answer a connection "
                "for " STR(UNANSWERED_S) " s)";
        return PROTO_DEAD_SILENT;
    }
    if (mono_now() - k->heard > SILENT_S) {
        *text = "stopped answering (nothing heard from it)";
        return PROTO_DEAD_SILENT;
    }
    return 0;
}

/* Children that died or stopped are given up.  Of those that took
 * nothing for SILENT_S where this host cannot tell why, only the one stuck
 * longest is: shm completes sends in order, so one stopped child leaves
 * every send posted after its own stuck, and giving it up frees the rest
 * (fab_drop_peer). */
static void check_kids(struct daemon *d)
{
    struct job *j = d->job;
    double worst = SILENT_S;
    int silent = -1;

    /* By index: adopt_dead adds kids (and may move the array). */
    for (int i = 0; i < j->nkid; i++) {
        const char *text;
        double stuck;
        int why;

        if (j->kid[i].state == KID_DEAD
            || !subtree_pending(j, j->kid[i].rank))
            continue;
        if ((why = kid_lost(d, &j->kid[i], &text, &stuck)))
            adopt_dead(d, j->kid[i].rank, why, text);
        else if (stuck > worst) {
            worst = stuck;
            silent = j->kid[i].rank;
        }
    }
    if (silent >= 0)
        adopt_dead(d, silent, PROTO_DEAD_SILENT, "stopped answering");
}

/* The probe of our parent's address (node 0's: the gateway's): started
 * if none is open, to be read at the next look, else read.  Returns
 * EINPROGRESS, 0 (accepted, noted in up_heard) or the connect's errno. */
static int probe_parent(struct daemon *d)
{
    struct job *j = d->job;
    int e = probe_addr(fab_peer_name(d->f, j->parent), &j->up_probe,
                       &j->up_probe_since);

    if (e == 0)
        j->up_heard = mono_now();
    return e;
}

/* Has node 0's parent, the gateway, died?  Returns how, or NULL.  On this
 * host its doorbell and process tell.  The one-shot gateway of `vexec
 * --hosts` is on another host: it is probed as vexec probes node 0, by a
 * connect to its address, one a second (each read at the next look).
 * Once a probe has been accepted, refused means nothing listens there any
 * more, and no probe accepted for SILENT_S means it stopped answering.
 * Until then nothing is judged: node 0 may be unable to reach the
 * gateway's host at all (a firewall that rejects or drops the probes)
 * while libfabric's connection, which the gateway opened, works.  But a
 * refused probe counts at once while a new LAUNCH waits for this job to
 * end (daemon.c): the job is ending anyway, and a vexec killed in the
 * job's first second must not leave node 0 in it for good. */
static const char *gateway_lost(struct daemon *d)
{
    struct job *j = d->job;
    const char *name = fab_peer_name(d->f, j->parent);
    int e;

    if (!netaddr_is_tcp(name))
        return look_at(d, j->parent, &j->parent_stopped) == PEER_DIED
               ? "died" : NULL;
    e = probe_parent(d);
    if (e == ECONNREFUSED && (j->up_heard || d->held))
        return "died";
    if (!j->up_heard)
        return NULL;
    return mono_now() - j->up_heard > SILENT_S ? "stopped answering" : NULL;
}

/* Has a tcp parent died, or its host gone away?  Returns how, or NULL.
 * We probe its address every PARENT_PROBE_S: refused means its daemon
 * died; no route, or no answer for UNANSWERED_S, that its host went away.
 * One whose host answers for a hung daemon is not judged here.  As for
 * the gateway, nothing is judged before one probe has been accepted: the
 * parent connected to us, and a firewall may keep us from connecting to
 * it. */
static const char *parent_host_gone(struct daemon *d)
{
    struct job *j = d->job;
    int e;

    if (j->up_probe < 0) {
        if (mono_now() < j->next_up_probe)
            return NULL;
        j->next_up_probe = mono_now() + PARENT_PROBE_S;
    }
    e = probe_parent(d);
    if (!j->up_heard)
        return NULL;
    if (e == ECONNREFUSED)
        return "died (its address refused a connection)";
    if (no_route(e))
        return "is unreachable (its host is unreachable)";
    if (no_answer(e, j->up_probe, j->up_probe_since))
        return "is unreachable (its host did not answer a connection for "
               STR(UNANSWERED_S) " s)";
    return NULL;
}

void adopt_end(struct job *j)
{
    drop_probe(&j->up_probe);
    for (int i = 0; i < j->nkid; i++) {
        drop_probe(&j->kid[i].probe);
    }
}

/* Stop reporting to a parent that died, stopped or went away (how says
 * which); wait for an adopter. */
static void lose_parent(struct daemon *d, const char *how)
{
    struct job *j = d->job;

    daemon_log(d, "parent %s %s: waiting to be adopted",
               hostlist_nth(j->nodes, j->parent_rank), how);
    j->parent_lost = mono_now();
    drop_probe(&j->up_probe);
    fab_drop_peer(d->f, j->parent);
    d->sending = 0;
}

/* Stop reporting to a parent that died, stopped or whose host went away;
 * wait for an adopter. */
static void check_parent(struct daemon *d)
{
    struct job *j = d->job;
    enum verdict v;
    const char *how;

    if (j->rank == 0) {
        /* Node 0's parent is the gateway, the tree's origin, which watches
         * node 0.  Nothing can adopt node 0: with the gateway dead, no one
         * is left to report to or to cancel the job, so it ends (unless
         * it has reported all it had: a one-shot gateway may leave then). */
        how = job_reported(j) ? NULL : gateway_lost(d);
        if (how) {
            daemon_log(d, "the gateway %s: ending job %#llx", how,
                       (unsigned long long)j->id);
            daemon_kill_job(d);
        }
        return;
    }
    if (j->parent_lost) {
        if (mono_now() - j->parent_lost < ORPHAN_WAIT_S)
            return;
        daemon_log(d, "no adopter came within %.0f s: ending job %#llx",
                   ORPHAN_WAIT_S, (unsigned long long)j->id);
        daemon_kill_job(d);
        return;
    }
    if (netaddr_is_tcp(fab_peer_name(d->f, j->parent))) {
        how = parent_host_gone(d);
        v = how ? PEER_DIED : PEER_OK;
    } else {
        v = look_at(d, j->parent, &j->parent_stopped);
        if (v == PEER_DIED)
            sweep_dead(d, j->parent);
        how = v == PEER_DIED ? "died" : "is stopped";
    }
    if (v != PEER_DIED && v != PEER_STOPPED)
        return;
    if (j->parent_rank == 0 && v == PEER_DIED) {
        /* Only node 0 could adopt us, and vexec has given it up and the
         * ranks below it (a stopped node 0 it waits for). */
        daemon_log(d, "parent %s %s and no one can adopt us: ending job "
                   "%#llx", hostlist_nth(j->nodes, 0), how,
                   (unsigned long long)j->id);
        drop_probe(&j->up_probe);
        fab_drop_peer(d->f, j->parent);
        daemon_kill_job(d);
        return;
    }
    lose_parent(d, how);
}

/* Do we tell our parent we live?  Over tcp, to a parent not given up;
 * node 0's parent is the gateway, which watches it otherwise. */
static int tells_alive(struct daemon *d)
{
    struct job *j = d->job;

    return j->rank > 0 && !j->parent_lost
           && netaddr_is_tcp(fab_peer_name(d->f, j->parent));
}

static void tell_alive(struct daemon *d)
{
    struct job *j = d->job;

    if (mono_now() < j->next_alive || !tells_alive(d))
        return;
    j->next_alive = mono_now() + ALIVE_S;
    job_rec(j, PROTO_ALIVE, j->rank, 0, NULL, 0);
}

void adopt_tick(struct daemon *d)
{
    struct job *j = d->job;

    if (!j || j->orphan)
        return;
    post_adopts(d);
    tell_alive(d);
    /* The first look waits a period too: the job's neighbours have just
     * been heard from or sent to.  But a node over tcp sends its first
     * probe to its parent (node 0: the one-shot gateway) now, so that the
     * look finds it accepted: until one probe is accepted, nothing is
     * judged (gateway_lost, parent_host_gone), and a gateway killed in
     * the job's first second went unseen. */
    if (j->next_check == 0) {
        j->next_check = mono_now() + ADOPT_CHECK_S;
        if (j->up_probe < 0
            && netaddr_is_tcp(fab_peer_name(d->f, j->parent))) {
            j->next_up_probe = mono_now() + PARENT_PROBE_S;
            probe_parent(d);
        }
    }
    if (mono_now() < j->next_check)
        return;
    j->next_check = mono_now() + ADOPT_CHECK_S;
    check_kids(d);
    check_parent(d);
}

double adopt_next(struct daemon *d)
{
    double next, left;

    if (!d->job || d->job->orphan)
        return -1;
    next = d->job->next_check;
    if (d->job->next_alive < next && tells_alive(d))
        next = d->job->next_alive;
    left = next - mono_now();
    return left > 0 ? left : 0;
}

/* Is a an ancestor of ours in the job's tree? */
static int is_ancestor(const struct job *j, int a)
{
    for (int r = topo_parent(j->t, j->rank); r >= 0; r = topo_parent(j->t, r))
        if (r == a)
            return 1;
    return 0;
}

/* Report to the adopter from now on, and take the rest of the image from
 * it on its epoch. */
static void follow(struct daemon *d, int adopter, uint32_t epoch)
{
    struct job *j = d->job;
    char err[256];
    int peer = fab_add_peer(d->f, hostlist_nth(j->nodes, adopter), err,
                            sizeof(err));
    long from = -1;

    if (peer < 0) {
        daemon_log(d, "cannot reach adopter %s: %s",
                   hostlist_nth(j->nodes, adopter), err);
        return;
    }
    if (peer != j->parent) {
        fab_drop_peer(d->f, j->parent);
        d->sending = 0;         /* that batch is sent again below */
    }
    j->parent = peer;
    j->parent_rank = adopter;
    j->parent_lost = 0;
    j->parent_stopped = 0;
    drop_probe(&j->up_probe);
    j->up_heard = 0;
    j->epoch = epoch;
    if (j->bc && !bcast_have_all(j->bc))
        from = bcast_resume(j->bc, peer, proto_stream(j->id, epoch), err,
                            sizeof(err));
    for (int r = 0; r < j->n; r++)
        if (j->exited[r])
            job_rec(j, PROTO_EXIT, r, j->status[r], NULL, 0);
    job_rec(j, PROTO_ADOPTED, j->rank, (int32_t)from, NULL, 0);
    daemon_log(d, "adopted by %s (rank %d)", hostlist_nth(j->nodes, adopter),
               adopter);
}

/* The LAUNCH of an ADOPT for a job this node does not run: checked as if
 * it came from vexec (credential, freshness), and for this job.  Its nonce
 * may have been seen already: the dead parent may have passed it on just
 * before it died, too late for the job to start here (its parent gone).
 * That is no replay: the ADOPT around it carried a fresh, unseen
 * credential of its own (on_down). */
static int admit_launch(struct daemon *d, const struct proto_down *m,
                        struct proto_down *l, char *why, size_t whylen)
{
    struct auth_cred c;
    int n = auth_verify(d->auth, m->data, m->len, &c, why, whylen);

    if (n < 0 || (auth_admit(d->auth, &c, auth_now(), why, whylen) < 0
                  && errno != EALREADY)
        || proto_decode_down(m->data, (size_t)n, l, why, whylen) < 0)
        return -1;
    if (l->type != PROTO_LAUNCH || l->job != m->job)
        return seterr(why, whylen, EPROTO, "it carries no LAUNCH of the job");
    return 0;
}

void adopt_on_request(struct daemon *d, const struct proto_down *m)
{
    struct job *j = d->job;
    struct proto_down l;
    char why[256];

    if (!j && d->done && d->done->id == m->job) {
        /* Ended here, its report maybe lost with the dead parent: the
         * job lives again until its exits are sent to the adopter. */
        d->job = j = d->done;
        d->done = NULL;
    }
    if (j && j->id == m->job) {
        /* Ours already: the very LAUNCH we accepted, not a replay. */
        if (m->len != j->launch_len || memcmp(m->data, j->launch, m->len)) {
            snprintf(why, sizeof(why), "it carries another LAUNCH");
            goto refuse;
        }
    } else if (j) {
        snprintf(why, sizeof(why), "job %#llx is running",
                 (unsigned long long)j->id);
        goto refuse;
    } else if (admit_launch(d, m, &l, why, sizeof(why)) < 0
               || daemon_start_job(d, &l, m->data, m->len,
                                   (int)m->adopter) < 0) {
        goto refuse;
    }
    j = d->job;
    if (m->adopter >= (uint32_t)j->n || !is_ancestor(j, (int)m->adopter)) {
        snprintf(why, sizeof(why), "rank %u is not an ancestor",
                 m->adopter);
        goto refuse;
    }
    follow(d, (int)m->adopter, m->epoch);
    return;
refuse:
    daemon_log(d, "refused ADOPT of job %#llx: %s",
               (unsigned long long)m->job, why);
}

void adopt_on_alive(struct daemon *d, const struct proto_rec *r)
{
    struct kid *k = find_kid(d->job, (int)r->rank);

    if (k)
        k->heard = mono_now();
}

void adopt_on_adopted(struct daemon *d, const struct proto_rec *r)
{
    struct job *j = d->job;
    struct kid *k = find_kid(j, (int)r->rank);

    if (!k || k->state != KID_ADOPTING)
        return;
    k->state = KID_LIVE;
    k->heard = mono_now();
    daemon_log(d, "node %s (rank %d) answered its ADOPT after %.1f s; it "
               "needs the image from chunk %ld",
               hostlist_nth(j->nodes, k->rank), k->rank,
               mono_now() - k->since, (long)r->value);
    daemon_signal_adopted(d, k);
    if (r->value < 0)
        return;         /* it has the whole image */
    if (!j->bc || bcast_add_kid(j->bc, k->peer, proto_stream(j->id, k->epoch),
                                (size_t)r->value) < 0)
        job_fail_subtree(j, k->rank, "its adopter cannot send it the image");
}
