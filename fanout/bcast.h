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
 * silently accepted.  bcast_run polls the fabric only while it lasts;
 * bcast_create and its friends below let an event loop drive it instead,
 * with children that come and go.
 *
 * Errors: -1 with errno set, plus a one-line message in err (may be NULL).
 */
#ifndef VEXEC_BCAST_H
#define VEXEC_BCAST_H

#include <stddef.h>
#include <stdint.h>

#include "fanout/fabric.h"

/* Default chunk: 256 KiB-1 MiB chunks were fastest over shm; 512 KiB
 * keeps a 4 MiB image at 8 chunks, enough to fill a pipeline of depth 3-4. */
#define BCAST_CHUNK_DEFAULT (512UL << 10)

/* vexec's default between nodes on one host (shm): the whole image, up
 * to 8 MiB.  There every node shares the same few cores, so cutting the
 * image finer buys no parallelism, only wake-ups and locked queue posts:
 * at 1023 nodes the 4.9 MB image took a median 1.16 s in one chunk, 1.20 s
 * in two, 1.23 s in 2 MiB chunks and ~1.28 s in 512 KiB ones (8
 * interleaved launches each).  Between hosts BCAST_CHUNK_DEFAULT stays. */
#define BCAST_CHUNK_ONE_HOST (8UL << 20)

/* Chunk sizes accepted: below 4 KiB a chunk is all overhead, and shm moves
 * messages up to 4 KiB inline; wide trees with 64 KiB chunks already
 * overran shm's 1024-entry queues when nothing bounded the sends. */
#define BCAST_CHUNK_MIN 4096UL
#define BCAST_CHUNK_MAX (64UL << 20)

/* Sends a node keeps in flight at once, over all its children, and
 * receives it keeps posted ahead: half of shm's FAB_SHM_QUEUE-entry transmit,
 * receive and completion queues, and enough to keep 64 children busy. */
#define BCAST_MAX_SENDS 64
#define BCAST_MAX_RECVS 16

/* A broadcast with no progress for this long has stalled: a peer died or
 * stopped.  Far above any chunk's copy time (~0.1 ms), below the point
 * where a user would give up on a launch. */
#define BCAST_STALL_DEFAULT_S 10.0

/* A sender keeps at most this many sends in flight to one child, so a
 * child that stopped cannot take the whole window from its siblings. */
#define BCAST_KID_SENDS 16

/* One node's place in a broadcast and what else it is waiting for. */
struct bcast_io {
    int parent;             /* fab peer index of the parent; -1: the root */
    const int *kids;        /* fab peer indices of the children, in the */
    int nkids;              /* order to send to them (topo_children's) */
    uint32_t stream;        /* tag space (BCAST_STREAM_MASK bits): every
                               node of one broadcast uses the same, and a
                               new one per broadcast keeps a failed one's
                               messages from matching the next */
    /* Completions of operations the broadcast did not post (the caller's
     * own receives and sends on the same endpoint) go here; return 0 to go
     * on, or -1 with errno set and err filled to abort the broadcast.
     * NULL: such a completion is an error (EPROTO).  bcast_run only. */
    fab_handler_fn other;
    void *arg;
    double stall_s;         /* 0: BCAST_STALL_DEFAULT_S (bcast_run only) */
};

/* Stream ids have 31 bits. */
#define BCAST_STREAM_MASK 0x7fffffffu

/* Take part in one broadcast to the end, polling the fabric.  The root
 * (io->parent < 0) sends buf[0..len); every other node receives into
 * buf[0..len) from its parent and forwards each chunk to io->kids.  chunk
 * is the chunk size (0: BCAST_CHUNK_DEFAULT).  Returns 0 once this node
 * has its whole copy and every send to its children has completed; -1
 * with errno EINVAL (bad arguments), EPROTO (the parent broadcasts another
 * length or chunk size, or a chunk of the wrong length arrived), ETIMEDOUT
 * (nothing moved for io->stall_s seconds: err names whom we waited for),
 * what io->other returned, or the fabric's error.  Its receives are
 * withdrawn before it returns, so buf may be reused; sends still in
 * flight (to a child that stopped) may read buf until the endpoint is
 * destroyed or the child is given up. */
