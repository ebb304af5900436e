/* test_proto.c - the wire messages: what is encoded decodes to the same
 * fields, batches keep records whole and in order, and every truncation,
 * extension or foreign header is refused. */
#include "common/tap.h"
#include "launcher/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char msg[PROTO_MSG_MAX];

static const struct proto_launch launch = {
    .nnodes = 1023, .image_lead = 0x1ff000, .image_len = 4894720,
    .chunk = 524288,
    .image_sum = UINT64_C(0x8badf00ddeadbeef),
    .tree = "kary:8", .origin = "vx7.fe99", .nodes = "vx7.n[0-1022]",
};

static void test_launch(void)
{
    struct proto_down d;
    int len = proto_encode_launch(msg, sizeof(msg), 77, &launch, NULL, 0);
    int refused = 0;

    ok(len > 0 && proto_decode_down(msg, (size_t)len, &d, NULL, 0) == 0
       && d.type == PROTO_LAUNCH && d.job == 77 && d.launch.nnodes == 1023
       && d.launch.image_lead == 0x1ff000 && d.launch.image_len == 4894720
       && d.launch.chunk == 524288
       && d.launch.image_sum == UINT64_C(0x8badf00ddeadbeef)
       && !strcmp(d.launch.tree, "kary:8")
       && !strcmp(d.launch.origin, "vx7.fe99")
       && !strcmp(d.launch.nodes, "vx7.n[0-1022]"),
       "a LAUNCH decodes to what was encoded");
    for (int n = 0; n < len; n++)
        refused += proto_decode_down(msg, (size_t)n, &d, NULL, 0) < 0;
    ok(refused == len, "every truncation of a LAUNCH is refused (%d/%d)",
       refused, len);
    ok(proto_decode_down(msg, (size_t)len + 1, &d, NULL, 0) < 0
       && errno == EPROTO, "a LAUNCH with a byte too many is refused");
    msg[len - 1] = 'x';
    ok(proto_decode_down(msg, (size_t)len, &d, NULL, 0) < 0,
       "a LAUNCH whose last name is unterminated is refused");
    msg[0] ^= 1;
    ok(proto_decode_down(msg, (size_t)len, &d, NULL, 0) < 0,
       "a message with a foreign magic is refused");
}

/* The image lead places the image in every node's buffer: one off the
 * page grid, or a whole huge page or more, is refused. */
static void test_launch_lead(void)
{
    static const uint32_t bad[] = { 1, 4095, 0x1ff001, 2u << 20, UINT32_MAX };
    struct proto_launch l = launch;
    struct proto_down d;
    char err[256] = "";
    int refused = 0, len;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        l.image_lead = bad[i];
        len = proto_encode_launch(msg, sizeof(msg), 77, &l, NULL, 0);
        refused += len > 0 && proto_decode_down(msg, (size_t)len, &d, err,
                                                sizeof(err)) < 0
                   && errno == EPROTO && strstr(err, "lead");
    }
    ok(refused == 5, "a LAUNCH whose image lead is off the page grid or "
       "not below 2 MiB is refused (%d/5): %s", refused, err);
    l.image_lead = 0;
    len = proto_encode_launch(msg, sizeof(msg), 77, &l, NULL, 0);
    ok(len > 0 && proto_decode_down(msg, (size_t)len, &d, NULL, 0) == 0
       && d.launch.image_lead == 0, "a LAUNCH with no image lead decodes");
}

static void test_query(void)
{
    const struct proto_query q = { .nnodes = 255, .tree = "kary:16",
                                   .origin = "vx7.gw",
                                   .nodes = "vx7.n[0-254]" };
    struct proto_down d;
    int len = proto_encode_query(msg, sizeof(msg), 42, &q, NULL, 0);
    int refused = 0;

    ok(len > 0 && proto_decode_down(msg, (size_t)len, &d, NULL, 0) == 0
       && d.type == PROTO_QUERY && d.job == 42 && d.query.nnodes == 255
       && !strcmp(d.query.tree, "kary:16") && !strcmp(d.query.origin, "vx7.gw")
       && !strcmp(d.query.nodes, "vx7.n[0-254]"),
       "a QUERY decodes to what was encoded");
    for (int n = 0; n < len; n++)
        refused += proto_decode_down(msg, (size_t)n, &d, NULL, 0) < 0;
    ok(refused == len, "every truncation of a QUERY is refused (%d/%d)",
       refused, len);
    ok(proto_decode_down(msg, (size_t)len + 1, &d, NULL, 0) < 0,
       "a QUERY with a byte too many is refused");
    msg[len - 1] = 'x';
    ok(proto_decode_down(msg, (size_t)len, &d, NULL, 0) < 0,
       "a QUERY whose node list is unterminated is refused");
    len = proto_encode_query(msg, sizeof(msg), 42, &q, NULL, 0);
    memset(msg + 24, 0, 4);     /* nnodes */
    ok(proto_decode_down(msg, (size_t)len, &d, NULL, 0) < 0
       && errno == EPROTO, "a QUERY for no nodes is refused");
}

