/* nodequery.c - one node's part in answering a QUERY (see nodequery.h).
 *
 * The engine keeps the query as received (it is forwarded unchanged, and
 * shm may read a send's buffer until its completion), a flag per node of
 * the list saying whether its record is in our answer yet, and the answer
 * itself, a proto batch.  Whether a record belongs to us is decided by
 * the node it names, not by who sent it: the records of a dead child's
 * children arrive from those children directly.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/topo.h"
#include "launcher/hostlist.h"
#include "launcher/nodequery.h"
#include "launcher/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Retry interval for an answer the provider could not take yet: the
 * fabric's bounded idle wait (fabric.h). */
#define RETRY_NS FAB_IDLE_MAX_NS

struct nodeq {
    struct fab *f;
    uint64_t id;
    int self;                   /* our index in the list; -1: the origin */
    int n;
    const char *origin;         /* points into msg */
    struct hostlist *nodes;
    struct topo *t;
    char *msg;                  /* the signed query, forwarded as is */
    size_t len;
    unsigned char *mine;        /* per node: in our subtree */
    unsigned char *have;        /* per node: its record is in the answer */
    int expect, got;
    double wait_s, deadline;    /* how long we wait for the subtree */
    int complete;               /* the answer holds every record */
    struct proto_batch answer;
    int reply;                  /* fab peer we answer to, -1 unknown */
    int reply_at;               /* its index in the list, -1 the origin */
    double stuck_since;         /* since when it says EAGAIN, or 0 */
    char sendbuf[PROTO_MSG_MAX];
    int sending;                /* a piece of the answer is in flight */
    int forwards;               /* query sends to children in flight */
};

void nodeq_destroy(struct nodeq *q)
{
    int saved = errno;

    if (!q)
        return;
    hostlist_destroy(q->nodes);
    topo_destroy(q->t);
    proto_batch_free(&q->answer);
    free(q->msg);
    free(q->mine);
    free(q->have);
    free(q);
    errno = saved;
}

uint64_t nodeq_id(const struct nodeq *q)
{
    return q->id;
}

/* Mark root's subtree ours (a parent is numbered below its children,
 * topo.h); returns its height (levels below root). */
static int mark_subtree(struct nodeq *q, int root)
{
    int height = 0, top = topo_depth(q->t, root);

    for (int i = root; i < q->n; i++) {
        int p = topo_parent(q->t, i);

        if (i != root && (p < root || !q->mine[p]))
            continue;
        q->mine[i] = 1;
        q->expect++;
        if (topo_depth(q->t, i) - top > height)
            height = topo_depth(q->t, i) - top;
    }
    return height;
}

/* Where are we in the query's list?  Sets q->self.  Returns 0 or -1. */
static int find_self(struct nodeq *q, char *err, size_t errlen)
{
    const char *me = fab_name(q->f);

    for (q->self = 0; q->self < q->n; q->self++)
        if (!strcmp(hostlist_nth(q->nodes, q->self), me))
            return 0;
    q->self = -1;
    if (!strcmp(q->origin, me))
        return 0;
    return seterr(err, errlen, EPROTO, "query does not name %s", me);
}

/* Decode the copy, build the list and the tree, find our subtree. */
static int setup(struct nodeq *q, size_t signed_len, char *err,
                 size_t errlen)
{
    struct proto_down d;
    int height;

    if (proto_decode_down(q->msg, signed_len, &d, err, errlen) < 0)
        return -1;
    if (d.type != PROTO_QUERY)
        return seterr(err, errlen, EPROTO, "not a query");
    q->id = d.job;
    q->n = (int)d.query.nnodes;
    q->origin = d.query.origin;
    if (!(q->nodes = hostlist_create(d.query.nodes, err, errlen))
        || !(q->t = topo_create(d.query.tree, q->n, err, errlen)))
        return -1;
    if (hostlist_count(q->nodes) != q->n)
        return seterr(err, errlen, EPROTO, "query names %d nodes, says %d",
                      hostlist_count(q->nodes), q->n);
    if (!(q->mine = calloc((size_t)q->n, 1))
        || !(q->have = calloc((size_t)q->n, 1)))
        return seterr(err, errlen, ENOMEM, "out of memory");
    if (find_self(q, err, errlen) < 0)
        return -1;
    height = mark_subtree(q, q->self < 0 ? 0 : q->self);
    q->wait_s = NODEQ_HOP_S * (height + (q->self < 0));
    q->deadline = mono_now() + q->wait_s;
    return 0;
}

