/* vexec.c - the front end: dump a program once, stream it down a tree of
 * node daemons, run rank i on node i, gather output and exit statuses.
 *
 *   vexec [-n N] [-w LIST | --hosts LIST | -f HOSTFILE [--port BASE]]
 *         [--tree SHAPE] [--chunk SIZE] [-l] [--timing] [--keep-going]
 *         [--timeout SECONDS] [--key FILE] PROG [ARGS...]
 *   vexec nodes [--tree SHAPE] [--key FILE] [LIST]      (nodes.h)
 *
 * The front end is the tree's parent of node 0: it sends node 0 the
 * LAUNCH and the image (as the root of the broadcast), node 0 passes both
 * on, and every batch of reports comes back through node 0.  Output is
 * written whole-line as it arrives; stdin goes to rank 0 in STDIN
 * messages; SIGINT, SIGTERM, SIGHUP and SIGQUIT go down to every rank.
 *
 * The nodes are the emulated cluster's (-w picks some), or with --hosts
 * or -f the vexecd daemons of other hosts (launcher/hosts.h): Hydra's
 * HOST[:N] items, N daemons on consecutive ports from --port.  Naming
 * none inside a Slurm or PBS job means its nodes (cli_batch_hosts).
 *
 * Exit status: the highest rank code (exit status, or 128+N for a rank
 * killed by signal N); 124 when the time limit ended the job; 1 when vexec
 * itself failed; 2 for bad usage; 127 when PROG cannot be dumped.
 */
#include "common/err.h"
#include "fanout/bcast.h"
#include "fanout/fabric.h"
#include "fanout/topo.h"
#include "launcher/cli.h"
#include "launcher/cluster.h"
#include "launcher/frontend.h"
#include "launcher/hostlist.h"
#include "launcher/hosts.h"
#include "launcher/nodes.h"
#include "launcher/proto.h"
#include "vmadump/vmadump.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage_line(FILE *f)
{
    fprintf(f, "usage: vexec [-n N] [-w|--nodes LIST | --hosts LIST | "
            "-f HOSTFILE [--port BASE]]\n"
            "             [--tree SHAPE] [--chunk SIZE] [-l] [--timing] "
            "[--keep-going]\n"
            "             [--timeout SECONDS] [--key FILE] PROG [ARGS...]\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "vexec: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

/* "512K", "1M", "65536" -> bytes; 0 if malformed. */
static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return 0;
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    return *end ? 0 : (size_t)v;
}

/* "30", "1.5" -> seconds, 0 for no limit (as timeout(1)); -1 if
 * malformed, negative or above a year. */
static double parse_seconds(const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 366 * 86400.0)
        return -1;
    return v;
}

static int parse_ranks(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > TOPO_MAX_NODES)
        return -1;
    return (int)v;
}

static int parse_args(int argc, char **argv, struct fe_opts *o)
{
    static const struct option longopts[] = {
        { "nodes", required_argument, NULL, 'w' },
        { "hosts", required_argument, NULL, 'H' },
        { "hostfile", required_argument, NULL, 'f' },
        { "port", required_argument, NULL, 'p' },
        { "tree", required_argument, NULL, 't' },
        { "chunk", required_argument, NULL, 'c' },
        { "timing", no_argument, NULL, 'T' },
        { "keep-going", no_argument, NULL, 'K' },
        { "timeout", required_argument, NULL, 'L' },
        { "key", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        /* Hydra's spellings, for command lines written for mpiexec. */
        { "np", required_argument, NULL, 'n' },
        { "host", required_argument, NULL, 'H' },
        { "machinefile", required_argument, NULL, 'f' },
        { "prepend-rank", no_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    const char *env;
    int c, timeout_given = 0;

    /* _only: long options take one dash too (-np 4, -hosts a,b), as for
     * mpiexec; -n, -f, -l, -w and -h stay the short ones. */
    opterr = 0;
    while ((c = getopt_long_only(argc, argv, "+n:w:f:lh", longopts,
                                 NULL)) != -1) {
        switch (c) {
        case 'n':
            if ((o->nranks = parse_ranks(optarg)) < 0)
                return bad_usage("-n '%s': not a rank count from 1 to 65536",
                                 optarg);
            break;
        case 'w': o->nodes = optarg; break;
        case 'H': o->hosts = optarg; break;
        case 'f': o->hostfile = optarg; break;
        case 'p':
            if ((o->port = cli_parse_port(optarg)) < 0)
                return bad_usage("--port '%s': not a port from 1 to 65535",
                                 optarg);
            break;
        case 't': o->tree = optarg; break;
        case 'c':
            o->chunk = parse_size(optarg);
            if (o->chunk < BCAST_CHUNK_MIN || o->chunk > BCAST_CHUNK_MAX)
                return bad_usage("--chunk '%s': not a size from 4K to 64M",
                                 optarg);
            break;
        case 'l': o->label = 1; break;
        case 'T': o->timing = 1; break;
        case 'K': o->keep_going = 1; break;
        case 'L':
            timeout_given = 1;
            if ((o->timeout = parse_seconds(optarg)) < 0)
                return bad_usage("--timeout '%s': not a number of seconds "
                                 "from 0 (none) to a year", optarg);
            break;
        case 'k': o->key_file = optarg; break;
        case 'h':
            usage_line(stdout);
            exit(0);
        default:
            return bad_usage("unknown or incomplete option '%s' (see vexec "
                             "--help)", argv[optind - 1]);
        }
    }
    if (!!o->nodes + !!o->hosts + !!o->hostfile > 1)
        return bad_usage("%s", "-w, --hosts and -f each name the nodes: "
                         "give one");
    if (optind >= argc)
        return bad_usage("%s", "no program to run (see vexec --help)");
    o->hosts_from = cli_batch_hosts(!!o->nodes, &o->hosts, &o->hostfile);
    /* Hydra's variable, for scripts written for mpiexec. */
    if (!timeout_given && (env = getenv("MPIEXEC_TIMEOUT")) && *env
        && (o->timeout = parse_seconds(env)) < 0)
        return bad_usage("MPIEXEC_TIMEOUT '%s': not a number of seconds "
                         "from 0 (none) to a year", env);
    o->argv = argv + optind;
    return 0;
}

int main(int argc, char **argv)
{
    struct fe_opts o = { .tree = "auto", .port = HOSTS_PORT_DEFAULT };
    int ret;

    if (argc > 1 && !strcmp(argv[1], "nodes"))
        return nodes_main(argc - 1, argv + 1);
    if ((ret = parse_args(argc, argv, &o)))
        return ret;
    return fe_run(&o);
}
