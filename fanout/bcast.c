/* bcast.c - the pipelined broadcast: post receives ahead, forward what has
 * arrived, as an object an event loop drives (bcast_run drives it alone).
 *
 * Messages: a 16-byte header (length and chunk size, so nodes that
 * disagree fail instead of waiting for chunks that never come), then one
 * message per chunk, tagged with the stream and its index.  Receives for
 * the next BCAST_MAX_RECVS chunks are always posted, straight into their
 * place in buf, so shm's single copy lands where the data belongs.  A
 * chunk is forwarded once it and every chunk before it have arrived;
 * sends go out chunk by chunk, each chunk to every child in order, with
 * at most BCAST_MAX_SENDS in flight, BCAST_KID_SENDS per child.
 *
 * Children can be added while it runs (an adopted node, sent everything
 * from the chunk it reported missing first) and dropped (a dead one);
 * a node whose parent changed listens on the new parent's stream
 * (bcast_resume), so a late message from the dead parent, on the old
 * stream, matches nothing.
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

/* Tags: the top byte says "broadcast"; bit 55 marks the header; bits
 * 24..54 hold the stream, the low 24 bits the chunk index.  Receives take
 * these tags from any sender: a node has one parent at a time, and a
 * directed receive names the parent by its address-vector slot, which
 * shm may have given out differently when the parent sent to us before
 * we inserted it. */
#define TAG_BCAST (UINT64_C(0xbc) << 56)
#define TAG_HEADER (UINT64_C(1) << 55)
#define STREAM_SHIFT 24
#define CHUNK_BITS 24
#define TAG_CHUNK_MASK ((UINT64_C(1) << CHUNK_BITS) - 1)

enum chunk_state { C_WANT, C_POSTED, C_IN };

struct header {
    uint64_t len;
    uint64_t chunk;
};

/* One child: what has been posted to it and completed. */
struct kid {
    int peer;
    uint32_t stream;
    int gone;               /* dropped: nothing more is sent or awaited */
    int hdr_sent;
    size_t from;            /* first chunk it needs */
    size_t next;            /* next chunk to post */
    size_t posted, done;    /* sends */
    int failed;             /* a send to it failed */
    double last;            /* last completion, or first post into idle */
};

struct bcast {
    struct fab *f;
    char *buf;
    size_t len, chunk, nchunks;
    int parent;             /* fab peer index, -1 at the root */
    uint32_t stream;        /* what we receive on */
    struct header hdr;      /* what this node sends and expects */
    struct header got;      /* what the parent sent */
    int hdr_in, hdr_posted;
    int told;               /* the parent was rung: we have it all */
    size_t have;            /* chunks 0..have-1 have arrived */
    unsigned char *state;   /* enum chunk_state per chunk */
    size_t in_flight;       /* sends to children not dropped */
    double last;            /* anything moved */
    char rctx;              /* its address: the context of our receives */
    int nkids;
    struct kid kid[FAB_MAX_PEERS];
};

static uint64_t chunk_tag(uint32_t stream, size_t c)
{
    return TAG_BCAST | (uint64_t)stream << STREAM_SHIFT | c;
}

static uint64_t header_tag(uint32_t stream)
{
    return TAG_BCAST | TAG_HEADER | (uint64_t)stream << STREAM_SHIFT;
}

static size_t chunk_len(const struct bcast *b, size_t c)
{
    return c + 1 < b->nchunks ? b->chunk : b->len - c * b->chunk;
}

static int post_header(struct bcast *b, char *err, size_t errlen)
{
    if (b->hdr_posted)
        return 0;
    if (fab_recv(b->f, -1, header_tag(b->stream), &b->got, sizeof(b->got),
                 &b->rctx) < 0)
        return errno == EAGAIN ? 0 : seterr(err, errlen, errno, "posting "
                                            "header receive: %s",
                                            strerror(errno));
    b->hdr_posted = 1;
    return 0;
}

/* Keep the next BCAST_MAX_RECVS missing chunks' receives posted. */
static int post_receives(struct bcast *b, char *err, size_t errlen)
{
    if (b->parent < 0)
        return 0;       /* the root receives nothing */
    if (post_header(b, err, errlen) < 0)
        return -1;
    for (size_t c = b->have; c < b->nchunks && c < b->have + BCAST_MAX_RECVS;
         c++) {
        if (b->state[c] != C_WANT)
            continue;
        if (fab_recv(b->f, -1, chunk_tag(b->stream, c),
                     b->buf + c * b->chunk, chunk_len(b, c), &b->rctx) < 0) {
            if (errno == EAGAIN)
                return 0;
            return seterr(err, errlen, errno, "posting receive of chunk "
                          "%zu: %s", c, strerror(errno));
        }
        b->state[c] = C_POSTED;
    }
    return 0;
}

