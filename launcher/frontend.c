/* frontend.c - one launch: pick the nodes, dump the program into a
 * sealed memfd, hand the LAUNCH and the memfd to the cluster's gateway
 * (gateway.h), then serve reports, stdin and signals until every rank has
 * reported its exit.  No libfabric here: the gateway holds the fabric.
 *
 * The nodes come from the emulated cluster's record (cluster.h), or, with
 * --hosts or -f, are daemons on other hosts (hosts.h): then vexec checks
 * they answer, and starts a one-shot tcp gateway of its own (gwspawn.h)
 * instead of connecting to the cluster's.
 * Every message we send down is signed with the cluster key (auth.h):
 * the gateway and the daemons relay it, and each daemon checks it.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/bcast.h"
#include "fanout/bell.h"
#include "fanout/fabric.h"
#include "fanout/topo.h"
#include "launcher/auth.h"
#include "launcher/cli.h"
#include "launcher/cluster.h"
#include "launcher/frontend.h"
#include "launcher/fe_image.h"
#include "launcher/gateway.h"
#include "launcher/gwspawn.h"
#include "launcher/hostlist.h"
#include "launcher/hosts.h"
#include "launcher/proto.h"
#include "launcher/sweep.h"
#include "vmadump/vmadump.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* How often the front end checks that node 0 still lives while waiting. */
#define ALIVE_CHECK_MS 1000

/* How long vexec waits for the daemons of --hosts to accept a TCP
 * connection before it calls one unreachable: far above a LAN's or a
 * busy host's accept latency. */
#define PROBE_S 5.0

/* How long a one-shot gateway may take to cancel and exit once vexec is
 * done with it. */
#define GATEWAY_EXIT_S 3.0

/* --timeout: once the limit passes every rank gets SIGTERM, SIGKILL
 * LIMIT_KILL_S later (srun's KillWait, shortened), and vexec stops waiting
 * for reports LIMIT_GIVE_UP_S after that (a rank on a node that died). */
#define LIMIT_KILL_S 5.0
#define LIMIT_GIVE_UP_S 10.0

/* Failed ranks named in the summary line before "and N more". */
#define SUMMARY_RANKS 8

/* A signed SIGNAL message: header, signal number, credential. */
#define SIG_MSG_MAX 128

/* A rank's partial output line on one stream. */
struct partial {
    char *buf;
    size_t len;
};

/* What "auto" means on one host.  topo_auto_width's model counts the
 * hops a chunk makes, which is what a launch across hosts waits for; on
 * one host every node shares the same cores, so the total work decides.
 * There kary:8 and kary:16 trade places as the fastest shape in the
 * launch benchmarks (1023 nodes: 1.42 s and 1.32 s; 255: 0.27 s and
 * 0.30 s), and in 6 interleaved launches at 1023 kary:8 took 1.59 s,
 * kary:4 1.65 s, kary:16 1.67 s, binomial 1.73 s, the model's choice
 * 1.71 s. */
#define TREE_ONE_HOST "kary:8"

struct fe {
    const struct fe_opts *o;
    struct cluster c;
    struct hosts h;             /* --hosts, -f: the daemons listed */
    int tcp;                    /* the nodes are h's, not c's */
    const char *tree;           /* --tree, "auto" resolved on one host */
    int n;
    int *node;                  /* cluster index of rank i's node */
    char *nodes_expr;           /* hostlist of endpoint names */
    char origin[FAB_NAME_MAX + 1];  /* the gateway's endpoint name */
    pid_t gateway;              /* one-shot gateway (tcp), or 0 */
    int sock;                   /* to the gateway */
    struct auth *auth;          /* the cluster key: we sign */
    uint64_t job;
    int image_fd;               /* the gateway's memfd, or our sealed one */
    int image_lent;             /* image_fd is the gateway's (gateway.h) */
    size_t image_len;
    uint64_t image_sum;         /* its header's checksum, signed along */
    uint32_t image_lead;        /* vmad_huge_lead, signed along */
    char launch[PROTO_MSG_MAX];
    char msg[PROTO_MSG_MAX];
    int *code;                  /* per rank: -1 running, else its code */
    int *status;                /* per rank: wait status */
    unsigned char *began;       /* per rank: STARTED seen */
    unsigned char *lost;        /* per rank: its node died first */
    char **dead;                /* per rank: why its node died, or NULL */
    int ndead;
    struct partial (*part)[2];
    int exited, started, imaged;
    int ep, sigfd, in_fd, in_poll;  /* in_poll: stdin cannot be epolled */
    int in_done;
    int interrupts;
    int limit_steps;            /* --timeout: 1 SIGTERM sent, 2 SIGKILL too */
    double limit_at;            /* when the next of those steps is due */
    double t0, t_dump, t_image, t_started, t_exited;
};