static void test_too_big(void)
{
    char *nodes = malloc(PROTO_MSG_MAX);
    struct proto_launch l = launch;
    char err[256] = "";

    memset(nodes, 'a', PROTO_MSG_MAX - 1);
    nodes[PROTO_MSG_MAX - 1] = '\0';
    l.nodes = nodes;
    ok(proto_encode_launch(msg, sizeof(msg), 1, &l, err, sizeof(err)) < 0
       && errno == EMSGSIZE && strstr(err, "larger"),
       "a LAUNCH over %u bytes is refused: %s", PROTO_MSG_MAX, err);
    free(nodes);
}

static void test_signal_stdin(void)
{
    static char big[PROTO_STDIN_MAX + 1];
    struct proto_down d;
    int len = proto_encode_signal(msg, sizeof(msg), 5, 15, NULL, 0);

    ok(len > 0 && proto_decode_down(msg, (size_t)len, &d, NULL, 0) == 0
       && d.type == PROTO_SIGNAL && d.signo == 15, "SIGNAL 15 round trip");
    len = proto_encode_signal(msg, sizeof(msg), 5, 0, NULL, 0);
    ok(proto_decode_down(msg, (size_t)len, &d, NULL, 0) < 0,
       "signal 0 is refused");
    len = proto_encode_stdin(msg, sizeof(msg), 5, "abc", 3, NULL, 0);
    ok(len > 0 && proto_decode_down(msg, (size_t)len, &d, NULL, 0) == 0
       && d.type == PROTO_STDIN && d.len == 3 && !memcmp(d.data, "abc", 3),
       "STDIN round trip");
    len = proto_encode_stdin(msg, sizeof(msg), 5, NULL, 0, NULL, 0);
    ok(len > 0 && proto_decode_down(msg, (size_t)len, &d, NULL, 0) == 0
       && d.len == 0, "an empty STDIN (end of file) round trip");
    len = proto_encode_stdin(msg, sizeof(msg), 5, big, PROTO_STDIN_MAX, NULL,
                             0);
    ok(len == (int)(PROTO_MSG_MAX - PROTO_TRAILER_MAX)
       && proto_encode_stdin(msg, sizeof(msg), 5, big, PROTO_STDIN_MAX + 1,
                             NULL, 0) < 0,
       "the largest STDIN piece leaves room for a credential; one more "
       "byte is refused");
}

struct seen {
    int n;
    uint32_t ranks[4096];
    uint32_t lens[4096];
};

static int collect(void *arg, const struct proto_rec *r)
{
    struct seen *s = arg;

    s->ranks[s->n] = r->rank;
    s->lens[s->n++] = r->len;
    return 0;
}

/* 3000 OUT records of growing length go out in several messages, each
 * under the limit, in order, none split. */
static void test_batches(void)
{
    static struct seen s;
    struct proto_batch b = { 0 };
    char data[300];
    size_t len;
    uint64_t job;
    int msgs = 0, ok_all = 1, in_order = 1;

    memset(data, 'x', sizeof(data));
    for (uint32_t i = 0; i < 3000; i++)
        proto_batch_add(&b, PROTO_OUT, i, 1, data, i % 300);
    while ((len = proto_batch_take(&b, 9, msg)) > 0) {
        msgs++;
        ok_all &= len <= PROTO_MSG_MAX
                  && proto_each_rec(msg, len, &job, collect, &s, NULL, 0)
                         == 0 && job == 9;
    }
    for (int i = 0; i < s.n; i++)
        in_order &= s.ranks[i] == (uint32_t)i && s.lens[i] == (uint32_t)i % 300;
    ok(ok_all && s.n == 3000 && in_order && msgs > 1,
       "3000 records travel whole and in order in %d messages", msgs);
    proto_batch_free(&b);
}