struct nodeq *nodeq_create(struct fab *f, const void *msg, size_t len,
                           size_t signed_len, char *err, size_t errlen)
{
    struct nodeq *q = calloc(1, sizeof(*q));

    if (!q || !(q->msg = malloc(len))) {
        free(q);
        seterr(err, errlen, ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(q->msg, msg, len);
    q->f = f;
    q->len = len;
    q->reply = -1;
    if (signed_len > len || setup(q, signed_len, err, errlen) < 0) {
        if (signed_len > len)
            seterr(err, errlen, EPROTO, "query shorter than its request");
        nodeq_destroy(q);
        return NULL;
    }
    return q;
}

/* Put node i's record into the answer, once. */
static void add_record(struct nodeq *q, int i, const struct nodestat *s)
{
    char buf[NODESTAT_REC_MAX];
    int len = nodestat_encode(s, buf, sizeof(buf), NULL, 0);

    if (q->have[i] || len < 0
        || proto_batch_add(&q->answer, PROTO_NODE, (uint32_t)i,
                           (int32_t)s->state, buf, (uint32_t)len) < 0)
        return;
    q->have[i] = 1;
    q->got++;
}

static void add_down(struct nodeq *q, int i, const char *fmt,
                     const char *what)
{
    char why[NODESTAT_REASON_MAX + FAB_NAME_MAX + 64];
    struct nodestat s;

    snprintf(why, sizeof(why), fmt, what, fab_name(q->f));
    nodestat_down(&s, why);
    add_record(q, i, &s);
}

static void ask_children(struct nodeq *q, int i, fab_handler_fn fn,
                         void *arg);

/* Hand node i the query; if it cannot be reached, it is down and its
 * children are asked instead. */
static void ask(struct nodeq *q, int i, fab_handler_fn fn, void *arg)
{
    char err[NODESTAT_REASON_MAX];
    int peer = fab_add_peer(q->f, hostlist_nth(q->nodes, i), err,
                            sizeof(err));

    if (peer >= 0 && fab_ring(q->f, peer) < 0)
        snprintf(err, sizeof(err), "%s is not running",
                 hostlist_nth(q->nodes, i));
    else if (peer >= 0 && fab_send_wait(q->f, peer, PROTO_TAG_DOWN, q->msg,
                                        q->len, q->msg, NODEQ_HOP_S, fn, arg,
                                        err, sizeof(err)) == 0) {
        q->forwards++;
        return;
    }
    add_down(q, i, "%s (asked by %s)", err);
    ask_children(q, i, fn, arg);
}

static void ask_children(struct nodeq *q, int i, fab_handler_fn fn,
                         void *arg)
{
    const int *kids;
    int k = topo_children(q->t, i, &kids);

    for (int c = 0; c < k; c++)
        ask(q, kids[c], fn, arg);
}

void nodeq_start(struct nodeq *q, const struct nodestat *own,
                 fab_handler_fn fn, void *arg)
{
    if (q->self < 0) {
        ask(q, 0, fn, arg);
        return;
    }
    if (own)
        add_record(q, q->self, own);
    ask_children(q, q->self, fn, arg);
}

struct take {
    struct nodeq *q;
    uint64_t job;       /* set by proto_each_rec before any record */
};

static int take_record(void *arg, const struct proto_rec *r)
{
    struct take *tk = arg;
    struct nodeq *q = tk->q;
    struct nodestat s;

    if (tk->job != q->id)
        return 1;
    if (r->type == PROTO_NODE && r->rank < (uint32_t)q->n
        && q->mine[r->rank]
        && nodestat_decode(r->data, r->len, r->value, &s, NULL, 0) == 0)
        add_record(q, (int)r->rank, &s);
    return 0;
}

int nodeq_on_up(struct nodeq *q, const void *msg, size_t len)
{
    struct take tk = { .q = q };

    if (!q || proto_each_rec(msg, len, &tk.job, take_record, &tk, NULL,
                             0) < 0)
        return 0;
    return tk.job == q->id;
}

void nodeq_on_sent(struct nodeq *q, const void *ctx)
{
    if (q && ctx == q->sendbuf)
        q->sending = 0;
    else if (q && ctx == q->msg)
        q->forwards--;
}

/* Has our subtree answered, or is its time up?  Then whoever is missing
 * is recorded down and the answer is complete. */
static int ready(struct nodeq *q, double now)
{
    char what[32];

    if (q->complete)
        return 1;
    if (q->got < q->expect && now < q->deadline)
        return 0;
    snprintf(what, sizeof(what), "%.0f s", q->wait_s);
    for (int i = 0; i < q->n; i++)
        if (q->mine[i] && !q->have[i])
            add_down(q, i, "no answer within %s (asked by %s)", what);
    q->complete = 1;
    return 1;
}

long nodeq_wait_ns(struct nodeq *q, double now)
{
    if (!q)
        return -1;
    if (!q->complete)
        return now >= q->deadline ? 0 : (long)((q->deadline - now) * 1e9);
    return q->answer.len && !q->sending && q->self >= 0 ? RETRY_NS : -1;
}

/* The nearest live ancestor from node p up (p itself, else its parent,
 * ..., else the origin; p -1 is the origin): q->reply and q->reply_at.
 * Returns the fab peer, or -1. */
static int reply_peer(struct nodeq *q, int p, char *err, size_t errlen)
{
    for (;; p = topo_parent(q->t, p)) {
        const char *name = p >= 0 ? hostlist_nth(q->nodes, p) : q->origin;
        int peer = fab_add_peer(q->f, name, err, errlen);

        if (peer >= 0 && fab_ring(q->f, peer) == 0) {
            q->reply_at = p;
            q->stuck_since = 0;
            return q->reply = peer;
        }
        if (p < 0)
            return seterr(err, errlen, EHOSTDOWN, "answering query %#llx: "
                          "no ancestor is left (%s is gone)",
                          (unsigned long long)q->id, name);
    }
}

int nodeq_flush(struct nodeq *q, double now, char *err, size_t errlen)
{
    size_t len;

    if (!ready(q, now) || q->sending || !q->answer.len)
        return 0;
    if (q->reply < 0
        && reply_peer(q, topo_parent(q->t, q->self), err, errlen) < 0) {
        proto_batch_free(&q->answer);
        return -1;
    }
    len = proto_batch_take(&q->answer, q->id, q->sendbuf);
    if (fab_send(q->f, q->reply, PROTO_TAG_UP, q->sendbuf, len,
                 q->sendbuf) == 0) {
        q->sending = 1;
        q->stuck_since = 0;
        return 0;
    }
    /* A peer that does not poll keeps saying EAGAIN, and so does one over
     * tcp that is gone (nothing tells that from its address): after
     * NODEQ_HOP_S, answer the next ancestor up instead, whose query
     * reached us directly if it found that one gone. */
    if (errno == EAGAIN && !q->stuck_since)
        q->stuck_since = now;
    if (errno == EAGAIN && (now - q->stuck_since < NODEQ_HOP_S
                            || (q->reply_at >= 0
                                && reply_peer(q, topo_parent(q->t,
                                                             q->reply_at),
                                              err, errlen) >= 0)))
        return proto_batch_unget(&q->answer, q->sendbuf, len);
    proto_batch_free(&q->answer);
    return seterr(err, errlen, errno, "answering query %#llx: %s",
                  (unsigned long long)q->id, strerror(errno));
}

size_t nodeq_take(struct nodeq *q, double now, void *out)
{
    if (!ready(q, now))
        return 0;
    return proto_batch_take(&q->answer, q->id, out);
}

int nodeq_done(const struct nodeq *q)
{
    return q->complete && !q->answer.len && !q->sending && q->forwards <= 0;
}

int nodeq_make_room(struct nodeq **cur, struct nodeq **old)
{
    nodeq_reap(old);
    nodeq_reap(cur);
    if (!*cur)
        return 0;
    if (*old || !(*cur)->complete || (*cur)->answer.len) {
        errno = EBUSY;
        return -1;
    }
    *old = *cur;
    *cur = NULL;
    return 0;
}

void nodeq_reap(struct nodeq **q)
{
    if (*q && nodeq_done(*q)) {
        nodeq_destroy(*q);
        *q = NULL;
    }
}