/* ---- choosing the nodes ---- */

/* The name the user knows rank's node by. */
static const char *node_label(const struct fe *e, int rank)
{
    return e->tcp ? e->h.label[rank] : e->c.nodes[e->node[rank]];
}

static int pick_named(struct fe *e, const char *expr)
{
    char err[512];
    struct hostlist *h = hostlist_create(expr, err, sizeof(err));
    int count;

    if (!h)
        return cli_fail(2, "--nodes '%s': %s", expr, err);
    count = hostlist_count(h);
    if (e->n == 0)
        e->n = count;
    if (e->n > count) {
        hostlist_destroy(h);
        return cli_fail(2, "%d ranks but --nodes names %d nodes", e->n, count);
    }
    if (!(e->node = calloc((size_t)e->n, sizeof(*e->node))))
        return cli_fail(1, "out of memory");
    for (int i = 0; i < e->n; i++) {
        const char *name = hostlist_nth(h, i);

        if ((e->node[i] = cluster_find(&e->c, name)) < 0) {
            cli_fail(2, "unknown node '%s' (the cluster in %s has n0..n%d)",
                 name, e->c.dir, e->c.n - 1);
            hostlist_destroy(h);
            return 2;
        }
    }
    hostlist_destroy(h);
    return 0;
}

static int pick_nodes(struct fe *e)
{
    int ret;

    if (e->o->nodes) {
        if ((ret = pick_named(e, e->o->nodes)))
            return ret;
    } else {
        if (e->n == 0)
            e->n = e->c.n;
        if (e->n > e->c.n)
            return cli_fail(2, "%d ranks but the cluster in %s has %d nodes",
                        e->n, e->c.dir, e->c.n);
        if (!(e->node = calloc((size_t)e->n, sizeof(*e->node))))
            return cli_fail(1, "out of memory");
        for (int i = 0; i < e->n; i++)
            e->node[i] = i;
    }
    for (int i = 0; i < e->n; i++)
        if (!cluster_node_up(&e->c, e->node[i]))
            return cli_fail(1, "node %s is not running (its daemon, pid %d, is "
                        "gone; see vexec-cluster status)",
                        e->c.nodes[e->node[i]], (int)e->c.pids[e->node[i]]);
    return 0;
}

/* The daemons of --hosts or -f: the first n of those listed, each
 * answering. */
static int pick_hosts(struct fe *e)
{
    const struct fe_opts *o = e->o;
    char err[1024];
    int ret;

    if ((ret = cli_add_hosts(&e->h, o->hosts, o->hostfile, o->port,
                             o->hosts_from, "")))
        return ret;
    if (e->n == 0)
        e->n = e->h.n;
    if (e->n > e->h.n)
        return cli_fail(2, "%d ranks but the host list names %d daemons", e->n,
                    e->h.n);
    if (hosts_probe(&e->h, e->n, PROBE_S, err, sizeof(err)) < 0)
        return cli_fail(1, "%s", err);
    return 0;
}

/* The endpoint names of the chosen nodes, in rank order, as one hostlist
 * expression for the LAUNCH. */
static int nodes_expression(struct fe *e)
{
    char **names = e->tcp ? e->h.endpoint : calloc((size_t)e->n,
                                                   sizeof(*names));
    int len = -1;

    for (int i = 0; names && !e->tcp && i < e->n; i++) {
        char ep[FAB_NAME_MAX + 1];

        if (!(names[i] = strdup(cluster_endpoint(&e->c, e->node[i], ep,
                                                 sizeof(ep)))))
            goto out;
    }
    if (names && (len = hostlist_compress((const char *const *)names, e->n,
                                          NULL, 0)) >= 0
        && (e->nodes_expr = malloc((size_t)len + 1)))
        hostlist_compress((const char *const *)names, e->n, e->nodes_expr,
                          (size_t)len + 1);
out:
    for (int i = 0; names && !e->tcp && i < e->n; i++)
        free(names[i]);
    if (!e->tcp)
        free(names);
    return e->nodes_expr ? 0 : cli_fail(1, "out of memory");
}

