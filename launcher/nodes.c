/* nodes.c - `vexec nodes` (see nodes.h): pick the nodes, send the signed
 * QUERY to the gateway's query socket (gateway.h), collect one NODE
 * record per node, print the table.
 *
 * Columns (README "vexec nodes"): NODE, STATE (up, busy: a job is on the
 * node, down), ADDRESS (its endpoint), LOAD (1-minute load average of the
 * node's host), RSS (the daemon's resident memory), then the last launch
 * the node served: JOB (its id), RANK, IMAGE (LAUNCH to image checked),
 * RAN (how long the rank ran, "+" while it runs), EXIT (its exit code,
 * sigN, "fail": it could not start, "-": not ended), AGO (since that
 * LAUNCH arrived).  A down node has the reason instead, as its parent
 * (or the gateway) saw it.
 *
 * With --hosts or -f the nodes are other hosts' `vexecd --address`
 * daemons: the query goes through a one-shot tcp gateway (gwspawn.h)
 * started for it, as a launch between hosts does.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/bell.h"
#include "fanout/fabric.h"
#include "fanout/topo.h"
#include "launcher/auth.h"
#include "launcher/cli.h"
#include "launcher/cluster.h"
#include "launcher/gateway.h"
#include "launcher/gwspawn.h"
#include "launcher/hostlist.h"
#include "launcher/hosts.h"
#include "launcher/nodequery.h"
#include "launcher/nodes.h"
#include "launcher/nodestat.h"
#include "launcher/proto.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* What vexec waits for the gateway's answer beyond the gateway's own
 * limit (NODEQ_HOP_S per level, nodequery.h): its scheduling and the
 * copy of the answer. */
#define SLACK_S 2.0

/* How long the one-shot gateway may take to exit once we closed its
 * socket (its query's last sends), before it is killed. */
#define GATEWAY_EXIT_S 5.0

struct opts {
    const char *tree;
    const char *key_file;
    const char *list;
    const char *hosts, *hostfile;   /* daemons of other hosts */
    const char *hosts_from;     /* the batch variable they came from */
    int port;
};

struct node {
    const char *label;          /* its name in the cluster */
    char endpoint[FAB_NAME_MAX + 1];
    int have;
    struct nodestat s;
    char reason[NODESTAT_REASON_MAX + 1];
};

