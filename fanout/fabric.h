/* fabric.h - a small tagged-message layer over libfabric.
 *
 * Every byte that moves between vexec processes goes over libfabric.  On
 * one host that is the shm provider: FI_EP_RDM endpoints with tagged
 * messages, single-copy through cross-memory attach.  Between hosts it is
 * tcp;ofi_rxm: an endpoint named "IP:PORT" (netaddr.h) is a tcp endpoint
 * bound to that address, and reaches only other tcp endpoints; the API is
 * the same in both modes (see "tcp" below).  This module hides the
 * fabric/domain/endpoint/AV/CQ setup behind one opaque object, names
 * endpoints with chosen strings (FI_ADDR_STR: the endpoint "node17" is the
 * file /dev/shm/node17 while it lives), and offers post-and-poll send and
 * receive.  It owns no event loop: callers post operations, then call
 * fab_poll and fab_idle until what they wait for has completed.
 *
 * What libfabric 1.17's shm provider demands (measured; see DESIGN.md):
 * - it cannot block: a transfer only moves while both sides poll, so poll
 *   while a transfer is in flight and sleep only briefly (fab_idle);
 *   between transfers an endpoint must not poll at all, so each endpoint
 *   also has a doorbell: an abstract Unix datagram socket named after it
 *   ("@vexec-bell.NAME", bell.h), which carries no data.  fab_send rings the
 *   peer's doorbell after posting, so a process can sleep in the kernel
 *   (epoll on fab_fd) and still learn that a message waits for it;
 * - a peer may be added only after its endpoint exists (the peer announced
 *   it): 1.17 reuses the slot of a name inserted too early;
 * - the first send to a new peer fails with EAGAIN until that peer polls;
 * - one endpoint reaches at most FAB_MAX_PEERS peers;
 * - it needs no memory registration (mr_mode has no FI_MR_LOCAL), so any
 *   buffer can be sent; huge-page buffers (fab_buf_alloc) are much faster.
 *
 * What tcp;ofi_rxm does differently (libfabric 1.17, measured):
 * - its completion queue has a kernel wait object (FI_WAIT_FD), so fab_fd
 *   is that fd and there are no doorbells: doorbells are abstract Unix
 *   sockets, private to a network namespace, so they could not cross
 *   hosts anyway.  Before blocking on fab_fd without a timeout, call
 *   fab_can_sleep;
 * - a peer is added without checking it lives: rxm connects on the first
 *   send, and a send to an address where nobody listens stays EAGAIN
 *   (fab_send_wait's time limit ends it);
 * - each process costs ~70-90 MB of memory (measured VmRSS), so use it
 *   across hosts, not to emulate hundreds of nodes on one.
 *
 * Errors: -1 or NULL with errno set, plus a one-line message in the
 * caller's err buffer (may be NULL).
 */
#ifndef VEXEC_FABRIC_H
#define VEXEC_FABRIC_H

#include <stddef.h>
#include <stdint.h>

/* The shm provider's per-endpoint peer limit (its domain ep_cnt). */
#define FAB_MAX_PEERS 256

/* Longest endpoint name: shm turns it into a /dev/shm file name, and the
 * doorbell's abstract socket name (108 bytes at most) holds it too. */
#define FAB_NAME_MAX 96

struct fab;

/* What fab_poll reports: one completed operation, or one that failed
 * (a receive whose sender died mid-copy, a send the provider refused).
 * Operations withdrawn by fab_cancel or fab_drop_peer report nothing. */
enum fab_kind { FAB_SENT, FAB_RECEIVED, FAB_FAILED };

struct fab_event {
    enum fab_kind kind;
    void *ctx;          /* the ctx given to fab_send / fab_recv */
    size_t len;         /* bytes received (FAB_RECEIVED) */
    uint64_t tag;       /* the message's tag (FAB_RECEIVED, FAB_FAILED) */
    int recv;           /* FAB_FAILED: 1 a receive, 0 a send */
    int err;            /* FAB_FAILED: errno */
};

/* Load libfabric's providers (fi_getinfo's first call, for shm).  Debian's
 * libfabric initialises every built-in provider then, and its verbs
 * provider reads /proc/kallsyms: ~0.1 s of CPU, whatever FI_PROVIDER says.
 * A process that forks many endpoint owners (vexec-cluster, the tests)
 * calls this once before forking so its children skip that cost.  Calling
 * it is optional and repeatable.  Returns 0, or -1 if no shm provider. */
int fab_init(char *err, size_t errlen);

/* Open an shm endpoint named name (1..FAB_NAME_MAX characters, no '/' or
 * ':'), with its doorbell; or, for a name "IP:PORT", a tcp;ofi_rxm
 * endpoint bound to that address (port 0: one the kernel picks; fab_name
 * then tells which).  Returns it, or NULL with errno EINVAL (bad name),
 * EEXIST (the shm name is taken: /dev/shm/name or the doorbell exists),
 * EADDRNOTAVAIL (the address is not this host's, or is in use), ENODATA
 * (no such provider) or what libfabric reported. */