/* ---- the image ---- */

static int dump_program(struct fe *e)
{
    char err[512];
    int code = fe_image_dump(e->o->argv, e->n, &e->image_fd, &e->image_len,
                             &e->image_sum, &e->image_lead, err,
                             sizeof(err));

    return code ? cli_fail(code, "%s", err) : 0;
}

/* ---- reports ---- */

/* Write one whole line (or the last, unterminated piece) of rank's
 * output, labelled if asked. */
static void emit(struct fe *e, uint32_t rank, int stream, const char *p,
                 size_t len)
{
    FILE *out = stream == 2 ? stderr : stdout;

    if (e->o->label)
        fprintf(out, "[%u] ", rank);
    fwrite(p, 1, len, out);
    fflush(out);
}

/* Join a rank's output pieces into whole lines. */
static void on_output(struct fe *e, const struct proto_rec *r)
{
    struct partial *pt = &e->part[r->rank][r->value == 2];
    const char *p = r->data, *end = p + r->len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

        if (!nl || pt->len) {
            char *b = realloc(pt->buf, pt->len + n);

            if (!b)
                return;
            memcpy(b + pt->len, p, n);
            pt->buf = b;
            pt->len += n;
            if (nl) {
                emit(e, r->rank, r->value, pt->buf, pt->len);
                pt->len = 0;
            }
        } else {
            emit(e, r->rank, r->value, p, n);
        }
        p += n;
    }
}

/* A rank's unterminated last line: as it is with one rank; with several
 * it gets a newline, so that it cannot run into another rank's line. */
static void flush_partials(struct fe *e, uint32_t rank)
{
    for (int s = 0; s < 2; s++) {
        struct partial *pt = &e->part[rank][s];
        char *b;

        if (pt->len && e->n > 1 && (b = realloc(pt->buf, pt->len + 1))) {
            pt->buf = b;
            pt->buf[pt->len++] = '\n';
        }
        if (pt->len)
            emit(e, rank, s + 1, pt->buf, pt->len);
        free(pt->buf);
        *pt = (struct partial){ 0 };
    }
}

static int rank_code(int status)
{
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* A node died: remember why, and that its rank's exit (if it had none
 * yet) is its adopter's word, not the rank's. */
static void on_dead(struct fe *e, const struct proto_rec *r)
{
    char why[256];

    if (e->dead[r->rank])
        return;
    snprintf(why, sizeof(why), "%.*s %s", (int)r->len, (const char *)r->data,
             e->began[r->rank] ? "while its rank ran" : "during the launch");
    if ((e->dead[r->rank] = strdup(why)))
        e->ndead++;
    if (e->code[r->rank] < 0)
        e->lost[r->rank] = 1;
}

static int on_record(void *arg, const struct proto_rec *r)
{
    struct fe *e = arg;

    if (r->type == PROTO_FAIL && r->rank == UINT32_MAX) {
        fprintf(stderr, "vexec: %.*s\n", (int)r->len, (const char *)r->data);
        return 1;
    }
    if (r->rank >= (uint32_t)e->n)
        return 0;
    switch (r->type) {
    case PROTO_OUT:
        on_output(e, r);
        break;
    case PROTO_IMAGE:
        if (++e->imaged == e->n)
            e->t_image = mono_now();
        break;
    case PROTO_STARTED:
        e->began[r->rank] = 1;
        if (++e->started == e->n)
            e->t_started = mono_now();
        break;
    case PROTO_DEAD:
        on_dead(e, r);
        break;
    case PROTO_FAIL:
        fprintf(stderr, "vexec: rank %u (node %s): %.*s\n", r->rank,
                node_label(e, (int)r->rank), (int)r->len,
                (const char *)r->data);
        break;
    case PROTO_EXIT:
        if (e->code[r->rank] >= 0)
            break;
        flush_partials(e, r->rank);
        e->status[r->rank] = r->value;
        e->code[r->rank] = rank_code(r->value);
        if (++e->exited == e->n)
            e->t_exited = mono_now();
        break;
    }
    return 0;
}

