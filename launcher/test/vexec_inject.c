/* vexec_inject.c - a rogue or replaying tree root, for tests/vexec-auth.t.
 *
 *   vexec_inject --cluster DIR --to NODE -n N --image FILE
 *                [--key FILE | --no-credential] [--flip OFFSET]
 *                [--save FILE | --replay FILE] [--wrong-sum]
 *                [--wait SECONDS]
 *
 * Talks to node NODE of the emulated cluster in DIR the way the gateway
 * talks to node 0: opens an endpoint of its own, sends a LAUNCH of the
 * image in FILE for nodes n0..n{N-1} (tree kary:2, itself as origin), and
 * if the node accepts, broadcasts the image and collects the reports.
 * The LAUNCH is signed with the key in FILE, or carries no credential;
 * --flip inverts the low bit of byte OFFSET of the signed message
 * (negative: from its end); --save writes the message sent to a file,
 * --replay sends a saved message again, byte for byte; --wrong-sum signs
 * a LAUNCH for another image checksum than the image broadcast has.
 *
 * Prints one line per event: "accepted", "refused: WHY", "rank R exit
 * STATUS", "rank R fail: WHY".  Exit status: 0 every rank exited 0, 1 the
 * launch was refused, 3 no answer within --wait seconds (default 10), 4
 * some rank failed, 2 a usage or set-up error.
 */
#include "common/clock.h"
#include "fanout/bcast.h"
#include "fanout/fabric.h"
#include "launcher/auth.h"
#include "launcher/cluster.h"
#include "launcher/proto.h"
#include "vmadump/vmadump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UP_RECVS 4

struct opts {
    const char *dir, *to, *image, *key, *save, *replay;
    int n, no_cred, flip, flipping, wrong_sum;
    double wait_s;
};

struct inj {
    struct fab *f;
    char (*up)[PROTO_MSG_MAX];
    int accepted, refused, exits, failed;
};

static int die(const char *what, const char *why)
{
    fprintf(stderr, "vexec_inject: %s: %s\n", what, why);
    return 2;
}

static int usage(void)
{
    fprintf(stderr, "usage: vexec_inject --cluster DIR --to NODE -n N "
            "--image FILE [--key FILE | --no-credential] [--flip OFFSET] "
            "[--save FILE | --replay FILE] [--wrong-sum] [--wait SECONDS]\n");
    return 2;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "--no-credential")) {
            o->no_cred = 1;
            continue;
        }
        if (!strcmp(a, "--wrong-sum")) {
            o->wrong_sum = 1;
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--cluster")) o->dir = v;
        else if (!strcmp(a, "--to")) o->to = v;
        else if (!strcmp(a, "-n")) o->n = atoi(v);
        else if (!strcmp(a, "--image")) o->image = v;
        else if (!strcmp(a, "--key")) o->key = v;
        else if (!strcmp(a, "--save")) o->save = v;
        else if (!strcmp(a, "--replay")) o->replay = v;
        else if (!strcmp(a, "--wait")) o->wait_s = atof(v);
        else if (!strcmp(a, "--flip")) {
            o->flip = atoi(v);
            o->flipping = 1;
        } else
            return -1;
    }
    return o->dir && o->to && o->image && o->n > 0
           && (o->key || o->no_cred || o->replay) ? 0 : -1;
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0
        && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size))
        && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)size : 0;
    return buf;
}

/* The LAUNCH to send, built and signed (or not), or read back from a
 * saved file.  Returns its length, or -1. */
static int make_launch(const struct opts *o, const struct cluster *c,
                       const char *origin, const void *image, size_t len,
                       char *msg)
{
    char nodes[256], err[512];
    struct proto_launch l = { .nnodes = (uint32_t)o->n, .image_len = len,
                              .image_sum = vmad_image_checksum(image, len),
                              .chunk = BCAST_CHUNK_DEFAULT,
                              .tree = "kary:2", .origin = origin,
                              .nodes = nodes };
    struct auth *a;
    int n;

    if (o->replay) {
        char *saved = read_file(o->replay, &len);

        if (!saved || len > PROTO_MSG_MAX) {
            die(o->replay, "cannot read a saved message");
            return -1;
        }
        memcpy(msg, saved, len);
        free(saved);
        return (int)len;
    }
    snprintf(nodes, sizeof(nodes), "%s.n[0-%d]", c->name, o->n - 1);
    l.image_sum ^= (uint64_t)o->wrong_sum;
    if ((n = proto_encode_launch(msg, PROTO_MSG_MAX, 1, &l, err,
                                 sizeof(err))) < 0) {
        die("LAUNCH", err);
        return -1;
    }
    if (!o->no_cred) {
        if (!(a = auth_create(o->key, err, sizeof(err)))) {
            die("key", err);
            return -1;
        }
        n = auth_sign(a, msg, (size_t)n, PROTO_MSG_MAX, err, sizeof(err));
        auth_destroy(a);
    }
    if (o->flipping && n > 0)
        msg[o->flip < 0 ? n + o->flip : o->flip] ^= 1;
    return n;
}