struct fab *fab_create(const char *name, char *err, size_t errlen);

/* Close the endpoint, which removes its /dev/shm file.  Operations still
 * posted are abandoned.  Accepts NULL and keeps errno. */
void fab_destroy(struct fab *f);

/* Returns the endpoint's name (for tcp: "IP:PORT" as bound). */
const char *fab_name(const struct fab *f);

/* Returns the doorbell's file descriptor (tcp: the completion queue's
 * wait fd): readable when a peer has rung (posted something for this
 * endpoint, or wants it to poll).  For epoll; fab_poll and fab_idle
 * drain it. */
int fab_fd(const struct fab *f);

/* Empty the doorbell's queue (after epoll found fab_fd readable): the
 * rings have done their job once the caller polls.  (tcp: nothing.) */
void fab_bell_clear(struct fab *f);

/* May the caller block on fab_fd with no timeout now?  shm: always (a
 * sender rings).  tcp: only if libfabric's fi_trywait says no completion
 * is pending; otherwise poll first.  Returns 1 or 0. */
int fab_can_sleep(struct fab *f);


/* Make the endpoint named name reachable, and ring it once so that it
 * learns our process id (fab_peer_pid).  Call only once that endpoint
 * exists.  Adding a name that is already a peer returns its index again.
 * Returns the peer's index (0, 1, ... in the order added), or -1 with errno
 * ENOSPC (FAB_MAX_PEERS reached), EHOSTDOWN (no endpoint of that name
 * lives; shm only), EINVAL (a bad name, or a tcp name for an shm endpoint
 * or the reverse) or libfabric's error. */
int fab_add_peer(struct fab *f, const char *name, char *err, size_t errlen);

/* Ring peer's doorbell, asking it to poll (tcp: nothing to do).  Returns
 * 0, or -1 with errno EHOSTDOWN when the peer's process is gone. */
int fab_ring(struct fab *f, int peer);

/* Hold the rings of fab_send from now on until fab_flush_rings, which
 * rings each peer posted to since then once.  An event loop holds them
 * while it handles what woke it: a peer that gets a LAUNCH and a
 * broadcast header in one turn, or a parent that gets a child's "image
 * in" and its report, is woken once, not twice — every wake-up of a
 * process is a context switch, the dearest thing on a host with hundreds
 * of daemons per core.  A send the provider refuses (EAGAIN) still rings
 * at once: the peer must poll for room to appear.  Holding twice is
 * holding once.  Returns nothing; the rings' failures show in the sends'
 * completions. */
void fab_hold_rings(struct fab *f);
void fab_flush_rings(struct fab *f);

/* Ring peer now, or with the held rings at the flush if they are held. */
void fab_ring_soon(struct fab *f, int peer);

/* Post a send of len bytes of buf to peer with tag, and ring the peer.
 * buf must stay intact until the FAB_SENT event for ctx.  Returns 0, or -1
 * with errno EAGAIN when the provider cannot take it now (queue full, or
 * the peer has not polled yet; the peer has been rung) or the peer's
 * process is stopped: call fab_poll and try again.  EHOSTDOWN: the peer's
 * process is gone.  Other errno: failure.
 *
 * Nothing is posted to a stopped peer (shm): a sender takes the lock of
 * the receiver's queue, which the receiver takes too while it reads the
 * queue, and a SIGSTOP that lands then leaves every sender spinning on
 * that lock.  A peer stopped while we already spin on its lock holds us
 * until pthread_spin_lock takes the lock over (fab_spin_stuck_s). */
int fab_send(struct fab *f, int peer, uint64_t tag, const void *buf,
             size_t len, void *ctx);

/* Post a receive of up to len bytes into buf of the message with tag from
 * peer (-1: from anyone).  Returns 0, or -1 with errno EAGAIN (receive
 * queue full: poll and retry) or another errno. */
int fab_recv(struct fab *f, int peer, uint64_t tag, void *buf, size_t len,
             void *ctx);

/* Make progress and collect up to max completed or failed operations
 * into ev.  Returns how many (0 when nothing completed), or -1 when the
 * completion queue itself failed (err says how). */
int fab_poll(struct fab *f, struct fab_event *ev, int max, char *err,
             size_t errlen);

/* Handles one completion of an operation the caller posted.  Returns 0,
 * or -1 with errno set and err filled to stop the caller's wait. */
typedef int (*fab_handler_fn)(void *arg, const struct fab_event *ev,
                              char *err, size_t errlen);

/* fab_send, tried again while the provider says EAGAIN (as it does until a
 * new peer has polled once), polling in between and passing completions
 * to fn, for at most limit_s seconds.  Returns 0, or -1 with errno
 * ETIMEDOUT (err: "NAME is stopped" if the peer's process is), fab_send's
 * errno, or fn's; err says which. */
int fab_send_wait(struct fab *f, int peer, uint64_t tag, const void *buf,
                  size_t len, void *ctx, double limit_s, fab_handler_fn fn,
                  void *arg, char *err, size_t errlen);