static void test_unget_and_merge(void)
{
    struct proto_batch b = { 0 }, up = { 0 };
    struct seen *s = calloc(1, sizeof(*s));
    uint64_t job;
    size_t len;

    proto_batch_add(&b, PROTO_STARTED, 1, 0, NULL, 0);
    proto_batch_add(&b, PROTO_EXIT, 1, 0, NULL, 0);
    len = proto_batch_take(&b, 3, msg);
    proto_batch_add(&b, PROTO_EXIT, 2, 0, NULL, 0);
    proto_batch_unget(&b, msg, len);
    len = proto_batch_take(&b, 3, msg);
    proto_each_rec(msg, len, &job, collect, s, NULL, 0);
    ok(s->n == 3 && s->ranks[0] == 1 && s->ranks[2] == 2,
       "a message put back goes out again before later records");
    proto_batch_merge(&up, msg, len);
    len = proto_batch_take(&up, 3, msg);
    s->n = 0;
    proto_each_rec(msg, len, &job, collect, s, NULL, 0);
    ok(s->n == 3, "a received report merges into a parent's batch");
    /* ALIVE is for the parent that receives it, never passed on. */
    proto_batch_add(&b, PROTO_ALIVE, 4, 0, NULL, 0);
    proto_batch_add(&b, PROTO_OUT, 4, 1, "line\n", 5);
    proto_batch_add(&b, PROTO_ALIVE, 5, 0, NULL, 0);
    len = proto_batch_take(&b, 3, msg);
    s->n = 0;
    ok(proto_each_rec(msg, len, &job, collect, s, NULL, 0) == 0 && s->n == 3,
       "ALIVE records decode");
    proto_batch_merge(&up, msg, len);
    len = proto_batch_take(&up, 3, msg);
    s->n = 0;
    proto_each_rec(msg, len, &job, collect, s, NULL, 0);
    ok(s->n == 1 && s->ranks[0] == 4 && s->lens[0] == 5,
       "merging drops the ALIVE records and keeps the rest");
    proto_batch_free(&b);
    proto_batch_free(&up);
    free(s);
}

static void test_bad_reports(void)
{
    struct proto_batch b = { 0 };
    uint64_t job;
    int n = 0, refused = 0;
    size_t len;

    proto_batch_add(&b, PROTO_OUT, 0, 2, "hello\n", 6);
    proto_batch_add(&b, PROTO_FAIL, 1, 5, "why", 3);
    len = proto_batch_take(&b, 1, msg);
    for (size_t i = 0; i < len; i++)
        refused += proto_each_rec(msg, i, &job, NULL, NULL, NULL, 0) < 0;
    ok(refused == (int)len, "every truncation of a report is refused");
    msg[24] = 99;       /* the first record's type */
    ok(proto_each_rec(msg, len, &job, collect, &n, NULL, 0) < 0 && n == 0,
       "a record of unknown type is refused before any record is used");
    proto_batch_free(&b);
}

/* An ADOPT carries the LAUNCH bytes unchanged, with the epoch and the
 * adopter; a new epoch gives the job a new broadcast stream. */
static void test_adopt(void)
{
    static char inner[PROTO_MSG_MAX];
    struct proto_down d;
    int n = proto_encode_launch(inner, sizeof(inner), 7, &launch, NULL, 0);
    int len = proto_encode_adopt(msg, sizeof(msg), 7, 4097, 3, inner,
                                 (size_t)n, NULL, 0);

    ok(n > 0 && len > n && proto_decode_down(msg, (size_t)len, &d, NULL, 0) == 0
       && d.type == PROTO_ADOPT && d.job == 7 && d.epoch == 4097
       && d.adopter == 3 && d.len == (size_t)n && !memcmp(d.data, inner, d.len),
       "an ADOPT round-trips with the LAUNCH it carries unchanged");
    ok(proto_decode_down(msg, 24 + 8, &d, NULL, 0) < 0,
       "an ADOPT with no LAUNCH in it is refused");
    ok(proto_stream(7, 0) != proto_stream(7, 4097)
       && proto_stream(7, 0) != proto_stream(8, 0)
       && proto_stream(7, 0) == proto_stream(7, 0)
       && proto_stream(7, 0) <= 0x7fffffffu,
       "broadcast streams differ per job and epoch, and fit 31 bits");
}

int main(void)
{
    test_launch();
    test_launch_lead();
    test_query();
    test_too_big();
    test_signal_stdin();
    test_batches();
    test_unget_and_merge();
    test_bad_reports();
    test_adopt();
    done_testing();
    return 0;
}