static int save(const char *path, const void *msg, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (!f)
        return -1;
    if (fwrite(msg, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

static int on_rec(void *arg, const struct proto_rec *r)
{
    struct inj *s = arg;

    if (r->type == PROTO_ACCEPTED) {
        s->accepted = 1;
        printf("accepted\n");
    } else if (r->type == PROTO_FAIL && r->rank == UINT32_MAX) {
        s->refused = 1;
        printf("refused: %.*s\n", (int)r->len, (const char *)r->data);
    } else if (r->type == PROTO_FAIL) {
        s->failed = 1;
        printf("rank %u fail: %.*s\n", r->rank, (int)r->len,
               (const char *)r->data);
    } else if (r->type == PROTO_EXIT) {
        s->exits++;
        s->failed |= r->value != 0;
        printf("rank %u exit %d\n", r->rank, (int)r->value);
    }
    fflush(stdout);
    return 0;
}

static int on_event(void *arg, const struct fab_event *ev, char *err,
                    size_t errlen)
{
    struct inj *s = arg;
    uint64_t job;

    (void)err;
    (void)errlen;
    if (ev->kind != FAB_RECEIVED && !ev->recv)
        return 0;
    if (ev->kind == FAB_RECEIVED)
        proto_each_rec(ev->ctx, ev->len, &job, on_rec, s, NULL, 0);
    return fab_recv(s->f, -1, PROTO_TAG_UP, ev->ctx, PROTO_MSG_MAX, ev->ctx);
}

/* Poll until cond holds or the deadline passes.  Returns 0 or -1. */
static int wait_for(struct inj *s, const int *a, const int *b, int goal,
                    double end)
{
    struct fab_event ev[16];
    char err[256];

    while (*a < goal && !*b && mono_now() < end) {
        int n = fab_poll(s->f, ev, 16, err, sizeof(err));

        for (int i = 0; i < n; i++)
            on_event(s, &ev[i], err, sizeof(err));
        if (n == 0)
            fab_idle(s->f);
    }
    return *a >= goal || *b ? 0 : -1;
}

static int run(const struct opts *o, struct inj *s, const struct cluster *c,
               char *msg, const void *image, size_t len)
{
    char origin[FAB_NAME_MAX + 1], ep[FAB_NAME_MAX + 1], err[512];
    double end = mono_now() + (o->wait_s > 0 ? o->wait_s : 10);
    int peer, n, body, node = cluster_find(c, o->to);
    struct proto_down m;
    struct bcast_io io = { .parent = -1, .nkids = 1, .other = on_event,
                           .arg = s };

    if (node < 0)
        return die(o->to, "no such node");
    snprintf(origin, sizeof(origin), "%s.inj%d", c->name, (int)getpid());
    if (fab_init(err, sizeof(err)) < 0
        || !(s->f = fab_create(origin, err, sizeof(err))))
        return die("fabric", err);
    for (int i = 0; i < UP_RECVS; i++)
        fab_recv(s->f, -1, PROTO_TAG_UP, s->up[i], PROTO_MSG_MAX, s->up[i]);
    if ((n = make_launch(o, c, origin, image, len, msg)) < 0)
        return 2;
    if (o->save && save(o->save, msg, (size_t)n) < 0)
        return die(o->save, strerror(errno));
    if ((body = auth_payload_len(msg, (size_t)n, NULL, 0)) >= 0
        && proto_decode_down(msg, (size_t)body, &m, NULL, 0) == 0)
        io.stream = proto_stream(m.job, 0);
    if ((peer = fab_add_peer(s->f, cluster_endpoint(c, node, ep, sizeof(ep)),
                             err, sizeof(err))) < 0
        || fab_send_wait(s->f, peer, PROTO_TAG_DOWN, msg, (size_t)n, msg,
                         BCAST_STALL_DEFAULT_S, on_event, s, err,
                         sizeof(err)) < 0)
        return die("sending the LAUNCH", err);
    if (wait_for(s, &s->accepted, &s->refused, 1, end) < 0)
        return printf("no answer\n"), 3;
    if (s->refused)
        return 1;
    io.kids = &peer;
    if (bcast_run(s->f, &io, (void *)image, len, BCAST_CHUNK_DEFAULT, err,
                  sizeof(err)) < 0)
        return die("broadcast", err);
    if (wait_for(s, &s->exits, &s->refused, o->n, end) < 0)
        return printf("no answer\n"), 3;
    return s->failed ? 4 : 0;
}

int main(int argc, char **argv)
{
    static char msg[PROTO_MSG_MAX];
    struct opts o = { 0 };
    struct inj s = { 0 };
    struct cluster c;
    char err[512];
    size_t len;
    void *image;
    int ret;

    if (parse_args(argc, argv, &o) < 0)
        return usage();
    if (cluster_load(o.dir, &c, err, sizeof(err)) < 0)
        return die(o.dir, err);
    if (!(image = read_file(o.image, &len)))
        return die(o.image, "cannot read the image");
    if (!(s.up = calloc(UP_RECVS, sizeof(*s.up))))
        return die("memory", strerror(errno));
    ret = run(&o, &s, &c, msg, image, len);
    /* Sends of ours may still be in flight: the endpoint goes first. */
    fab_destroy(s.f);
    free(s.up);
    free(image);
    cluster_free(&c);
    return ret;
}