/* Call when fab_poll found nothing while a transfer is under way: waits
 * for the doorbell.  With sends of ours in flight it waits 25 us at
 * first, then longer, up to FAB_IDLE_MAX_NS, since their completion rings
 * nothing and shm defers work silently; with only receives posted it waits
 * at most FAB_IDLE_QUIET_NS, since a sender rings when it posts. */
void fab_idle(struct fab *f);

/* Bounded idle wait with sends in flight: long enough that hundreds of
 * waiting processes on two cores leave the CPU to the ones that have
 * work, short enough against a chunk's ~45 us copy that a hop adds little
 * latency. */
#define FAB_IDLE_MAX_NS 200000

/* Bounded wait with only receives posted: every post rings (a full
 * doorbell queue is rung already), so this only bounds how late the
 * caller's own deadlines are looked at.  At 5 ms, ~900 leaves waiting for
 * their chunks on a 1023-node cluster woke ~180 000 times a second
 * between them: 12.6 s of CPU per launch, 7.7 s at 50 ms. */
#define FAB_IDLE_QUIET_NS 50000000

/* Sends posted and not yet completed (sends to dropped peers excluded). */
int fab_sends_in_flight(const struct fab *f);

/* Withdraw every receive posted with ctx that has not completed: it will
 * write nothing more into its buffer and report nothing (fi_cancel; a
 * completion already queued is dropped too, so a caller that re-posts
 * may receive that message again).  Returns how many were withdrawn. */
int fab_cancel(struct fab *f, void *ctx);

/* Give up peer (its process died or stopped): sends to it that have not
 * completed stop counting as in flight and will report nothing, even if
 * the peer comes back and completes them.  Their buffers may still be
 * read if it does, so keep them unchanged or let them be.  The peer stays
 * addressable.  shm keeps each abandoned send queued in the endpoint,
 * which holds FAB_OPS entries in all. */
void fab_drop_peer(struct fab *f, int peer);

/* Entries in each queue of an shm endpoint (the provider's default is
 * 1024).  Its 16 MiB region holds this many commands, in a ring that the
 * peers writing to it touch in turn, and as many 4 KiB inject buffers, of
 * which they touch as many as are in use at once.  With 1024, daemons'
 * RSS kept growing for hundreds of launches (+2.2 MB max over 20 launches
 * at 1023 nodes) until every mapped region's ring was touched; with 128
 * it stops after a few (+0.5 MB).  The price: libfabric 1.17 zero-fills
 * a new region from its end of the queues to the end of the file (the
 * name's strncpy), so a region starts with ~7.6 MB touched, not ~3.9 MB,
 * and `vexec-cluster up 1023` takes ~15 s, not ~7.5 s.  Twice the
 * broadcast's sends in flight (bcast.h). */
#define FAB_SHM_QUEUE 128

/* Operations an endpoint tracks at once, posted and abandoned ones
 * together: shm's transmit and receive queues hold FAB_SHM_QUEUE each. */
#define FAB_OPS 4096

/* The process id of peer's endpoint owner on this host, as the kernel
 * reported it with the peer's last doorbell ring (SCM_CREDENTIALS), or 0
 * if it never rang us (and always for tcp).  For telling a peer that is
 * stopped from one that is slow (/proc/PID/stat). */
int fab_peer_pid(const struct fab *f, int peer);

/* How long pthread_spin_lock waits for a lock taken by another, and
 * unchanged, before it takes it over (fabric_wait.c): 10 s of its own
 * spinning unless a test sets it; how many times it did. */
extern double fab_spin_stuck_s;
extern unsigned fab_spin_takeovers;

/* The state letter of peer's process ('R', 'S', 'T' for stopped, ...,
 * as in /proc/PID/stat), or 0 if its pid is unknown or that process is
 * gone.  The file stays open, so a look costs one read, and once the
 * process is gone it reads nothing even if another takes the pid; a
 * reading less than FAB_STATE_FRESH_S old is given again unread (a send
 * looks before every post, and posts come in bursts).  fab_forget_states
 * closes them all and forgets every reading (a daemon calls it as each
 * job ends: an idle daemon holds no more fds than before the job). */
#define FAB_STATE_FRESH_S 0.005
char fab_peer_state(struct fab *f, int peer);
void fab_forget_states(struct fab *f);

/* Returns peer's name as added. */
const char *fab_peer_name(const struct fab *f, int peer);

/* Allocate a transfer buffer of len bytes: anonymous, 2 MiB aligned,
 * transparent huge pages requested.  Cross-memory copies into and out of
 * huge pages were 4-6x faster than with 4 KiB pages.  Allocate once and
 * reuse.  Returns the buffer, or NULL with errno ENOMEM or EINVAL (len 0). */
void *fab_buf_alloc(size_t len, char *err, size_t errlen);

/* Free a buffer from fab_buf_alloc(len).  Accepts NULL and keeps errno. */
void fab_buf_free(void *buf, size_t len);

#endif