struct nq {
    struct opts o;
    struct cluster c;
    struct hosts h;             /* with --hosts or -f */
    pid_t gateway;              /* the one-shot gateway's pid, 0 if none */
    char origin[FAB_NAME_MAX + 1];  /* the gateway's endpoint */
    struct auth *auth;
    int n, depth, sock, got;
    struct node *node;
    uint64_t id;
    char msg[PROTO_MSG_MAX];
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "tree", required_argument, NULL, 't' },
        { "key", required_argument, NULL, 'k' },
        { "hosts", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+hf:", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o->tree = optarg; break;
        case 'k': o->key_file = optarg; break;
        case 'H': o->hosts = optarg; break;
        case 'f': o->hostfile = optarg; break;
        case 'p':
            if ((o->port = cli_parse_port(optarg)) < 0)
                return cli_fail(2, "nodes: --port '%s': not a port from 1 "
                                "to 65535", optarg);
            break;
        case 'h':
            printf("usage: vexec nodes [--tree SHAPE] [--key FILE] [LIST]\n"
                   "       vexec nodes [--tree SHAPE] [--key FILE] "
                   "{--hosts LIST | -f HOSTFILE} [--port BASE]\n");
            exit(0);
        default:
            return cli_fail(2, "nodes: unknown or incomplete option '%s' (see "
                        "vexec nodes --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        o->list = argv[optind++];
    if (optind < argc)
        return cli_fail(2, "nodes: one LIST only, '%s' is one too many",
                    argv[optind]);
    if (o->list && (o->hosts || o->hostfile))
        return cli_fail(2, "nodes: LIST '%s' names nodes of the emulated "
                        "cluster; with --hosts or -f, list the daemons there",
                        o->list);
    o->hosts_from = cli_batch_hosts(o->list != NULL, &o->hosts, &o->hostfile);
    return 0;
}

/* ---- the nodes asked ---- */

static void add_node(struct nq *q, int i, int idx)
{
    q->node[i].label = q->c.nodes[idx];
    cluster_endpoint(&q->c, idx, q->node[i].endpoint,
                     sizeof(q->node[i].endpoint));
}

/* LIST's nodes, or every node of the cluster. */
static int pick_nodes(struct nq *q)
{
    struct hostlist *h = NULL;
    char err[512];
    int ret = 0;

    if (q->o.list && !(h = hostlist_create(q->o.list, err, sizeof(err))))
        return cli_fail(2, "nodes '%s': %s", q->o.list, err);
    q->n = h ? hostlist_count(h) : q->c.n;
    if (!(q->node = calloc((size_t)q->n, sizeof(*q->node)))) {
        ret = cli_fail(1, "out of memory");
        goto out;
    }
    for (int i = 0; i < q->n && !ret; i++) {
        int idx = h ? cluster_find(&q->c, hostlist_nth(h, i)) : i;

        if (idx < 0)
            ret = cli_fail(2, "unknown node '%s' (the cluster in %s has n0..n%d)",
                       hostlist_nth(h, i), q->c.dir, q->c.n - 1);
        else
            add_node(q, i, idx);
    }
    for (int i = 0; i < q->n && !ret; i++)
        for (int k = 0; k < i && !ret; k++)
            if (!strcmp(q->node[i].label, q->node[k].label))
                ret = cli_fail(2, "nodes '%s' names %s twice", q->o.list,
                           q->node[i].label);
out:
    hostlist_destroy(h);
    return ret;
}

/* Other hosts' daemons (--hosts, -f), asked through a one-shot gateway? */
static int over_tcp(const struct nq *q)
{
    return q->o.hosts || q->o.hostfile;
}

/* The daemons of --hosts and -f, all of them, answering or not. */
static int pick_hosts(struct nq *q)
{
    int ret = cli_add_hosts(&q->h, q->o.hosts, q->o.hostfile, q->o.port,
                            q->o.hosts_from, "nodes");

    if (ret)
        return ret;
    q->n = q->h.n;
    if (!(q->node = calloc((size_t)q->n, sizeof(*q->node))))
        return cli_fail(1, "out of memory");
    for (int i = 0; i < q->n; i++) {
        q->node[i].label = q->h.label[i];
        snprintf(q->node[i].endpoint, sizeof(q->node[i].endpoint), "%s",
                 q->h.endpoint[i]);
    }
    return 0;
}

/* The tree's depth, checked as a launch checks it. */
static int check_tree(struct nq *q)
{
    return cli_check_tree(q->o.tree, q->n, &q->depth);
}

/* The key we sign with: --key, else $VEXEC_KEY, else the cluster's. */
static int load_key(struct nq *q)
{
    char need[64];

    snprintf(need, sizeof(need), "%s%s", q->o.hosts_from
             ? "the daemons of " : "vexec nodes --hosts",
             q->o.hosts_from ? q->o.hosts_from : "");
    return cli_load_key(q->o.key_file, over_tcp(q) ? NULL : q->c.dir, need,
                        &q->auth);
}

/* ---- asking ---- */

/* The endpoints, in tree order, as one hostlist expression. */
static char *nodes_expression(struct nq *q)
{
    const char **names = calloc((size_t)q->n, sizeof(*names));
    char *expr = NULL;
    int len;

    for (int i = 0; names && i < q->n; i++)
        names[i] = q->node[i].endpoint;
    if (names && (len = hostlist_compress(names, q->n, NULL, 0)) >= 0
        && (expr = malloc((size_t)len + 1)))
        hostlist_compress(names, q->n, expr, (size_t)len + 1);
    free(names);
    return expr;
}

static int connect_gateway(struct nq *q)
{
    if (over_tcp(q))
        return cli_start_gateway(&q->h, 1, &q->sock, &q->gateway, q->origin,
                                 sizeof(q->origin));
    snprintf(q->origin, sizeof(q->origin), "%s", q->c.gw_endpoint);
    return cli_connect_gateway(GATEWAY_QUERY_KIND, q->c.name, q->c.dir,
                               q->c.n, &q->sock);
}

static int send_query(struct nq *q)
{
    char err[512], *expr = nodes_expression(q);
    struct proto_query pq = { .nnodes = (uint32_t)q->n, .tree = q->o.tree,
                              .origin = q->origin, .nodes = expr };
    int len = -1;

    if (!expr)
        return cli_fail(1, "out of memory");
    if (getrandom(&q->id, sizeof(q->id), 0) == sizeof(q->id)
        && (len = proto_encode_query(q->msg, sizeof(q->msg), q->id, &pq, err,
                                     sizeof(err))) >= 0)
        len = auth_sign(q->auth, q->msg, (size_t)len, sizeof(q->msg), err,
                        sizeof(err));
    free(expr);
    if (len < 0)
        return cli_fail(1, "%s", err);
    if (send(q->sock, q->msg, (size_t)len, MSG_NOSIGNAL) != len)
        return cli_fail(1, "sending the query to the gateway: %s",
                    strerror(errno));
    return 0;
}

/* ---- the answer ---- */

static int on_record(void *arg, const struct proto_rec *r)
{
    struct nq *q = arg;
    struct node *nd;
    char err[256];

    if (r->type == PROTO_FAIL && r->rank == UINT32_MAX) {
        fprintf(stderr, "vexec: %.*s\n", (int)r->len, (const char *)r->data);
        return 1;
    }
    if (r->type != PROTO_NODE || r->rank >= (uint32_t)q->n
        || q->node[r->rank].have)
        return 0;
    nd = &q->node[r->rank];
    if (nodestat_decode(r->data, r->len, r->value, &nd->s, err,
                        sizeof(err)) < 0) {
        fprintf(stderr, "vexec: bad answer for %s: %s\n", nd->label, err);
        return 0;
    }
    snprintf(nd->reason, sizeof(nd->reason), "%.*s", (int)nd->s.reason_len,
             nd->s.reason);
    nd->s.reason = nd->reason;
    nd->have = 1;
    q->got++;
    return 0;
}

/* Read answers until every node has its record or time is up.  Returns
 * 0, or 1 when the query failed. */
static int collect(struct nq *q)
{
    double end = mono_now() + NODEQ_HOP_S * (q->depth + 2) + SLACK_S;
    uint64_t id;
    char err[256];

    while (q->got < q->n && mono_now() < end) {
        struct pollfd p = { .fd = q->sock, .events = POLLIN };
        ssize_t n;
        int ret;

        if (poll(&p, 1, (int)((end - mono_now()) * 1000) + 1) <= 0)
            continue;
        if ((n = recv(q->sock, q->msg, sizeof(q->msg), 0)) <= 0)
            return cli_fail(1, "the gateway went away before every node "
                        "answered");
        ret = proto_each_rec(q->msg, (size_t)n, &id, on_record, q, err,
                             sizeof(err));
        if (ret < 0)
            fprintf(stderr, "vexec: bad answer: %s\n", err);
        if (ret > 0)
            return 1;
    }
    for (int i = 0; i < q->n; i++)
        if (!q->node[i].have)
            snprintf(q->node[i].reason, sizeof(q->node[i].reason),
                     "the gateway did not answer for it");
    return 0;
}

/* ---- the table ---- */

static const char *duration(uint64_t us, char *buf, size_t size)
{
    uint64_t s = us / 1000000;

    if (us < 1000000)
        snprintf(buf, size, "%.1fms", (double)us / 1e3);
    else if (s < 60)
        snprintf(buf, size, "%.2fs", (double)us / 1e6);
    else if (s < 3600)
        snprintf(buf, size, "%um%02us", (unsigned)(s / 60),
                 (unsigned)(s % 60));
    else if (s < 86400)
        snprintf(buf, size, "%uh%02um", (unsigned)(s / 3600),
                 (unsigned)(s / 60 % 60));
    else
        snprintf(buf, size, "%ud%02uh", (unsigned)(s / 86400),
                 (unsigned)(s / 3600 % 24));
    return buf;
}

static const char *exit_text(const struct nodestat *s, char *buf,
                             size_t size)
{
    if (s->phase == NODESTAT_FAILED)
        return "fail";
    if (s->phase != NODESTAT_EXITED)
        return "-";
    if (WIFSIGNALED(s->status))
        snprintf(buf, size, "sig%d", WTERMSIG(s->status));
    else
        snprintf(buf, size, "%d", WEXITSTATUS(s->status));
    return buf;
}

/* The last launch's columns. */
static void print_last(const struct nodestat *s)
{
    char job[24], image[16], ran[16], code[16], ago[16];

    if (s->phase == NODESTAT_NONE) {
        printf("  %-16s %5s %8s %8s %5s %7s\n", "-", "-", "-", "-", "-",
               "-");
        return;
    }
    snprintf(job, sizeof(job), "%016llx", (unsigned long long)s->job);
    if (s->image_us)
        duration(s->image_us, image, sizeof(image));
    else
        snprintf(image, sizeof(image), "-");
    if (s->phase == NODESTAT_RUNNING || s->phase == NODESTAT_EXITED) {
        duration(s->run_us, ran, sizeof(ran) - 1);
        if (s->phase == NODESTAT_RUNNING)
            strcat(ran, "+");
    } else {
        snprintf(ran, sizeof(ran), "-");
    }
    printf("  %-16s %5d %8s %8s %5s %7s\n", job, s->rank, image, ran,
           exit_text(s, code, sizeof(code)), duration(s->ago_us, ago,
                                                      sizeof(ago)));
}

static const char *state_name(uint32_t state)
{
    return state == NODESTAT_UP ? "up" : state == NODESTAT_BUSY ? "busy"
                                                                : "down";
}

static void print_node(const struct node *nd, int wname, int waddr)
{
    const struct nodestat *s = &nd->s;

    if (!nd->have || s->state == NODESTAT_DOWN) {
        printf("%-*s  %-5s %-*s  %s\n", wname, nd->label, "down", waddr,
               nd->endpoint, nd->reason);
        return;
    }
    printf("%-*s  %-5s %-*s  %6.2f %6.1fM", wname, nd->label,
           state_name(s->state), waddr, nd->endpoint, s->load100 / 100.0,
           s->rss_kib / 1024.0);
    print_last(s);
}

/* The table and the summary.  Returns the exit status. */
static int print_table(const struct nq *q)
{
    int wname = 4, waddr = 7, up = 0, busy = 0, silent = 0;

    for (int i = 0; i < q->n; i++) {
        int a = (int)strlen(q->node[i].label),
            b = (int)strlen(q->node[i].endpoint);

        wname = a > wname ? a : wname;
        waddr = b > waddr ? b : waddr;
    }
    printf("%-*s  %-5s %-*s  %6s %7s  %-16s %5s %8s %8s %5s %7s\n", wname,
           "NODE", "STATE", waddr, "ADDRESS", "LOAD", "RSS", "JOB", "RANK",
           "IMAGE", "RAN", "EXIT", "AGO");
    for (int i = 0; i < q->n; i++) {
        const struct node *nd = &q->node[i];
        int live = nd->have && nd->s.state != NODESTAT_DOWN;

        print_node(nd, wname, waddr);
        up += live;
        busy += live && nd->s.state == NODESTAT_BUSY;
        silent += !live && !strncmp(nd->reason, "no answer", 9);
    }
    printf("%d nodes: %d up", q->n, up);
    if (busy)
        printf(" (%d busy)", busy);
    printf(", %d down\n", q->n - up);
    if (up == 0 && silent)
        fprintf(stderr, "vexec: no node answered: a query signed with a "
                "key the nodes do not share is refused (see %s)\n",
                over_tcp(q) ? "the daemons' logs" : q->c.dir);
    return up == q->n ? 0 : 1;
}

static int run(struct nq *q)
{
    char err[512];
    int ret;

    if (over_tcp(q))
        ret = pick_hosts(q);
    else if (cluster_load(cluster_dir(NULL), &q->c, err, sizeof(err)) < 0)
        return cli_fail(1, "%s (start one with vexec-cluster up N)", err);
    else
        ret = pick_nodes(q);
    if (ret || (ret = check_tree(q))
        || (ret = load_key(q)) || (ret = connect_gateway(q))
        || (ret = send_query(q)) || (ret = collect(q)))
        return ret;
    return print_table(q);
}

int nodes_main(int argc, char **argv)
{
    struct nq q = { .o.tree = "auto", .o.port = HOSTS_PORT_DEFAULT,
                    .sock = -1 };
    int ret = parse_args(argc, argv, &q.o);

    if (!ret)
        ret = run(&q);
    if (q.sock >= 0)
        close(q.sock);
    gwspawn_reap(q.gateway, GATEWAY_EXIT_S);
    hosts_free(&q.h);
    free(q.node);
    auth_destroy(q.auth);
    cluster_free(&q.c);
    return ret;
}
