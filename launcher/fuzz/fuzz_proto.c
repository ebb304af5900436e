/* fuzz_proto.c - libFuzzer target over the decoders of fabric input: the
 * down messages a daemon receives (proto_decode_down, then the hostlist and
 * topology of a LAUNCH or QUERY, as the daemon would use them) and the up
 * reports (proto_each_rec, and nodestat_decode of every NODE record).  A
 * decoded message or record is re-encoded and must decode to the same
 * fields. */
#include "fanout/topo.h"
#include "launcher/hostlist.h"
#include "launcher/nodestat.h"
#include "launcher/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NODE record that decodes encodes back to the same bytes. */
static void check_node(const struct proto_rec *r)
{
    static char buf[NODESTAT_REC_MAX];
    struct nodestat s;
    int len;

    if (nodestat_decode(r->data, r->len, r->value, &s, NULL, 0) < 0)
        return;
    len = nodestat_encode(&s, buf, sizeof(buf), NULL, 0);
    if (len != (int)r->len || memcmp(buf, r->data, r->len))
        abort();
}

static int count_rec(void *arg, const struct proto_rec *r)
{
    /* Touch every byte the record claims. */
    const volatile uint8_t *p = r->data;

    for (uint32_t i = 0; i < r->len; i++)
        (void)p[i];
    if (r->type == PROTO_NODE)
        check_node(r);
    (*(int *)arg)++;
    return 0;
}

/* The list and tree of a LAUNCH or QUERY, as a daemon builds them. */
static void check_tree(const char *nodes, const char *tree)
{
    struct hostlist *h;
    struct topo *t;

    if ((h = hostlist_create(nodes, NULL, 0))) {
        if (hostlist_count(h) > 4096) {
            hostlist_destroy(h);
            return;
        }
        if ((t = topo_create(tree, hostlist_count(h), NULL, 0)))
            topo_destroy(t);
        hostlist_destroy(h);
    }
}

static void check_query(const struct proto_down *d)
{
    static char buf[PROTO_MSG_MAX];
    struct proto_down again;
    int len;

    len = proto_encode_query(buf, sizeof(buf), d->job, &d->query, NULL, 0);
    if (len < 0 || proto_decode_down(buf, (size_t)len, &again, NULL, 0) < 0
        || again.type != PROTO_QUERY || again.job != d->job
        || again.query.nnodes != d->query.nnodes
        || strcmp(again.query.nodes, d->query.nodes)
        || strcmp(again.query.tree, d->query.tree)
        || strcmp(again.query.origin, d->query.origin))
        abort();
    check_tree(d->query.nodes, d->query.tree);
}

static void check_launch(const struct proto_down *d)
{
    static char buf[PROTO_MSG_MAX];
    struct proto_down again;
    int len;

    len = proto_encode_launch(buf, sizeof(buf), d->job, &d->launch, NULL, 0);
    if (len < 0 || proto_decode_down(buf, (size_t)len, &again, NULL, 0) < 0
        || strcmp(again.launch.nodes, d->launch.nodes)
        || strcmp(again.launch.tree, d->launch.tree)
        || again.launch.image_len != d->launch.image_len
        || again.launch.image_sum != d->launch.image_sum)
        abort();
    check_tree(d->launch.nodes, d->launch.tree);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_down d;
    uint64_t job;
    int n = 0;

    if (size > PROTO_MSG_MAX)
        return 0;
    if (proto_decode_down(data, size, &d, NULL, 0) == 0) {
        if (d.type == PROTO_LAUNCH)
            check_launch(&d);
        else if (d.type == PROTO_QUERY)
            check_query(&d);
    }
    proto_each_rec(data, size, &job, count_rec, &n, NULL, 0);
    return 0;
}
