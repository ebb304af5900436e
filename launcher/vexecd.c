/* vexecd.c - the node daemon's command line.
 *
 *   vexecd --endpoint NAME --key FILE [--node NODE]
 *
 * Serves launches on the fabric endpoint NAME (unique on the host; the
 * emulated cluster uses CLUSTER.NODE) until SIGTERM, accepting only
 * requests signed with the cluster key in FILE (auth.h): the key is
 * required, since a daemon without one could accept nothing.  NODE names
 * it in messages (default: NAME).  vexec-cluster starts its daemons itself (one
 * libfabric load for all of them); this is the way to start one by hand.
 */
#include "launcher/daemon.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: vexecd --endpoint NAME --key FILE "
            "[--node NODE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct daemon_opts o = { .ready_fd = -1 };
    char err[512];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--endpoint") && i + 1 < argc)
            o.endpoint = argv[++i];
        else if (!strcmp(argv[i], "--node") && i + 1 < argc)
            o.node = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            o.key_file = argv[++i];
        else
            return usage();
    }
    if (!o.endpoint || !o.key_file)
        return usage();
    if (!o.node)
        o.node = o.endpoint;
    if (daemon_run(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "vexecd: %s\n", err);
        return 1;
    }
    return 0;
}
