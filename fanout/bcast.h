/* bcast.h - chunked, pipelined broadcast of one buffer down a tree.
 *
 * Node 0 of a topology holds len bytes; every other node receives them
 * from its parent and forwards them to its children.  The buffer moves in
 * chunks, and a node forwards chunk c to its children as soon as c has
 * arrived, while c+1 is still arriving (cut-through), so the time to reach
 * the deepest node is about (depth + chunks - 1) chunk-hops instead of
 * depth whole-buffer hops.  Children get each chunk in topo_children
 * order (largest subtree first).
 *
 * Every node calls bcast_run with its parent and children in one tree
 * (fanout/topo.h) and the same length and chunk size; the chunks travel as tagged fabric messages (fabric.h), and a
 * mismatch in length or chunk size is detected and reported, not
 * silently accepted.  The run polls the fabric only while it lasts.
 *
 * Errors: -1 with errno set, plus a one-line message in err (may be NULL).
 */
#ifndef VEXEC_BCAST_H
#define VEXEC_BCAST_H

#include <stddef.h>

#include "fanout/fabric.h"

/* Default chunk: 256 KiB-1 MiB chunks were fastest over shm; 512 KiB
 * keeps a 4 MiB image at 8 chunks, enough to fill a pipeline of depth 3-4. */
#define BCAST_CHUNK_DEFAULT (512UL << 10)

/* Chunk sizes accepted: below 4 KiB a chunk is all overhead, and shm moves
 * messages up to 4 KiB inline; wide trees with 64 KiB chunks already
 * overran shm's 1024-entry queues when nothing bounded the sends. */
#define BCAST_CHUNK_MIN 4096UL
#define BCAST_CHUNK_MAX (64UL << 20)

/* Sends a node keeps in flight at once, over all its children, and
 * receives it keeps posted ahead: well under shm's 1024-entry transmit,
 * receive and completion queues, and enough to keep 64 children busy. */
#define BCAST_MAX_SENDS 64
#define BCAST_MAX_RECVS 16

/* A broadcast with no progress for this long has stalled: a peer died or
 * stopped.  Far above any chunk's copy time (~0.1 ms), below the point
 * where a user would give up on a launch. */
#define BCAST_STALL_DEFAULT_S 10.0

/* One node's place in a broadcast and what else it is waiting for. */
struct bcast_io {
    int parent;             /* fab peer index of the parent; -1: the root */
    const int *kids;        /* fab peer indices of the children, in the */
    int nkids;              /* order to send to them (topo_children's) */
    /* Completions of operations the broadcast did not post (the caller's
     * own receives and sends on the same endpoint) go here; return 0 to go
     * on, or -1 with errno set and err filled to abort the broadcast.
     * NULL: such a completion is an error (EPROTO). */
    fab_handler_fn other;
    void *arg;
    double stall_s;         /* 0: BCAST_STALL_DEFAULT_S */
};

/* Take part in one broadcast.  The root (io->parent < 0) sends
 * buf[0..len); every other node receives into buf[0..len) from its parent
 * and forwards each chunk to io->kids.  chunk is the chunk size (0:
 * BCAST_CHUNK_DEFAULT).  Returns 0 once this node has its whole copy and
 * every send to its children has completed; -1 with errno EINVAL (bad
 * arguments), EPROTO (the parent broadcasts another length or chunk size,
 * or a chunk of the wrong length arrived), ETIMEDOUT (nothing moved for
 * io->stall_s seconds: err names whom we waited for), EHOSTDOWN (a peer's
 * process is gone), what io->other returned, or the fabric's error.
 * After a failure the endpoint may still hold receives into buf and into
 * bcast_run's own frame: destroy it (fab_destroy) before buf is reused,
 * and do not call bcast_run on it again. */
int bcast_run(struct fab *f, const struct bcast_io *io, void *buf,
              size_t len, size_t chunk, char *err, size_t errlen);

#endif
