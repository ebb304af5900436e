/* cli.c - helpers shared by vexec's commands (cli.h). */
#include "fanout/fabric.h"
#include "fanout/topo.h"
#include "launcher/cli.h"
#include "launcher/cluster.h"
#include "launcher/gwspawn.h"

#include "fanout/bell.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "vexec: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_check_tree(const char *spec, int n, int *depth)
{
    char err[512];
    struct topo *t = topo_create(spec, n, err, sizeof(err));
    const int *kids;
    int widest = 0;

    if (!t)
        return cli_fail(2, "--tree '%s': %s", spec, err);
    for (int i = 0; i < n; i++) {
        int k = topo_children(t, i, &kids);

        widest = k > widest ? k : widest;
    }
    if (depth)
        *depth = topo_max_depth(t);
    topo_destroy(t);
    /* A node talks to its parent and children over one shm endpoint. */
    if (widest + 1 > FAB_MAX_PEERS)
        return cli_fail(2, "--tree '%s' gives a node %d children; one "
                        "endpoint reaches at most %d peers", spec, widest,
                        FAB_MAX_PEERS - 1);
    return 0;
}

int cli_load_key(const char *key_file, const char *cluster_dir,
                 const char *need, struct auth **auth)
{
    const char *env = getenv("VEXEC_KEY");
    char path[4200], err[512];

    if (key_file)
        snprintf(path, sizeof(path), "%s", key_file);
    else if (env && *env)
        snprintf(path, sizeof(path), "%s", env);
    else if (!cluster_dir)
        return cli_fail(2, "%s need the cluster's key: --key FILE or "
                        "VEXEC_KEY=FILE", need);
    else
        snprintf(path, sizeof(path), "%s/%s", cluster_dir, CLUSTER_KEY_FILE);
    if (!(*auth = auth_create(path, err, sizeof(err))))
        return cli_fail(1, "%s", err);
    return 0;
}

int cli_parse_port(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    return errno || end == s || *end || v < 1 || v > 65535 ? -1 : (int)v;
}

int cli_connect_gateway(const char *kind, const char *cluster_name,
                        const char *cluster_dir, int nodes, int *sock)
{
    struct sockaddr_un sa;
    socklen_t len = bell_sockaddr(kind, cluster_name, &sa);

    if ((*sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        return cli_fail(1, "socket: %s", strerror(errno));
    if (connect(*sock, (struct sockaddr *)&sa, len) < 0)
        return cli_fail(1, "the gateway of the cluster in %s is not running "
                        "(%s); if its nodes are up, `vexec-cluster up %d` "
                        "starts a new one", cluster_dir, strerror(errno),
                        nodes);
    return 0;
}

const char *cli_batch_hosts(int named, const char **hosts,
                            const char **hostfile)
{
    const char *cluster = getenv("VEXEC_CLUSTER");
    const char *slurm = getenv("SLURM_JOB_NODELIST");
    const char *pbs = getenv("PBS_NODEFILE");

    if (named || *hosts || *hostfile || (cluster && *cluster))
        return NULL;
    if (slurm && *slurm) {
        *hosts = slurm;
        return "SLURM_JOB_NODELIST";
    }
    if (pbs && *pbs) {
        *hostfile = pbs;
        return "PBS_NODEFILE";
    }
    return NULL;
}

int cli_add_hosts(struct hosts *h, const char *list, const char *file,
                  int port, const char *from, const char *what)
{
    char err[1024];

    if ((list && hosts_add_list(h, list, port, err, sizeof(err)) < 0)
        || (file && hosts_add_file(h, file, port, err, sizeof(err)) < 0))
        return cli_fail(2, "%s%s%s%s%s", what, *what ? " " : "",
                        from ? from : list ? "--hosts" : "-f",
                        from || list ? ": " : " ", err);
    if (hosts_check_unique(h, err, sizeof(err)) < 0)
        return cli_fail(2, "%s%s%s", what, *what ? ": " : "", err);
    return 0;
}

int cli_start_gateway(const struct hosts *h, int query, int *sock,
                      pid_t *pid, char *origin, size_t size)
{
    char ip[64], err[1024];

    if (hosts_local_address(h->endpoint[0], ip, sizeof(ip), err,
                            sizeof(err)) < 0
        || gwspawn_start(ip, query, sock, pid, origin, size, err,
                         sizeof(err)) < 0)
        return cli_fail(1, "%s", err);
    return 0;
}
