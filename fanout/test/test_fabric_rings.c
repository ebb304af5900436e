/* test_fabric_rings.c - held rings (fab_hold_rings): the sends of one
 * turn of an event loop wake their peer once, at the flush, not once per
 * send; without holding every send rings.  A peer is woken by nothing
 * else, so a lost ring is a peer that never hears of its messages: every
 * message sent under a hold arrives once the flush has rung.
 *
 * Two shm endpoints in this one process; the rings are counted as the
 * datagrams queued on the receiver's doorbell (fab_fd).
 */
#include "common/clock.h"
#include "common/tap.h"
#include "fanout/fabric.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TAG 9
#define MSGS 3

/* How many rings wait on f's doorbell; takes them. */
static int rings_queued(struct fab *f)
{
    char c;
    int n = 0;

    while (recv(fab_fd(f), &c, 1, MSG_DONTWAIT) >= 0)
        n++;
    return n;
}

/* Poll both until the receiver has n messages (counted in *got) and the
 * sender's sends have completed, or 10 s pass.  Returns 0 or -1. */
static int settle(struct fab *tx, struct fab *rx, int n, int *got)
{
    double end = mono_now() + 10;
    struct fab_event ev[8];

    while (mono_now() < end) {
        int k = fab_poll(rx, ev, 8, NULL, 0);

        for (int i = 0; i < k; i++)
            if (ev[i].kind == FAB_RECEIVED)
                (*got)++;
        fab_poll(tx, ev, 8, NULL, 0);
        if (*got >= n && fab_sends_in_flight(tx) == 0)
            return 0;
        usleep(1000);
    }
    return -1;
}

/* Send, polling both ends while shm says EAGAIN (a new peer must poll
 * once before the first send to it is taken).  Returns 0 or -1. */
static int send_first(struct fab *tx, struct fab *rx, int peer,
                      const char *buf, size_t len)
{
    double end = mono_now() + 10;
    struct fab_event ev[8];

    while (fab_send(tx, peer, TAG, buf, len, (void *)buf) < 0) {
        if (errno != EAGAIN || mono_now() > end)
            return -1;
        fab_poll(rx, ev, 8, NULL, 0);
        fab_poll(tx, ev, 8, NULL, 0);
        usleep(1000);
    }
    return 0;
}

/* Post MSGS receives on rx. */
static int post(struct fab *rx, char bufs[MSGS][16])
{
    for (int i = 0; i < MSGS; i++)
        if (fab_recv(rx, -1, TAG, bufs[i], sizeof(bufs[i]), bufs[i]) < 0)
            return -1;
    return 0;
}

int main(void)
{
    char name[2][64], err[256], bufs[MSGS][16];
    static const char msg[MSGS][8] = { "one", "two", "three" };
    struct fab *tx = NULL, *rx = NULL;
    int peer = -1, got = 0, sent = 0, before, after, settled;

    for (int i = 0; i < 2; i++)
        snprintf(name[i], sizeof(name[i]), "tfr%d.%d", (int)getpid(), i);
    if (!(tx = fab_create(name[0], err, sizeof(err)))
        || !(rx = fab_create(name[1], err, sizeof(err)))
        || (peer = fab_add_peer(tx, name[1], err, sizeof(err))) < 0
        || fab_add_peer(rx, name[0], err, sizeof(err)) < 0) {
        ok(0, "two endpoints: %s", err);
        goto out;
    }
    /* A first message, so the new peer has polled once (shm refuses a
     * send to a peer that has not) and every ring so far is taken. */
    if (post(rx, bufs) < 0
        || send_first(tx, rx, peer, msg[0], sizeof(msg[0])) < 0
        || settle(tx, rx, 1, &got) < 0) {
        ok(0, "a first message: %s", strerror(errno));
        goto out;
    }
    rings_queued(rx);

    fab_hold_rings(tx);
    for (int i = 1; i < MSGS; i++)
        sent += fab_send(tx, peer, TAG, msg[i], sizeof(msg[i]),
                         (void *)msg[i]) == 0;
    before = rings_queued(rx);
    fab_flush_rings(tx);
    after = rings_queued(rx);
    ok(sent == MSGS - 1 && before == 0 && after == 1,
       "%d sends under a hold ring their peer once, at the flush "
       "(%d sent, rings before the flush %d, after %d)", MSGS - 1, sent,
       before, after);
    got = 0;
    settled = settle(tx, rx, MSGS - 1, &got);
    ok(settled == 0 && got == MSGS - 1, "and both arrive (%d)", got);

    if (post(rx, bufs) < 0) {
        ok(0, "posting receives: %s", strerror(errno));
        goto out;
    }
    for (int i = 1; i < MSGS; i++)
        fab_send(tx, peer, TAG, msg[i], sizeof(msg[i]), (void *)msg[i]);
    after = rings_queued(rx);
    got = 0;
    settled = settle(tx, rx, MSGS - 1, &got);
    ok(after == MSGS - 1 && settled == 0,
       "not holding, each send rings (%d rings for %d sends)", after,
       MSGS - 1);

    fab_hold_rings(tx);
    fab_ring_soon(tx, peer);
    before = rings_queued(rx);
    fab_flush_rings(tx);
    after = rings_queued(rx);
    ok(before == 0 && after == 1,
       "fab_ring_soon waits for the flush while held (before %d, after %d)",
       before, after);
out:
    /* Their /dev/shm files go with them, on failure too. */
    fab_destroy(tx);
    fab_destroy(rx);
    return done_testing();
}
