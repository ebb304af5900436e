/* bcast.c - the pipelined broadcast: post receives ahead, forward what has
 * arrived, poll until everything is in and out.
 *
 * Messages: a 16-byte header (length and chunk size, so nodes that
 * disagree fail instead of waiting for chunks that never come), then one
 * message per chunk, tagged with its index.  Receives for the next
 * BCAST_MAX_RECVS chunks are always posted, straight into their place in
 * buf, so shm's single copy lands where the data belongs.  A chunk is
 * forwarded once it and every chunk before it have arrived; sends go out
 * chunk by chunk, each chunk to every child in topo_children order, with at
 * most BCAST_MAX_SENDS in flight.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/bcast.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tags: the top byte says "broadcast"; bit 55 marks the header, the low
 * bits hold the chunk index.  Receives take these tags from any sender: a
 * node has one parent, and a directed receive names the parent by its
 * address-vector slot, which shm may have given out differently when the
 * parent sent to us before we inserted it (suspected when 7 children of
 * one node waited for chunks in vain on a first launch to 1023 nodes). */
#define TAG_BCAST (UINT64_C(0xbc) << 56)
#define TAG_HEADER (TAG_BCAST | (UINT64_C(1) << 55))
#define TAG_CHUNK_MASK ((UINT64_C(1) << 55) - 1)

struct header {
    uint64_t len;
    uint64_t chunk;
};

/* One node's state during one broadcast. */
struct bc {
    struct fab *f;
    const struct bcast_io *io;
    char *buf;
    size_t len, chunk, nchunks;
    int parent;                 /* fab peer index, -1 at the root */
    int nkids;
    const int *kid_peer;        /* fab peer index per child */
    size_t *kid_sent;           /* messages posted per child: header, chunks */
    struct header hdr;          /* what this node sends and expects */
    struct header got;          /* what the parent sent */
    int hdr_in;                 /* header received (or not needed) */
    size_t posted;              /* chunk receives posted */
    size_t have;                /* chunks 0..have-1 have arrived */
    unsigned char *arrived;     /* per chunk, for out-of-order completions */
    size_t sends_posted, sends_done;
};

static size_t chunk_len(const struct bc *b, size_t c)
{
    return c + 1 < b->nchunks ? b->chunk : b->len - c * b->chunk;
}

/* Keep BCAST_MAX_RECVS chunk receives posted ahead of the arrivals. */
static int post_receives(struct bc *b, char *err, size_t errlen)
{
    if (b->parent < 0)
        return 0;       /* the root receives nothing */
    while (b->posted < b->nchunks && b->posted < b->have + BCAST_MAX_RECVS) {
        size_t c = b->posted;

        if (fab_recv(b->f, -1, TAG_BCAST | c, b->buf + c * b->chunk,
                     chunk_len(b, c), b) < 0) {
            if (errno == EAGAIN)
                return 0;
            return seterr(err, errlen, errno, "posting receive of chunk "
                          "%zu: %s", c, strerror(errno));
        }
        b->posted++;
    }
    return 0;
}

/* Post child k's next message: the header, then chunk after chunk.
 * Returns 1 if posted, 0 if the provider said EAGAIN, -1 on error. */
static int send_one(struct bc *b, int k, char *err, size_t errlen)
{
    const void *data = &b->hdr;
    size_t c = 0, n = sizeof(b->hdr);
    uint64_t tag = TAG_HEADER;

    if (b->kid_sent[k] > 0) {
        c = b->kid_sent[k] - 1;
        data = b->buf + c * b->chunk;
        n = chunk_len(b, c);
        tag = TAG_BCAST | c;
    }
    if (fab_send(b->f, b->kid_peer[k], tag, data, n, b) < 0) {
        if (errno == EAGAIN)
            return 0;
        return seterr(err, errlen, errno, "sending to child %d: %s", k,
                      strerror(errno));
    }
    b->kid_sent[k]++;
    b->sends_posted++;
    return 1;
}

/* Does child k have a message to be sent now: its header, or a chunk
 * that has arrived? */
static int kid_ready(const struct bc *b, int k)
{
    return b->kid_sent[k] == 0 || b->kid_sent[k] - 1 < b->have;
}

/* Post sends in rounds, one per ready child per round, so chunk c goes to
 * every child before c+1 goes to any; stop at BCAST_MAX_SENDS in flight.
 * A send that hit EAGAIN (the child has not polled yet) is tried again in
 * the next round while others progress, and in the next call otherwise. */
static int post_sends(struct bc *b, char *err, size_t errlen)
{
    int progress = 1;

    while (progress) {
        progress = 0;
        for (int k = 0; k < b->nkids; k++) {
            int r;

            if (b->sends_posted - b->sends_done >= BCAST_MAX_SENDS)
                return 0;
            if (!kid_ready(b, k))
                continue;
            if ((r = send_one(b, k, err, errlen)) < 0)
                return -1;
            progress |= r;
        }
    }
    return 0;
}

static int check_header(struct bc *b, size_t n, char *err, size_t errlen)
{
    if (n != sizeof(b->got) || b->got.len != b->hdr.len
        || b->got.chunk != b->hdr.chunk)
        return seterr(err, errlen, EPROTO, "parent broadcasts %" PRIu64
                      " bytes in chunks of %" PRIu64 ", this node expects "
                      "%zu in chunks of %zu", b->got.len, b->got.chunk,
                      b->len, b->chunk);
    b->hdr_in = 1;
    return 0;
}