/* Read the report batches the gateway relayed.  Returns 0, or 1 when the
 * launch failed or the gateway went away. */
static int read_reports(struct fe *e)
{
    char err[256];
    uint64_t job;
    ssize_t n;

    while ((n = recv(e->sock, e->msg, sizeof(e->msg), MSG_DONTWAIT)) > 0) {
        int ret = proto_each_rec(e->msg, (size_t)n, &job, on_record, e, err,
                                 sizeof(err));

        if (ret < 0)
            fprintf(stderr, "vexec: bad report: %s\n", err);
        if (ret > 0)
            return 1;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
        return cli_fail(1, e->tcp ? "the gateway went away before every rank "
                    "reported" : "the cluster's gateway went away before "
                    "every rank reported (see vexec-cluster status)");
    return 0;
}

/* Sign the len-byte message in msg (size bytes of room) and send it.  A
 * failure is not reported here: a gateway that went away is reported
 * once, by read_reports, with the reason it sent. */
static int send_down(struct fe *e, void *msg, size_t len, size_t size)
{
    int n = auth_sign(e->auth, msg, len, size, NULL, 0);

    if (n < 0)
        return -1;
    return send(e->sock, msg, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* ---- launching ---- */

/* Between hosts: a one-shot gateway on the address of this host that
 * leads to node 0. */
static int start_gateway(struct fe *e)
{
    return cli_start_gateway(&e->h, 0, &e->sock, &e->gateway, e->origin,
                             sizeof(e->origin));
}

static int connect_gateway(struct fe *e)
{
    if (e->tcp)
        return start_gateway(e);
    snprintf(e->origin, sizeof(e->origin), "%s", e->c.gw_endpoint);
    return cli_connect_gateway(GATEWAY_KIND, e->c.name, e->c.dir, e->c.n,
                               &e->sock);
}

/* The cluster's gateway's first message: the memfd it lends us for the
 * image, or none (gateway.h).  Waits while it serves another launch. */
static int borrow_image_fd(struct fe *e)
{
    char buf[64], cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { buf, sizeof(buf) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c;
    ssize_t n;

    do
        n = recvmsg(e->sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return cli_fail(1, "the cluster's gateway went away before the launch"
                        "%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
    c = CMSG_FIRSTHDR(&mh);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        memcpy(&e->image_fd, CMSG_DATA(c), sizeof(int));
        e->image_lent = 1;
    }
    if ((size_t)n != sizeof(GATEWAY_LEND) - 1
        || memcmp(buf, GATEWAY_LEND, (size_t)n))
        return cli_fail(1, "the cluster's gateway sent no image memfd offer");
    return 0;
}

/* The SIGKILL the gateway sends down if we go away before the job ends
 * (gateway.h), signed now: the gateway cannot sign, and daemons obey a
 * signed SIGKILL however old (daemon.c). */
static int send_cancel(struct fe *e)
{
    char msg[SIG_MSG_MAX];
    int len = proto_encode_signal(msg, sizeof(msg), e->job, SIGKILL, NULL,
                                  0);

    if (len < 0 || send_down(e, msg, (size_t)len, sizeof(msg)) < 0)
        return cli_fail(1, "sending the launch to the gateway: %s",
                    strerror(errno));
    return 0;
}

/* The signed LAUNCH, with the image memfd attached, then the cancel. */
static int send_launch(struct fe *e)
{
    char err[512];
    struct proto_launch l = { .nnodes = (uint32_t)e->n,
                              .image_len = e->image_len,
                              .image_sum = e->image_sum,
                              .image_lead = e->image_lead,
                              .chunk = e->o->chunk ? e->o->chunk
                                       : e->tcp ? BCAST_CHUNK_DEFAULT
                                                : BCAST_CHUNK_ONE_HOST,
                              .tree = e->tree, .origin = e->origin,
                              .nodes = e->nodes_expr };
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { e->launch, 0 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    int len;

    /* A random job id: a stale signed SIGKILL names one job only. */
    if (getrandom(&e->job, sizeof(e->job), 0) != sizeof(e->job))
        return cli_fail(1, "getrandom: %s", strerror(errno));
    if ((len = proto_encode_launch(e->launch, sizeof(e->launch), e->job, &l,
                                   err, sizeof(err))) < 0
        || (len = auth_sign(e->auth, e->launch, (size_t)len,
                            sizeof(e->launch), err, sizeof(err))) < 0)
        return cli_fail(1, "%s", err);
    iov.iov_len = (size_t)len;
    if (e->image_lent) {
        mh.msg_control = NULL;      /* the image is in the gateway's memfd */
        mh.msg_controllen = 0;
    } else {
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &e->image_fd, sizeof(int));
    }
    if (sendmsg(e->sock, &mh, MSG_NOSIGNAL) != len)
        return cli_fail(1, "sending the launch to the gateway: %s",
                    strerror(errno));
    if (e->image_lent) {
        /* The next client's to write once this launch's image is out. */
        close(e->image_fd);
        e->image_fd = -1;
    }
    return send_cancel(e);
}

/* ---- stdin and signals ---- */

static void forward_signal(struct fe *e, int signo)
{
    char msg[SIG_MSG_MAX];
    int len = proto_encode_signal(msg, sizeof(msg), e->job, signo, NULL, 0);

    if (len > 0)
        send_down(e, msg, (size_t)len, sizeof(msg));
}

static void on_signalfd(struct fe *e)
{
    struct signalfd_siginfo si;

    while (read(e->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int signo = (int)si.ssi_signo;

        /* A second interrupt means it: kill what is left.  A third gives
         * up waiting for ranks whose reports cannot come (a dead node). */
        if (signo == SIGINT && e->interrupts++ > 0)
            signo = SIGKILL;
        forward_signal(e, signo);
    }
}

/* Read a piece of stdin and send it to rank 0; end of file is an empty
 * piece. */
static void pump_stdin(struct fe *e)
{
    char buf[PROTO_STDIN_MAX];
    ssize_t n;
    int len;

    if (e->in_done || e->code[0] >= 0)
        return;
    n = read(e->in_fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        e->in_done = 1;
        if (!e->in_poll)
            epoll_ctl(e->ep, EPOLL_CTL_DEL, e->in_fd, NULL);
        n = 0;
    }
    len = proto_encode_stdin(e->msg, sizeof(e->msg), e->job, buf, (size_t)n,
                             NULL, 0);
    if (len > 0)
        send_down(e, e->msg, (size_t)len, sizeof(e->msg));
}

static int watch(struct fe *e, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

    return epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev);
}

static int setup_events(struct fe *e)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if ((e->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0
        || (e->ep = epoll_create1(EPOLL_CLOEXEC)) < 0
        || watch(e, e->sigfd) < 0 || watch(e, e->sock) < 0)
        return cli_fail(1, "%s", strerror(errno));
    e->in_fd = 0;
    /* A regular file or /dev/null cannot be epolled: always readable. */
    if (watch(e, 0) < 0)
        e->in_poll = 1;
    return 0;
}

/* ---- waiting ---- */

/* Stdin that cannot be epolled (a file) is read between waits of
 * STDIN_POLL_MS. */
#define STDIN_POLL_MS 1

/* Does node 0's daemon still live?  Between hosts: does it still accept
 * connections? */
static int node0_up(struct fe *e)
{
    if (e->tcp)
        return hosts_probe(&e->h, 1, PROBE_S, NULL, 0) == 0;
    return cluster_node_up(&e->c, e->node[0]);
}

/* The time limit (--timeout) at its steps: SIGTERM to every rank, then
 * SIGKILL, then give up waiting.  Shortens *wait_ms, the next wait for
 * events, to end by the next step.  Returns non-zero (vexec's exit
 * status) at the last. */
static int time_limit(struct fe *e, int *wait_ms)
{
    double now = mono_now();

    if (e->o->timeout <= 0)
        return 0;
    if (now < e->limit_at) {
        if ((e->limit_at - now) * 1e3 < *wait_ms)
            *wait_ms = (int)((e->limit_at - now) * 1e3) + 1;
        return 0;
    }
    switch (e->limit_steps++) {
    case 0:
        fprintf(stderr, "vexec: time limit of %g s reached: ending every "
                "rank\n", e->o->timeout);
        forward_signal(e, SIGTERM);
        e->limit_at = now + LIMIT_KILL_S;
        return 0;
    case 1:
        forward_signal(e, SIGKILL);
        e->limit_at = now + LIMIT_GIVE_UP_S;
        return 0;
    default:
        return cli_fail(VEXEC_TIMED_OUT, "time limit of %g s reached; %d of "
                        "%d ranks never reported", e->o->timeout,
                        e->n - e->exited, e->n);
    }
}

static int wait_for_ranks(struct fe *e)
{
    double next_check = mono_now() + ALIVE_CHECK_MS / 1e3;
    struct epoll_event ev[8];

    e->limit_at = e->t0 + e->o->timeout;
    while (e->exited < e->n) {
        int n, timeout = e->in_poll && !e->in_done ? STDIN_POLL_MS
                                                   : ALIVE_CHECK_MS;

        if ((n = time_limit(e, &timeout)))
            return n;
        if (e->in_poll)
            pump_stdin(e);
        if (mono_now() > next_check) {
            next_check = mono_now() + ALIVE_CHECK_MS / 1e3;
            if (!node0_up(e)) {
                /* Its rank died with it, not what that rank started. */
                if (!e->tcp)
                    sweep_daemon(e->c.pids[e->node[0]]);
                return cli_fail(1, "node %s died; the ranks below it are lost",
                            node_label(e, 0));
            }
        }
        n = epoll_wait(e->ep, ev, 8, timeout);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == e->sigfd)
                on_signalfd(e);
            if (e->interrupts >= 3)
                return cli_fail(130, "interrupted; %d of %d ranks never "
                            "reported", e->n - e->exited, e->n);
            else if (ev[i].data.fd == e->sock && read_reports(e))
                return 1;
            else if (ev[i].data.fd == 0)
                pump_stdin(e);
        }
    }
    return 0;
}

static const char *describe(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "exited %d", WEXITSTATUS(status));
    return buf;
}

/* One line naming the dead nodes: "vexec: 1 node failed: n5 (died
 * during the launch)". */
static void dead_summary(struct fe *e)
{
    char line[2048];
    size_t len = 0;
    int shown = 0;

    for (int i = 0; i < e->n && len < sizeof(line); i++) {
        if (!e->dead[i])
            continue;
        if (shown++ == SUMMARY_RANKS) {
            snprintf(line + len, sizeof(line) - len, " and %d more",
                     e->ndead - SUMMARY_RANKS);
            break;
        }
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s (%s)",
                                shown > 1 ? ", " : "", node_label(e, i),
                                e->dead[i]);
    }
    fprintf(stderr, "vexec: %d node%s failed: %s\n", e->ndead,
            e->ndead == 1 ? "" : "s", line);
}

/* The highest code of a rank that ran (1 if there is none but a node
 * died, unless --keep-going), one line naming the failed ranks (those
 * lost with their node too), and one naming the dead nodes. */
static int summary(struct fe *e)
{
    int worst = 0, failed = 0, shown = 0;
    char line[4096], what[512], how[128];
    size_t len = 0;

    for (int i = 0; i < e->n; i++) {
        if (!e->lost[i] && e->code[i] > worst)
            worst = e->code[i];
        if (e->code[i] == 0 && !e->lost[i])
            continue;
        if (failed++ >= SUMMARY_RANKS)
            continue;
        /* The node too, as srun names it ("node12: task 3: Exited"):
         * whoever reads the line drains nodes, not ranks. */
        if (e->lost[i])
            snprintf(what, sizeof(what), "lost with node %s",
                     node_label(e, i));
        else
            snprintf(what, sizeof(what), "on %s %s", node_label(e, i),
                     describe(e->status[i], how, sizeof(how)));
        if (len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len,
                                    "%srank %d %s", shown++ ? ", " : "", i,
                                    what);
    }
    if (failed > SUMMARY_RANKS && len < sizeof(line))
        snprintf(line + len, sizeof(line) - len, " and %d more",
                 failed - SUMMARY_RANKS);
    if (failed)
        fprintf(stderr, "vexec: %d of %d ranks failed: %s\n", failed, e->n,
                line);
    if (e->ndead)
        dead_summary(e);
    return worst || !e->ndead || e->o->keep_going ? worst : 1;
}

/* A phase's time since start, or "not reached". */
static const char *phase(const struct fe *e, double t, char *buf, size_t size)
{
    if (t <= 0)
        return "not reached";
    snprintf(buf, size, "%.1f ms", (t - e->t0) * 1e3);
    return buf;
}

static void print_timing(struct fe *e)
{
    char a[32], b[32], c[32], d[32];

    fprintf(stderr, "vexec: timing: %d ranks, tree %s, image %zu bytes: "
            "dump %s, image on all nodes %s, all started %s, all exited %s\n",
            e->n, e->tree, e->image_len,
            phase(e, e->t_dump, a, sizeof(a)),
            phase(e, e->t_image, b, sizeof(b)),
            phase(e, e->t_started, c, sizeof(c)),
            phase(e, e->t_exited, d, sizeof(d)));
}

static int alloc_ranks(struct fe *e)
{
    e->code = malloc(sizeof(*e->code) * (size_t)e->n);
    e->status = calloc((size_t)e->n, sizeof(*e->status));
    e->part = calloc((size_t)e->n, sizeof(*e->part));
    e->began = calloc((size_t)e->n, 1);
    e->lost = calloc((size_t)e->n, 1);
    e->dead = calloc((size_t)e->n, sizeof(*e->dead));
    if (!e->code || !e->status || !e->part || !e->began || !e->lost
        || !e->dead)
        return cli_fail(1, "out of memory");
    for (int i = 0; i < e->n; i++)
        e->code[i] = -1;
    return 0;
}

static void fe_free(struct fe *e)
{
    if (e->sock >= 0)
        close(e->sock);
    gwspawn_reap(e->gateway, GATEWAY_EXIT_S);
    hosts_free(&e->h);
    if (e->image_fd >= 0)
        close(e->image_fd);
    for (int i = 0; e->part && i < e->n; i++)
        flush_partials(e, (uint32_t)i);
    free(e->part);
    free(e->code);
    free(e->status);
    for (int i = 0; e->dead && i < e->n; i++)
        free(e->dead[i]);
    free(e->dead);
    free(e->began);
    free(e->lost);
    free(e->node);
    free(e->nodes_expr);
    auth_destroy(e->auth);
    cluster_free(&e->c);
}

static int check_tree(struct fe *e)
{
    return cli_check_tree(e->tree, e->n, NULL);
}

/* The key we sign with: --key, else $VEXEC_KEY, else the cluster's (not
 * for other hosts: they cannot share an emulated cluster's key). */
static int load_key(struct fe *e)
{
    char need[64];

    snprintf(need, sizeof(need), "%s%s", e->o->hosts_from
             ? "the daemons of " : "--hosts and -f",
             e->o->hosts_from ? e->o->hosts_from : "");
    return cli_load_key(e->o->key_file, e->tcp ? NULL : e->c.dir, need,
                        &e->auth);
}

int fe_run(const struct fe_opts *o)
{
    struct fe e = { .o = o, .n = o->nranks, .ep = -1, .sigfd = -1,
                    .sock = -1, .image_fd = -1 };
    char err[512];
    int ret;

    e.t0 = mono_now();
    e.tcp = o->hosts || o->hostfile;
    e.tree = !e.tcp && !strcmp(o->tree, "auto") ? TREE_ONE_HOST : o->tree;
    if (e.tcp) {
        if ((ret = pick_hosts(&e)))
            goto out;
    } else if (cluster_load(cluster_dir(NULL), &e.c, err, sizeof(err)) < 0) {
        ret = cli_fail(1, "%s (start one with vexec-cluster up N)", err);
        goto out;
    } else if ((ret = pick_nodes(&e))) {
        goto out;
    }
    if ((ret = load_key(&e)))
        goto out;
    if ((ret = check_tree(&e))
        || (ret = nodes_expression(&e)) || (ret = alloc_ranks(&e)))
        goto out;
    /* On a cluster the gateway comes first: it lends the image's memfd.
     * Between hosts the one-shot gateway starts only once the program
     * could be dumped. */
    if (!e.tcp && ((ret = connect_gateway(&e)) || (ret = borrow_image_fd(&e))))
        goto out;
    if ((ret = dump_program(&e)))
        goto out;
    e.t_dump = mono_now();
    if ((e.tcp && (ret = connect_gateway(&e))) || (ret = setup_events(&e))
        || (ret = send_launch(&e)) || (ret = wait_for_ranks(&e)))
        goto out;
    ret = summary(&e);
    if (e.limit_steps)
        ret = VEXEC_TIMED_OUT;
    if (o->timing)
        print_timing(&e);
out:
    fe_free(&e);
    return ret;
}