/* Does child k have a message to be sent now? */
static int kid_ready(const struct bcast *b, const struct kid *k)
{
    if (k->gone || k->posted - k->done >= BCAST_KID_SENDS)
        return 0;
    return !k->hdr_sent || (k->next < b->nchunks && k->next < b->have);
}

/* Post child k's next message: the header, then chunk after chunk.
 * Returns 1 if posted, 0 if the provider said EAGAIN, -1 on error. */
static int send_one(struct bcast *b, struct kid *k, char *err, size_t errlen)
{
    const void *data = &b->hdr;
    size_t n = sizeof(b->hdr);
    uint64_t tag = header_tag(k->stream);

    if (k->hdr_sent) {
        data = b->buf + k->next * b->chunk;
        n = chunk_len(b, k->next);
        tag = chunk_tag(k->stream, k->next);
    }
    if (fab_send(b->f, k->peer, tag, data, n, k) < 0) {
        if (errno == EAGAIN)
            return 0;
        /* A child that is gone is found and dropped by the caller. */
        if (errno == EHOSTDOWN) {
            k->failed = 1;
            return 0;
        }
        return seterr(err, errlen, errno, "sending to peer %d: %s", k->peer,
                      strerror(errno));
    }
    if (k->posted == k->done)
        k->last = mono_now();
    if (k->hdr_sent)
        k->next++;
    k->hdr_sent = 1;
    k->posted++;
    b->in_flight++;
    return 1;
}

/* Post sends in rounds, one per ready child per round, so chunk c goes to
 * every child before c+1 goes to any; stop at BCAST_MAX_SENDS in flight. */
static int post_sends(struct bcast *b, char *err, size_t errlen)
{
    int progress = 1;

    while (progress) {
        progress = 0;
        for (int i = 0; i < b->nkids; i++) {
            int r;

            if (b->in_flight >= BCAST_MAX_SENDS)
                return 0;
            if (!kid_ready(b, &b->kid[i]))
                continue;
            if ((r = send_one(b, &b->kid[i], err, errlen)) < 0)
                return -1;
            progress |= r;
        }
    }
    return 0;
}

int bcast_step(struct bcast *b, char *err, size_t errlen)
{
    if (post_receives(b, err, errlen) < 0)
        return -1;
    return post_sends(b, err, errlen);
}

static int check_header(struct bcast *b, size_t n, char *err, size_t errlen)
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

static int on_received(struct bcast *b, const struct fab_event *ev,
                       char *err, size_t errlen)
{
    size_t c = ev->tag & TAG_CHUNK_MASK;

    if (ev->tag & TAG_HEADER) {
        if (ev->kind == FAB_FAILED) {
            b->hdr_posted = 0;      /* the sender died mid-copy: again */
            return 1;
        }
        return check_header(b, ev->len, err, errlen) < 0 ? -1 : 1;
    }
    if (c >= b->nchunks || b->state[c] != C_POSTED
        || (ev->kind == FAB_RECEIVED && ev->len != chunk_len(b, c)))
        return seterr(err, errlen, EPROTO, "unexpected chunk %zu of %zu "
                      "bytes", c, ev->len);
    b->state[c] = ev->kind == FAB_FAILED ? C_WANT : C_IN;
    while (b->have < b->nchunks && b->state[b->have] == C_IN)
        b->have++;
    return 1;
}

/* Once the whole buffer is in, our parent's sends to us are complete:
 * tell it, so it can sleep instead of polling for their completions (shm
 * rings nothing when a send completes).  A parent gone by now is found
 * otherwise. */
static void tell_parent(struct bcast *b)
{
    if (b->parent >= 0 && !b->told && bcast_have_all(b)) {
        b->told = 1;
        fab_ring_soon(b->f, b->parent);
    }
}

static int on_sent(struct bcast *b, struct kid *k, const struct fab_event *ev)
{
    if (k->gone)
        return 1;
    if (ev->kind == FAB_FAILED)
        k->failed = 1;
    k->done++;
    k->last = mono_now();
    b->in_flight--;
    return 1;
}

