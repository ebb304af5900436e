/* test_nodestat.c - the NODE record of a `vexec nodes` answer: what is
 * encoded decodes to the same fields; truncated, overlong and out-of-range
 * records are refused; a daemon's view of its last launch follows the
 * records it reports. */
#include "common/tap.h"
#include "launcher/nodestat.h"
#include "launcher/proto.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>

static char buf[NODESTAT_REC_MAX];

static const struct nodestat up = {
    .state = NODESTAT_UP, .phase = NODESTAT_EXITED, .load100 = 152,
    .rss_kib = 6144, .job = UINT64_C(0x8badf00ddeadbeef), .rank = 17,
    .status = 3 << 8, .image_us = 1234, .run_us = 56789, .ago_us = 9000000,
    .reason = "",
};

static void test_round_trip(void)
{
    struct nodestat s, down;
    int len = nodestat_encode(&up, buf, sizeof(buf), NULL, 0);

    ok(len > 0 && nodestat_decode(buf, (size_t)len, NODESTAT_UP, &s, NULL,
                                  0) == 0
       && s.state == NODESTAT_UP && s.phase == NODESTAT_EXITED
       && s.load100 == 152 && s.rss_kib == 6144 && s.job == up.job
       && s.rank == 17 && s.status == 3 << 8 && s.image_us == 1234
       && s.run_us == 56789 && s.ago_us == 9000000 && s.reason_len == 0,
       "an up record decodes to what was encoded");
    nodestat_down(&down, "vx1.n3 is not running (asked by vx1.n1)");
    len = nodestat_encode(&down, buf, sizeof(buf), NULL, 0);
    ok(len > 0 && nodestat_decode(buf, (size_t)len, NODESTAT_DOWN, &s, NULL,
                                  0) == 0
       && s.state == NODESTAT_DOWN && s.reason_len == strlen(down.reason)
       && !memcmp(s.reason, down.reason, s.reason_len),
       "a down record carries its reason");
}

static void test_refused(void)
{
    struct nodestat s, down;
    char longer[NODESTAT_REASON_MAX + 50];
    int len = nodestat_encode(&up, buf, sizeof(buf), NULL, 0), refused = 0;

    for (int n = 0; n < len; n++)
        refused += nodestat_decode(buf, (size_t)n, NODESTAT_UP, &s, NULL,
                                   0) < 0;
    ok(refused == len, "every truncation of a record is refused (%d/%d)",
       refused, len);
    ok(nodestat_decode(buf, (size_t)len, 0, &s, NULL, 0) < 0
       && nodestat_decode(buf, (size_t)len, NODESTAT_DOWN + 1, &s, NULL, 0)
          < 0 && errno == EPROTO, "a record of unknown state is refused");
    buf[4] = 9;     /* the phase */
    ok(nodestat_decode(buf, (size_t)len, NODESTAT_UP, &s, NULL, 0) < 0,
       "a record of unknown phase is refused");
    memset(longer, 'r', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    nodestat_down(&down, longer);
    len = nodestat_encode(&down, buf, sizeof(buf), NULL, 0);
    ok(len > 0 && down.reason_len == NODESTAT_REASON_MAX,
       "a long reason is cut at %d bytes", NODESTAT_REASON_MAX);
    ok(nodestat_decode(buf, (size_t)len + 1, NODESTAT_DOWN, &s, NULL, 0) < 0,
       "a reason over the limit is refused");
    buf[len - 1] = '\0';
    ok(nodestat_decode(buf, (size_t)len, NODESTAT_DOWN, &s, NULL, 0) < 0,
       "a reason with a NUL is refused");
    ok(nodestat_encode(&up, buf, 10, NULL, 0) < 0 && errno == EMSGSIZE,
       "a record that does not fit is refused");
}

static void test_last_launch(void)
{
    struct nodestat_last l = { 0 };
    struct nodestat s;

    nodestat_self(&l, 0, 10.0, &s);
    ok(s.state == NODESTAT_UP && s.phase == NODESTAT_NONE && s.rss_kib > 0,
       "no launch yet: up, phase none, our RSS %llu KiB",
       (unsigned long long)s.rss_kib);
    nodestat_last_begin(&l, 7, 3, 10.0);
    nodestat_last_note(&l, PROTO_IMAGE, 0, 10.25);
    nodestat_last_note(&l, PROTO_STARTED, 0, 10.5);
    nodestat_self(&l, 1, 11.0, &s);
    ok(s.state == NODESTAT_BUSY && s.phase == NODESTAT_RUNNING && s.job == 7
       && s.rank == 3 && s.image_us == 250000 && s.run_us == 500000
       && s.ago_us == 1000000, "a running rank: busy, ran so far, image time");
    nodestat_last_note(&l, PROTO_EXIT, 9, 12.0);
    nodestat_self(&l, 0, 20.0, &s);
    ok(s.phase == NODESTAT_EXITED && WTERMSIG(s.status) == 9
       && s.run_us == 1500000 && s.ago_us == 10000000,
       "an exited rank: its status and how long it ran");
    nodestat_last_begin(&l, 8, 3, 30.0);
    nodestat_last_note(&l, PROTO_FAIL, EIO, 30.1);
    nodestat_last_note(&l, PROTO_EXIT, 127 << 8, 30.1);
    nodestat_self(&l, 0, 31.0, &s);
    ok(s.phase == NODESTAT_FAILED && s.job == 8 && s.run_us == 0,
       "a rank that could not start is a failure, not an exit");
}

int main(void)
{
    test_round_trip();
    test_refused();
    test_last_launch();
    done_testing();
    return 0;
}