int bcast_run(struct fab *f, const struct bcast_io *io, void *buf,
              size_t len, size_t chunk, char *err, size_t errlen);

/* ---- the same broadcast as an object, for an event loop ----
 *
 * A daemon drives its broadcast among everything else it does, and its
 * tree can change while it runs: a child that died is dropped, the
 * orphaned children are added to the nearest live ancestor's broadcast
 * (bcast_add_kid, from the chunk they already have), and the adopted node
 * listens on a new stream (bcast_resume) so that late messages of its
 * dead parent cannot match.  The caller polls the fabric and hands every
 * event to bcast_event, and calls bcast_step after that. */
struct bcast;

/* A broadcast as for bcast_run (io->other and io->stall_s unused), its
 * receives posted.  Returns it, or NULL (EINVAL, ENOMEM, fabric errors). */
struct bcast *bcast_create(struct fab *f, const struct bcast_io *io,
                           void *buf, size_t len, size_t chunk, char *err,
                           size_t errlen);

/* Withdraw its receives and free it.  Sends still in flight are the
 * caller's to give up (fab_drop_peer) or wait for.  Accepts NULL. */
void bcast_destroy(struct bcast *b);

/* Post the receives and sends that can be posted now.  Returns 0, or -1
 * on a fabric error. */
int bcast_step(struct bcast *b, char *err, size_t errlen);

/* Take ev if it is the broadcast's.  Returns 1 if it was (consumed), 0 if
 * not, -1 with err set on a protocol error (EPROTO). */
int bcast_event(struct bcast *b, const struct fab_event *ev, char *err,
                size_t errlen);

/* Has the whole buffer arrived (always, at the root)? */
int bcast_have_all(const struct bcast *b);

/* Bytes from the start of the buffer that have arrived (all of them at
 * the root). */
size_t bcast_have_bytes(const struct bcast *b);

/* Has it arrived and every send to every child not dropped completed? */
int bcast_done(const struct bcast *b);

/* Seconds since anything of the broadcast last moved. */
double bcast_quiet(const struct bcast *b);

/* A new parent, at fab peer parent (stream: the one it will send on):
 * withdraw the posted receives and post them again on stream, from the
 * first chunk missing; on the stream already listened on, leave them
 * posted.  Returns that chunk (the number of chunks if none is missing:
 * then nothing more is expected), or -1 on a fabric error. */
long bcast_resume(struct bcast *b, int parent, uint32_t stream, char *err,
                  size_t errlen);

/* Is all that is left the children's completions of sends already
 * posted?  Each child rings its parent once it has the whole buffer
 * (shm rings nothing when a send completes), so the caller may sleep on
 * the doorbell then rather than poll. */
int bcast_sleepy(const struct bcast *b);

/* Sends to children posted and not completed (dropped ones excluded). */
size_t bcast_sends_in_flight(const struct bcast *b);

/* A new child at fab peer, listening on stream: send it the header, then
 * every chunk from chunk from on, as they are here.  Returns 0, or -1
 * (ENOSPC: FAB_MAX_PEERS children, EINVAL). */
int bcast_add_kid(struct bcast *b, int peer, uint32_t stream, size_t from);

/* Stop sending to the child at fab peer (it died); its sends in flight no
 * longer count.  The caller also gives the peer up (fab_drop_peer). */
void bcast_drop_kid(struct bcast *b, int peer);

/* Seconds the child at peer has had sends in flight with none completing
 * (0 when none is in flight), and whether one of them failed. */
double bcast_kid_stuck(const struct bcast *b, int peer, int *failed);

#endif