int bcast_event(struct bcast *b, const struct fab_event *ev, char *err,
                size_t errlen)
{
    const char *ctx = ev->ctx;

    if (ctx == &b->rctx) {
        int r;

        b->last = mono_now();
        r = on_received(b, ev, err, errlen);
        tell_parent(b);
        return r;
    }
    if (ctx >= (const char *)&b->kid[0]
        && ctx < (const char *)&b->kid[b->nkids]) {
        b->last = mono_now();
        return on_sent(b, (struct kid *)ev->ctx, ev);
    }
    return 0;
}

int bcast_have_all(const struct bcast *b)
{
    return b->hdr_in && b->have == b->nchunks;
}

size_t bcast_have_bytes(const struct bcast *b)
{
    return b->have == b->nchunks ? b->len : b->have * b->chunk;
}

int bcast_done(const struct bcast *b)
{
    if (!bcast_have_all(b))
        return 0;
    for (int i = 0; i < b->nkids; i++) {
        const struct kid *k = &b->kid[i];

        if (!k->gone && k->done < 1 + b->nchunks - k->from)
            return 0;
    }
    return 1;
}

double bcast_quiet(const struct bcast *b)
{
    return mono_now() - b->last;
}

int bcast_sleepy(const struct bcast *b)
{
    if (!bcast_have_all(b) || bcast_done(b))
        return 0;
    for (int i = 0; i < b->nkids; i++)
        if (kid_ready(b, &b->kid[i])
            || (!b->kid[i].gone && b->kid[i].next < b->nchunks))
            return 0;
    return 1;
}

size_t bcast_sends_in_flight(const struct bcast *b)
{
    return b->in_flight;
}

long bcast_resume(struct bcast *b, int parent, uint32_t stream, char *err,
                  size_t errlen)
{
    b->parent = parent;
    if (bcast_have_all(b))
        return (long)b->nchunks;
    /* The same parent again (it asked twice): its receives stand.  Taking
     * them back could drop a chunk already received into one of them. */
    if ((stream & BCAST_STREAM_MASK) == b->stream)
        return (long)b->have;
    fab_cancel(b->f, &b->rctx);
    b->stream = stream & BCAST_STREAM_MASK;
    b->hdr_posted = 0;
    for (size_t c = b->have; c < b->nchunks; c++)
        b->state[c] = C_WANT;
    b->last = mono_now();
    if (post_receives(b, err, errlen) < 0)
        return -1;
    return (long)b->have;
}

int bcast_add_kid(struct bcast *b, int peer, uint32_t stream, size_t from)
{
    if (b->nkids == FAB_MAX_PEERS || from > b->nchunks) {
        errno = b->nkids == FAB_MAX_PEERS ? ENOSPC : EINVAL;
        return -1;
    }
    b->kid[b->nkids++] = (struct kid){ .peer = peer,
                                       .stream = stream & BCAST_STREAM_MASK,
                                       .from = from, .next = from };
    return 0;
}

void bcast_drop_kid(struct bcast *b, int peer)
{
    for (int i = 0; i < b->nkids; i++) {
        struct kid *k = &b->kid[i];

        if (k->peer == peer && !k->gone) {
            k->gone = 1;
            b->in_flight -= k->posted - k->done;
        }
    }
}

double bcast_kid_stuck(const struct bcast *b, int peer, int *failed)
{
    double stuck = 0;

    *failed = 0;
    for (int i = 0; i < b->nkids; i++) {
        const struct kid *k = &b->kid[i];

        if (k->peer != peer || k->gone)
            continue;
        *failed |= k->failed;
        if (k->posted > k->done && mono_now() - k->last > stuck)
            stuck = mono_now() - k->last;
    }
    return stuck;
}

static int check_args(const struct bcast_io *io, const void *buf, size_t len,
                      size_t chunk, char *err, size_t errlen)
{
    if (!io || !buf || io->nkids < 0 || io->nkids > FAB_MAX_PEERS
        || (io->nkids > 0 && !io->kids))
        return seterr(err, errlen, EINVAL, "no buffer or peer table");
    if (chunk < BCAST_CHUNK_MIN || chunk > BCAST_CHUNK_MAX)
        return seterr(err, errlen, EINVAL, "chunk size %zu outside "
                      "%lu..%lu", chunk, BCAST_CHUNK_MIN, BCAST_CHUNK_MAX);
    if ((len + chunk - 1) / chunk > TAG_CHUNK_MASK)
        return seterr(err, errlen, EINVAL, "%zu bytes in chunks of %zu are "
                      "too many chunks", len, chunk);
    return 0;
}