static int on_received(struct bc *b, const struct fab_event *ev, char *err,
                       size_t errlen)
{
    size_t c = ev->tag & TAG_CHUNK_MASK;

    if (ev->tag == TAG_HEADER)
        return check_header(b, ev->len, err, errlen);
    if (c >= b->nchunks || ev->len != chunk_len(b, c) || b->arrived[c])
        return seterr(err, errlen, EPROTO, "unexpected chunk %zu of %zu "
                      "bytes", c, ev->len);
    b->arrived[c] = 1;
    while (b->have < b->nchunks && b->arrived[b->have])
        b->have++;
    return 0;
}

static int finished(const struct bc *b)
{
    return b->hdr_in && b->have == b->nchunks
           && b->sends_done == (size_t)b->nkids * (b->nchunks + 1);
}

/* Route one completion: ours carry ctx b, the caller's go to io->other. */
static int on_event(struct bc *b, const struct fab_event *ev, char *err,
                    size_t errlen)
{
    if (ev->ctx != b) {
        if (b->io->other)
            return b->io->other(b->io->arg, ev, err, errlen);
        return seterr(err, errlen, EPROTO, "unexpected message with tag "
                      "%#" PRIx64, ev->tag);
    }
    if (ev->kind == FAB_SENT) {
        b->sends_done++;
        return 0;
    }
    return on_received(b, ev, err, errlen);
}

static int stalled(const struct bc *b, double stall, char *err,
                   size_t errlen)
{
    if (b->have < b->nchunks || !b->hdr_in)
        return seterr(err, errlen, ETIMEDOUT, "no data from the parent "
                      "for %.0f s (%zu of %zu chunks in)", stall, b->have,
                      b->nchunks);
    return seterr(err, errlen, ETIMEDOUT, "children took nothing for %.0f s "
                  "(%zu of %zu sends done)", stall, b->sends_done,
                  (size_t)b->nkids * (b->nchunks + 1));
}

/* Progress until finished: post what can be posted, poll, and wait on
 * the doorbell only briefly when nothing happened. */
static int run(struct bc *b, char *err, size_t errlen)
{
    double stall = b->io->stall_s > 0 ? b->io->stall_s : BCAST_STALL_DEFAULT_S;
    double last = mono_now();
    struct fab_event ev[16];

    while (!finished(b)) {
        int n;

        if (post_receives(b, err, errlen) < 0
            || post_sends(b, err, errlen) < 0)
            return -1;
        if ((n = fab_poll(b->f, ev, 16, err, errlen)) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (on_event(b, &ev[i], err, errlen) < 0)
                return -1;
        if (n > 0) {
            last = mono_now();
            continue;
        }
        if (mono_now() - last > stall)
            return stalled(b, stall, err, errlen);
        fab_idle(b->f);
    }
    return 0;
}

static int check_args(const struct bcast_io *io, const void *buf,
                      size_t chunk, char *err, size_t errlen)
{
    if (!io || !buf || io->nkids < 0 || (io->nkids > 0 && !io->kids))
        return seterr(err, errlen, EINVAL, "no buffer or peer table");
    if (chunk < BCAST_CHUNK_MIN || chunk > BCAST_CHUNK_MAX)
        return seterr(err, errlen, EINVAL, "chunk size %zu outside "
                      "%lu..%lu", chunk, BCAST_CHUNK_MIN, BCAST_CHUNK_MAX);
    return 0;
}

static void bc_free(struct bc *b)
{
    free(b->kid_sent);
    free(b->arrived);
}

static int bc_init(struct bc *b, char *err, size_t errlen)
{
    b->nchunks = (b->len + b->chunk - 1) / b->chunk;
    b->hdr = (struct header){ .len = b->len, .chunk = b->chunk };
    b->parent = b->io->parent;
    b->hdr_in = b->parent < 0;
    b->have = b->parent < 0 ? b->nchunks : 0;
    b->nkids = b->io->nkids;
    b->kid_peer = b->io->kids;
    b->kid_sent = calloc((size_t)b->nkids + 1, sizeof(*b->kid_sent));
    b->arrived = calloc(b->nchunks + 1, 1);
    if (!b->kid_sent || !b->arrived)
        return seterr(err, errlen, ENOMEM, "out of memory");
    return 0;
}

int bcast_run(struct fab *f, const struct bcast_io *io, void *buf,
              size_t len, size_t chunk, char *err, size_t errlen)
{
    struct bc b = { .f = f, .io = io, .buf = buf, .len = len };
    int ret;

    b.chunk = chunk ? chunk : BCAST_CHUNK_DEFAULT;
    if (check_args(io, buf, b.chunk, err, errlen) < 0)
        return -1;
    if (bc_init(&b, err, errlen) < 0) {
        bc_free(&b);
        return -1;
    }
    /* Chunk receives are posted by run(); tags keep them apart. */
    if (b.parent >= 0 && fab_recv(f, -1, TAG_HEADER, &b.got,
                                  sizeof(b.got), &b) < 0) {
        ret = seterr(err, errlen, errno, "posting header receive: %s",
                     strerror(errno));
        bc_free(&b);
        return ret;
    }
    ret = run(&b, err, errlen);
    bc_free(&b);
    return ret;
}
