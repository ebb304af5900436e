/* vexec_gateway.c - the one-shot gateway vexec starts for a launch over
 * tcp (vexec --hosts, -f); not meant to be run by hand.
 *
 *   vexec-gateway --address IP:PORT --client-fd N --ready-fd M
 *   vexec-gateway --address IP:PORT --query-fd N --ready-fd M
 *
 * Opens a tcp;ofi_rxm endpoint at IP:PORT (port 0: any), writes its name
 * and a newline to fd M, then serves the one launch vexec sends over the
 * connected seqpacket socket N (gateway.h), and exits when vexec has
 * gone.  With --query-fd, it answers the one QUERY of `vexec nodes
 * --hosts` on N instead.  A separate program because vexec must not load
 * libfabric (~0.3 s on Debian 12): only work between hosts pays for it.
 * Exit status 0, or 1 when it could not start (then "! WHY" and a
 * newline go to fd M instead of the name, and WHY to stderr).
 */
#include "launcher/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: vexec-gateway --address IP:PORT "
                    "{--client-fd|--query-fd} N --ready-fd M\n");
    return 2;
}

/* A non-negative fd number, or -1. */
static int parse_fd(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    return *s && !*end && v >= 0 && v < 65536 ? (int)v : -1;
}

int main(int argc, char **argv)
{
    struct gateway_opts o = { .ready_fd = -1, .client_fd = -1,
                              .query_fd = -1 };
    char err[512];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--address"))
            o.endpoint = argv[i + 1];
        else if (!strcmp(argv[i], "--client-fd"))
            o.client_fd = parse_fd(argv[i + 1]);
        else if (!strcmp(argv[i], "--query-fd"))
            o.query_fd = parse_fd(argv[i + 1]);
        else if (!strcmp(argv[i], "--ready-fd"))
            o.ready_fd = parse_fd(argv[i + 1]);
        else
            return usage();
    }
    if (argc % 2 == 0 || !o.endpoint || (o.client_fd < 0) == (o.query_fd < 0)
        || o.ready_fd < 0)
        return usage();
    if (gateway_run(&o, err, sizeof(err)) < 0) {
        /* vexec reads this line; stderr may lead nowhere. */
        dprintf(o.ready_fd, "! %s\n", err);
        fprintf(stderr, "vexec gateway: %s\n", err);
        return 1;
    }
    return 0;
}