void bcast_destroy(struct bcast *b)
{
    int saved = errno;

    if (b) {
        fab_cancel(b->f, &b->rctx);
        free(b->state);
        free(b);
    }
    errno = saved;
}

struct bcast *bcast_create(struct fab *f, const struct bcast_io *io,
                           void *buf, size_t len, size_t chunk, char *err,
                           size_t errlen)
{
    struct bcast *b;

    chunk = chunk ? chunk : BCAST_CHUNK_DEFAULT;
    if (check_args(io, buf, len, chunk, err, errlen) < 0)
        return NULL;
    if (!(b = calloc(1, sizeof(*b)))) {
        seterr(err, errlen, ENOMEM, "out of memory");
        return NULL;
    }
    *b = (struct bcast){ .f = f, .buf = buf, .len = len, .chunk = chunk,
                         .nchunks = (len + chunk - 1) / chunk,
                         .parent = io->parent, .last = mono_now(),
                         .stream = io->stream & BCAST_STREAM_MASK };
    b->hdr = (struct header){ .len = len, .chunk = chunk };
    b->hdr_in = b->parent < 0;
    b->have = b->parent < 0 ? b->nchunks : 0;
    for (int i = 0; i < io->nkids; i++)
        bcast_add_kid(b, io->kids[i], b->stream, 0);
    if (!(b->state = calloc(b->nchunks + 1, 1))) {
        seterr(err, errlen, ENOMEM, "out of memory");
        goto error;
    }
    if (post_receives(b, err, errlen) < 0)
        goto error;
    return b;
error:
    bcast_destroy(b);
    return NULL;
}

static int stalled(const struct bcast *b, double stall, char *err,
                   size_t errlen)
{
    size_t done = 0, want = 0;

    if (!bcast_have_all(b))
        return seterr(err, errlen, ETIMEDOUT, "no data from the parent "
                      "for %.0f s (%zu of %zu chunks in)", stall, b->have,
                      b->nchunks);
    for (int i = 0; i < b->nkids; i++) {
        done += b->kid[i].done;
        want += 1 + b->nchunks - b->kid[i].from;
    }
    return seterr(err, errlen, ETIMEDOUT, "children took nothing for %.0f s "
                  "(%zu of %zu sends done)", stall, done, want);
}

/* Hand one event to the broadcast, or to io->other. */
static int route(struct bcast *b, const struct bcast_io *io,
                 const struct fab_event *ev, char *err, size_t errlen)
{
    int r = bcast_event(b, ev, err, errlen);

    if (r != 0)
        return r < 0 ? -1 : 0;
    if (io->other)
        return io->other(io->arg, ev, err, errlen);
    return seterr(err, errlen, EPROTO, "unexpected message with tag %#"
                  PRIx64, ev->tag);
}

/* Progress until done: post what can be posted, poll, and wait on the
 * doorbell only briefly when nothing happened. */
static int run(struct bcast *b, const struct bcast_io *io, char *err,
               size_t errlen)
{
    double stall = io->stall_s > 0 ? io->stall_s : BCAST_STALL_DEFAULT_S;
    struct fab_event ev[16];

    while (!bcast_done(b)) {
        int n;

        if (bcast_step(b, err, errlen) < 0
            || (n = fab_poll(b->f, ev, 16, err, errlen)) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (route(b, io, &ev[i], err, errlen) < 0)
                return -1;
        for (int i = 0; i < b->nkids; i++)
            if (b->kid[i].failed)
                return seterr(err, errlen, EHOSTDOWN, "child %d is gone",
                              i);
        if (n > 0)
            continue;
        if (bcast_quiet(b) > stall)
            return stalled(b, stall, err, errlen);
        fab_idle(b->f);
    }
    return 0;
}

int bcast_run(struct fab *f, const struct bcast_io *io, void *buf,
              size_t len, size_t chunk, char *err, size_t errlen)
{
    struct bcast *b = bcast_create(f, io, buf, len, chunk, err, errlen);
    int ret;

    if (!b)
        return -1;
    ret = run(b, io, err, errlen);
    bcast_destroy(b);
    return ret;
}
