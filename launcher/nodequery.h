/* nodequery.h - answering a QUERY (vexec nodes) down a tree, as one node.
 *
 * A QUERY (proto.h) names nodes and a tree over them, like a LAUNCH.
 * Every node that receives it (after checking its credential, auth.h)
 * passes it on, byte for byte, to its children, adds its own NODE record
 * (nodestat.h), merges the records its subtree sends up, and sends one
 * answer (a batch, cut into messages of PROTO_MSG_MAX) to its parent.  The
 * tree's origin (the gateway) runs the same engine with no record of its
 * own and node 0 as its only child, and hands the answer to vexec.
 *
 * Dead nodes do not hide live ones: a child whose daemon is gone (its
 * doorbell is: fab_add_peer or fab_ring say EHOSTDOWN), or that cannot be
 * sent the query within NODEQ_HOP_S, is recorded down by its parent,
 * which then asks that child's children itself.  So a node answers its
 * nearest live ancestor: its parent, or, if the parent's daemon is gone,
 * the parent's parent, and so on up to the origin.  Over tcp nothing
 * shows a daemon gone but its silence: an ancestor that takes no answer
 * (EAGAIN) for NODEQ_HOP_S is passed over for the next one up.  A node
 * waits for its subtree at most NODEQ_HOP_S per level below it; whoever
 * has not answered by then is recorded down ("no answer"), so every node
 * of the list is reported exactly once, and the answer is bounded in time
 * even when a daemon hangs (its whole subtree is then reported down).
 *
 * The engine owns no event loop: its owner passes it the completions of
 * its sends and the up messages it receives, and asks it when to wake.
 *
 * Errors: -1 or NULL with errno set, and a one-line message in err.
 */
#ifndef VEXEC_NODEQUERY_H
#define VEXEC_NODEQUERY_H

#include "fanout/fabric.h"
#include "launcher/nodestat.h"

#include <stddef.h>
#include <stdint.h>

/* How long a node waits, per level of the tree below it, for its
 * subtree's answers, and how long it tries to hand a child the query: a
 * healthy level answers in milliseconds, but a daemon on a 2-core machine
 * loaded by hundreds of others can take a second to be scheduled. */
#define NODEQ_HOP_S 3.0

struct nodeq;

/* An engine for the signed QUERY msg (len bytes; its first signed_len are
 * the decoded request) arriving at endpoint f: a node of its list, or its
 * origin.  msg is copied.  Returns it, or NULL (EPROTO: a bad tree or
 * list, or one that does not name f; ENOMEM). */
struct nodeq *nodeq_create(struct fab *f, const void *msg, size_t len,
                           size_t signed_len, char *err, size_t errlen);

/* Free q.  Accepts NULL and keeps errno.  Call only once nodeq_done. */
void nodeq_destroy(struct nodeq *q);

/* Returns the query's id (the job field of its messages). */
uint64_t nodeq_id(const struct nodeq *q);

/* Add our own record (own; NULL at the origin) and pass the query to our
 * children, recording the dead ones down and asking their children
 * instead.  Completions that arrive meanwhile go to fn (the owner's
 * handler, which may call back into q). */
void nodeq_start(struct nodeq *q, const struct nodestat *own,
                 fab_handler_fn fn, void *arg);

/* An up message of len bytes: if it is an answer to q, take its NODE
 * records (each node once, only nodes of our subtree).  Returns 1 if it
 * was q's, 0 if not (q may be NULL). */
int nodeq_on_up(struct nodeq *q, const void *msg, size_t len);

/* A send completed: note it if it was one of q's (q may be NULL). */
void nodeq_on_sent(struct nodeq *q, const void *ctx);

/* How long the owner may sleep before q needs it, in ns, at now
 * (CLOCK_MONOTONIC seconds): 0 at once, -1 not for q's sake (q may be
 * NULL). */
long nodeq_wait_ns(struct nodeq *q, double now);

/* A node: once our subtree answered or its time is up, send the answer
 * to our nearest live ancestor, one message at a time.  Returns 0, or -1
 * when nobody is left to answer to (the answer is dropped). */
int nodeq_flush(struct nodeq *q, double now, char *err, size_t errlen);

/* The origin: once the answer is complete, move its next message into
 * out (PROTO_MSG_MAX bytes).  Returns its length, 0 if none (yet). */
size_t nodeq_take(struct nodeq *q, double now, void *out);

/* Is q finished: its answer sent or taken, and no send of it in flight? */
int nodeq_done(const struct nodeq *q);

/* An owner answers one query at a time, but the last sends of the one
 * before may still be in flight when the next arrives (the next `vexec
 * nodes` can come milliseconds after the last answer): it keeps that one
 * in *old until they complete.  nodeq_make_room moves *cur to *old if
 * *cur has sent or handed over its whole answer (freeing *old if done).
 * Returns 0 when *cur is free, or -1 (EBUSY). */
int nodeq_make_room(struct nodeq **cur, struct nodeq **old);

/* Free *q and set it NULL if it is done (q may point at NULL). */
void nodeq_reap(struct nodeq **q);

#endif
