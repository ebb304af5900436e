/* fuzz_proto.c - libFuzzer target over the decoders of fabric input: the
 * down messages a daemon receives (proto_decode_down, then the hostlist and
 * topology of a LAUNCH, as the daemon would use them) and the up reports
 * (proto_each_rec).  A decoded message is re-encoded and must decode to
 * the same fields. */
#include "fanout/topo.h"
#include "launcher/hostlist.h"
#include "launcher/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_rec(void *arg, const struct proto_rec *r)
{
    /* Touch every byte the record claims. */
    const volatile uint8_t *p = r->data;

    for (uint32_t i = 0; i < r->len; i++)
        (void)p[i];
    (*(int *)arg)++;
    return 0;
}

static void check_launch(const struct proto_down *d)
{
    static char buf[PROTO_MSG_MAX];
    struct proto_down again;
    struct hostlist *h;
    struct topo *t;
    int len;

    len = proto_encode_launch(buf, sizeof(buf), d->job, &d->launch, NULL, 0);
    if (len < 0 || proto_decode_down(buf, (size_t)len, &again, NULL, 0) < 0
        || strcmp(again.launch.nodes, d->launch.nodes)
        || strcmp(again.launch.tree, d->launch.tree)
        || again.launch.image_len != d->launch.image_len
        || again.launch.image_sum != d->launch.image_sum)
        abort();
    if ((h = hostlist_create(d->launch.nodes, NULL, 0))) {
        if (hostlist_count(h) > 4096) {
            hostlist_destroy(h);
            return;
        }
        if ((t = topo_create(d->launch.tree, hostlist_count(h), NULL, 0)))
            topo_destroy(t);
        hostlist_destroy(h);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_down d;
    uint64_t job;
    int n = 0;

    if (size > PROTO_MSG_MAX)
        return 0;
    if (proto_decode_down(data, size, &d, NULL, 0) == 0
        && d.type == PROTO_LAUNCH)
        check_launch(&d);
    proto_each_rec(data, size, &job, count_rec, &n, NULL, 0);
    return 0;
}
