/* vexecd.c - the node daemon's command line.
 *
 *   vexecd --address HOST:PORT --key FILE [--node NODE]   a host's daemon, over tcp
 *   vexecd --endpoint NAME --key FILE [--node NODE]       an shm daemon on this host
 *
 * --address: serve launches on a tcp;ofi_rxm endpoint bound to HOST:PORT
 * (HOST a name or IPv4 address of this host; vexec --hosts reaches the
 * daemons of a host at consecutive ports from 7400).  This is how a
 * daemon is started on a real host: by hand, from systemd or by srun.
 * --endpoint: the shm endpoint NAME (unique on the host; the emulated
 * cluster uses CLUSTER.NODE).  --key: accept only requests signed with
 * the cluster key in FILE (auth.h); required, since a daemon without one
 * could accept nothing.  NODE names the daemon in messages (default: the
 * address or NAME).  Runs until SIGTERM or SIGINT.  vexec-cluster starts
 * its shm daemons itself (one libfabric load for all of them).
 *
 * A daemon started here puts itself in a session of its own, unless it
 * leads one, and leaves a keeper process that ends what its ranks started
 * once it is gone, killed or not (sweep.h).  A shell's foreground or job-
 * control job cannot start a session: it runs without a keeper, and says
 * so.
 */
#include "launcher/daemon.h"
#include "launcher/hosts.h"
#include "launcher/sweep.h"
#include "fanout/netaddr.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: vexecd --address HOST:PORT --key FILE [--node NODE]\n"
                    "       vexecd --endpoint NAME --key FILE [--node NODE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct daemon_opts o = { .ready_fd = -1 };
    const char *address = NULL;
    char canon[NETADDR_STRLEN], err[512];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--endpoint") && i + 1 < argc)
            o.endpoint = argv[++i];
        else if (!strcmp(argv[i], "--address") && i + 1 < argc)
            address = argv[++i];
        else if (!strcmp(argv[i], "--node") && i + 1 < argc)
            o.node = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            o.key_file = argv[++i];
        else
            return usage();
    }
    if (!o.endpoint == !address || !o.key_file)
        return usage();
    if (address) {
        if (hosts_resolve(address, canon, sizeof(canon), err,
                          sizeof(err)) < 0) {
            fprintf(stderr, "vexecd: --address %s\n", err);
            return 2;
        }
        o.endpoint = canon;
    }
    if (!o.node)
        o.node = o.endpoint;
    switch (sweep_keep(err, sizeof(err))) {
    case -1:
        fprintf(stderr, "vexecd %s: no keeper: %s; what its ranks start "
                "outlives a kill -9 of it\n", o.node, err);
        break;
    case 1:
        fprintf(stderr, "vexecd %s: no cgroup: %s; what its ranks start "
                "and take out of its session (setsid) outlives a kill -9 "
                "of it\n", o.node, err);
        break;
    }
    if (daemon_run(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "vexecd: %s\n", err);
        return 1;
    }
    return 0;
}
