/* fabric.c - endpoint setup and tagged send/receive over libfabric: shm
 * on one host, tcp;ofi_rxm between hosts.
 *
 * One struct fab is one FI_EP_RDM endpoint with its own address vector
 * (peers by index) and one completion queue for sends and receives.  See
 * fabric.h for what the shm provider demands of callers.  The two modes
 * differ only in naming and waiting: shm names endpoints by string and
 * wakes peers with doorbells; tcp names them by address, and its
 * completion queue has a kernel wait object (FI_WAIT_FD) that becomes
 * readable when data arrives, so no doorbell is needed (fabric_wait.c:
 * doorbells and fab_idle).
 *
 * Every posted operation gets an entry of our own (struct op) as its
 * libfabric context, which remembers the caller's ctx and the peer: so a
 * peer can be given up (its sends stop counting, their completions are
 * dropped) and receives can be withdrawn, without a late completion ever
 * reaching a caller that no longer expects it.
 */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/bell.h"
#include "fanout/fabric.h"
#include "fanout/fabric_priv.h"
#include "fanout/netaddr.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

/* The libfabric API we are written against (Debian 12 ships 1.17). */
#define FAB_FI_VERSION FI_VERSION(1, 17)

/* Huge-page size the buffers are aligned to. */
#define HUGE_PAGE (2UL << 20)

/* libfabric returns negative FI_E* codes that equal -errno for the common
 * ones; map the rest to something errno can say. */
static int fi_errno(int ret)
{
    int e = ret < 0 ? -ret : ret;

    return e > 0 && e < FI_ERRNO_OFFSET ? e : EIO;
}

/* The provider of each mode. */
#define PROV_SHM "shm"
#define PROV_TCP "tcp;ofi_rxm"

/* The source address of a tcp endpoint: name parsed, or NULL. */
static void *tcp_src(const char *name, size_t *len)
{
    struct sockaddr_in *sa = malloc(sizeof(*sa));

    if (sa && netaddr_parse(name, sa, NULL, 0) < 0) {
        free(sa);
        return NULL;
    }
    *len = sizeof(*sa);
    return sa;
}

/* Hints for a tagged RDM endpoint, without memory registration (mr_mode
 * 0: a provider that needs FI_MR_LOCAL is not offered) and without
 * FI_CONTEXT (mode 0: any pointer is a valid op context).  shm is
 * addressed by string, tcp by sockaddr_in; name (NULL: any) is the
 * endpoint's own address. */
static struct fi_info *hints_for(int tcp, const char *name)
{
    struct fi_info *hints = fi_allocinfo();

    if (!hints)
        return NULL;
    hints->caps = FI_TAGGED | FI_DIRECTED_RECV;
    hints->mode = 0;
    hints->ep_attr->type = FI_EP_RDM;
    hints->domain_attr->mr_mode = 0;
    hints->domain_attr->threading = FI_THREAD_DOMAIN;
    hints->addr_format = tcp ? FI_SOCKADDR_IN : FI_ADDR_STR;
    if (!tcp) {
        hints->tx_attr->size = FAB_SHM_QUEUE;
        hints->rx_attr->size = FAB_SHM_QUEUE;
    }
    hints->fabric_attr->prov_name = strdup(tcp ? PROV_TCP : PROV_SHM);
    if (name && tcp) {
        hints->src_addr = tcp_src(name, &hints->src_addrlen);
    } else if (name) {
        hints->src_addr = strdup(name);
        hints->src_addrlen = strlen(name) + 1;
    }
    if (!hints->fabric_attr->prov_name || (name && !hints->src_addr)) {
        fi_freeinfo(hints);
        return NULL;
    }
    return hints;
}

static int get_info(int tcp, const char *name, struct fi_info **info,
                    char *err, size_t errlen)
{
    struct fi_info *hints = hints_for(tcp, name);
    int ret;

    if (!hints)
        return seterr(err, errlen, ENOMEM, "out of memory");
    ret = fi_getinfo(FAB_FI_VERSION, NULL, NULL, 0, hints, info);
    fi_freeinfo(hints);
    if (ret == -FI_ENODATA && tcp && name)
        return seterr(err, errlen, EADDRNOTAVAIL, "libfabric offers no %s "
                      "endpoint at %s (is it an address of this host?)",
                      PROV_TCP, name);
    if (ret == -FI_ENODATA)
        return seterr(err, errlen, ENODATA, "libfabric offers no %s "
                      "provider for tagged RDM", tcp ? PROV_TCP : PROV_SHM);
    if (ret)
        return seterr(err, errlen, fi_errno(ret), "fi_getinfo: %s",
                      fi_strerror(-ret));
    return 0;
}

int fab_init(char *err, size_t errlen)
{
    struct fi_info *info;

    if (get_info(0, NULL, &info, err, errlen) < 0)
        return -1;
    fi_freeinfo(info);
    return 0;
}

static int valid_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    struct sockaddr_in sa;

    if (netaddr_is_tcp(name))
        return netaddr_parse(name, &sa, NULL, 0) == 0;
    return len > 0 && len <= FAB_NAME_MAX && !strchr(name, '/')
           && strcmp(name, ".") && strcmp(name, "..");
}

int fab_peer_pid(const struct fab *f, int peer)
{
    return peer >= 0 && peer < f->npeers ? f->peer_pid[peer] : 0;
}

const char *fab_peer_name(const struct fab *f, int peer)
{
    return peer >= 0 && peer < f->npeers ? f->peer_name[peer] : "";
}

/* Open fabric, domain, AV, CQ and endpoint, bind and enable.  Names the
 * step that failed. */
static int open_endpoint(struct fab *f, char *err, size_t errlen)
{
    struct fi_av_attr av_attr = {
        .type = FI_AV_TABLE,
        .count = FAB_MAX_PEERS,
    };
    struct fi_cq_attr cq_attr = {
        .format = FI_CQ_FORMAT_TAGGED,
        .size = f->info->tx_attr->size + f->info->rx_attr->size,
        .wait_obj = f->tcp ? FI_WAIT_FD : FI_WAIT_NONE,
    };
    const char *step;
    int ret;

    if ((ret = fi_fabric(f->info->fabric_attr, &f->fabric, NULL)))
        step = "fi_fabric";
    else if ((ret = fi_domain(f->fabric, f->info, &f->domain, NULL)))
        step = "fi_domain";
    else if ((ret = fi_av_open(f->domain, &av_attr, &f->av, NULL)))
        step = "fi_av_open";
    else if ((ret = fi_cq_open(f->domain, &cq_attr, &f->cq, NULL)))
        step = "fi_cq_open";
    else if ((ret = fi_endpoint(f->domain, f->info, &f->ep, NULL)))
        step = "fi_endpoint";
    else if ((ret = fi_ep_bind(f->ep, &f->av->fid, 0)))
        step = "fi_ep_bind(av)";
    else if ((ret = fi_ep_bind(f->ep, &f->cq->fid, FI_TRANSMIT | FI_RECV)))
        step = "fi_ep_bind(cq)";
    else if ((ret = fi_enable(f->ep)))
        step = "fi_enable";
    else if (f->tcp
             && (ret = fi_control(&f->cq->fid, FI_GETWAIT, &f->waitfd)))
        step = "fi_control(FI_GETWAIT)";
    else
        return 0;
    return seterr(err, errlen, fi_errno(ret), "%s %s: %s", f->name, step,
                  fi_strerror(-ret));
}

/* A tcp endpoint's name is the address it is bound to, as
 * netaddr_format spells it (the port the kernel chose for port 0). */
static int tcp_own_name(struct fab *f, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    size_t len = sizeof(sa);
    int ret = fi_getname(&f->ep->fid, &sa, &len);

    if (ret)
        return seterr(err, errlen, fi_errno(ret), "%s fi_getname: %s",
                      f->name, fi_strerror(-ret));
    netaddr_format(&sa, f->name, sizeof(f->name));
    return 0;
}

struct fab *fab_create(const char *name, char *err, size_t errlen)
{
    struct fab *f;

    if (!valid_name(name)) {
        seterr(err, errlen, EINVAL, "invalid endpoint name '%s'",
               name ? name : "(null)");
        return NULL;
    }
    if (!(f = calloc(1, sizeof(*f)))) {
        seterr(err, errlen, ENOMEM, "out of memory");
        return NULL;
    }
    strcpy(f->name, name);
    f->bell = f->waitfd = -1;
    if (!(f->ops = calloc(FAB_OPS, sizeof(*f->ops)))) {
        seterr(err, errlen, ENOMEM, "out of memory");
        goto error;
    }
    for (int i = FAB_OPS - 1; i >= 0; i--) {
        f->ops[i].next = f->free_ops;
        f->free_ops = &f->ops[i];
    }
    f->tcp = netaddr_is_tcp(name);
    /* The doorbell first: it is the lock on the name, so a second process
     * with the same name fails before touching the first's /dev/shm file.
     * A tcp address is locked by binding it. */
    if (!f->tcp && fab_open_bell(f, err, errlen) < 0)
        goto error;
    if (get_info(f->tcp, name, &f->info, err, errlen) < 0)
        goto error;
    if (open_endpoint(f, err, errlen) < 0)
        goto error;
    if (f->tcp && tcp_own_name(f, err, errlen) < 0)
        goto error;
    return f;
error:
    fab_destroy(f);
    return NULL;
}

static void close_fid(struct fid *fid)
{
    if (fid)
        fi_close(fid);
}

void fab_destroy(struct fab *f)
{
    int saved = errno;

    if (f) {
        for (int i = 0; i < f->ntx; i++) {
            close_fid(f->tx[i].ep ? &f->tx[i].ep->fid : NULL);
            close_fid(f->tx[i].av ? &f->tx[i].av->fid : NULL);
            close_fid(f->tx[i].cq ? &f->tx[i].cq->fid : NULL);
            if (f->tx[i].info)
                fi_freeinfo(f->tx[i].info);
        }
        free(f->synth);
        fab_forget_states(f);
        /* The endpoint first: closing it unlinks /dev/shm/NAME. */
        close_fid(f->ep ? &f->ep->fid : NULL);
        close_fid(f->av ? &f->av->fid : NULL);
        close_fid(f->cq ? &f->cq->fid : NULL);
        close_fid(f->domain ? &f->domain->fid : NULL);
        close_fid(f->fabric ? &f->fabric->fid : NULL);
        if (f->info)
            fi_freeinfo(f->info);
        if (f->bell >= 0)
            close(f->bell);
        free(f->ops);
        free(f);
    }
    errno = saved;
}

const char *fab_name(const struct fab *f)
{
    return f->name;
}

/* The index of name among the peers, or of the lowest free slot (-1 when
 * there is none); *known says which. */
static int find_slot(const struct fab *f, const char *name, int *known)
{
    int free_slot = -1;

    *known = 0;
    for (int i = 0; i < f->npeers; i++) {
        if (!strcmp(f->peer_name[i], name)) {
            *known = 1;
            return i;
        }
        if (!f->peer_name[i][0] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0 && f->npeers < FAB_MAX_PEERS)
        free_slot = f->npeers;
    return free_slot;
}

/* A tcp peer is inserted by address.  Whether it listens shows only when
 * a send to it is posted: rxm connects then. */
static int insert_tcp(struct fab *f, const char *name, int slot)
{
    struct sockaddr_in sa;

    netaddr_parse(name, &sa, NULL, 0);
    return fi_av_insert(f->av, &sa, 1, &f->peers[slot], 0, NULL);
}

int fab_add_peer(struct fab *f, const char *name, char *err, size_t errlen)
{
    char canon[NETADDR_STRLEN];
    struct sockaddr_in sa;
    int known, slot, ret;

    if (!valid_name(name))
        return seterr(err, errlen, EINVAL, "invalid peer name '%s'",
                      name ? name : "(null)");
    /* One address, one slot, however it was spelled. */
    if (netaddr_is_tcp(name) && netaddr_parse(name, &sa, NULL, 0) == 0)
        name = netaddr_format(&sa, canon, sizeof(canon));
    if ((slot = find_slot(f, name, &known)) >= 0 && known)
        return slot;
    if (slot < 0)
        return seterr(err, errlen, ENOSPC, "%s: more than %d peers",
                      f->name, FAB_MAX_PEERS);
    if (netaddr_is_tcp(name) != f->tcp)
        return seterr(err, errlen, EINVAL, "%s cannot reach %s: one is a "
                      "tcp address, the other an shm name", f->name, name);
    if (f->tcp)
        ret = insert_tcp(f, name, slot);
    else if (!bell_alive(name))
        /* Inserting a name whose endpoint does not exist would leave a
         * slot that 1.17 later reuses wrongly: check the owner first. */
        return seterr(err, errlen, EHOSTDOWN, "%s is not running", name);
    else
        ret = fi_av_insert(f->av, name, 1, &f->peers[slot], 0, NULL);
    if (ret != 1)
        return seterr(err, errlen, ret < 0 ? fi_errno(ret) : EINVAL,
                      "%s: fi_av_insert(%s): %s", f->name, name,
                      ret < 0 ? fi_strerror(-ret) : "not inserted");
    if (f->ntx && fi_av_insert(f->tx[f->ntx - 1].av, name, 1,
                               &f->tx_peers[slot], 0, NULL) != 1)
        f->tx_peers[slot] = FI_ADDR_NOTAVAIL;
    strcpy(f->peer_name[slot], name);
    f->peer_pid[slot] = 0;
    if (!f->tcp)
        fab_note_bell(f, slot);
    if (slot == f->npeers)
        f->npeers++;
    /* Tell the new peer our pid (a ring carries it); a peer gone since
     * the check shows on the first send. */
    fab_ring(f, slot);
    return slot;
}

int fab_sends_in_flight(const struct fab *f)
{
    return f->in_flight;
}

/* Map a libfabric return to the 0 / -1+errno convention. */
static int post_result(ssize_t ret)
{
    if (ret == 0)
        return 0;
    errno = ret == -FI_EAGAIN ? EAGAIN : fi_errno((int)ret);
    return -1;
}

/* A free op entry for ctx, or NULL (errno EAGAIN: too many posted). */
static struct op *op_take(struct fab *f, void *ctx, uint64_t tag, int peer,
                          int recv)
{
    struct op *op = f->free_ops;

    if (!op) {
        errno = EAGAIN;
        return NULL;
    }
    f->free_ops = op->next;
    *op = (struct op){ .ctx = ctx, .tag = tag, .peer = peer, .recv = recv,
                       .state = OP_LIVE };
    return op;
}

static void op_put(struct fab *f, struct op *op)
{
    op->state = OP_FREE;
    op->next = f->free_ops;
    f->free_ops = op;
}

int fab_cancel(struct fab *f, void *ctx)
{
    int n = 0;

    for (int i = 0; i < FAB_OPS; i++) {
        struct op *op = &f->ops[i];

        if (op->state != OP_LIVE || !op->recv || op->ctx != ctx)
            continue;
        fi_cancel(&f->ep->fid, op);
        op->state = OP_GONE;
        n++;
    }
    return n;
}

/* Open a send-only endpoint "NAME~K" in our domain and insert every live
 * peer into its address vector at the same index. */
static int open_tx(struct fab *f)
{
    struct fi_av_attr av_attr = { .type = FI_AV_TABLE,
                                  .count = FAB_MAX_PEERS };
    struct fi_cq_attr cq_attr = { .format = FI_CQ_FORMAT_TAGGED,
                                  .wait_obj = FI_WAIT_NONE };
    struct txep *t = &f->tx[f->ntx];
    char name[FAB_NAME_MAX + 16];

    snprintf(name, sizeof(name), "%s~%d", f->name, f->ntx + 1);
    if (f->ntx == MAX_TX || get_info(0, name, &t->info, NULL, 0) < 0)
        return -1;
    cq_attr.size = t->info->tx_attr->size;
    if (fi_av_open(f->domain, &av_attr, &t->av, NULL)
        || fi_cq_open(f->domain, &cq_attr, &t->cq, NULL)
        || fi_endpoint(f->domain, t->info, &t->ep, NULL)
        || fi_ep_bind(t->ep, &t->av->fid, 0)
        || fi_ep_bind(t->ep, &t->cq->fid, FI_TRANSMIT | FI_RECV)
        || fi_enable(t->ep))
        return -1;      /* closed with the rest by fab_destroy */
    f->ntx++;
    for (int i = 0; i < f->npeers; i++)
        if (!f->peer_name[i][0] || !bell_alive(f->peer_name[i])
            || fi_av_insert(t->av, f->peer_name[i], 1, &f->tx_peers[i], 0,
                            NULL) != 1)
            f->tx_peers[i] = FI_ADDR_NOTAVAIL;
    return 0;
}

/* A send to a peer that died or stopped stays at the head of shm's
 * response queue, and shm completes the sends behind it only in order:
 * nothing sent on this endpoint would complete again.  So sends move to a
 * new endpoint; those still in flight to live peers are in those peers'
 * queues and will be taken, so they are reported sent now (their buffers
 * must stay unchanged until the peer has read them: in practice, until
 * the next send to that peer completes). */
static void renew(struct fab *f)
{
    int n = 0;

    free(f->synth);
    if (!(f->synth = calloc((size_t)f->in_flight + 1, sizeof(*f->synth))))
        return;
    for (int i = 0; i < FAB_OPS && n <= f->in_flight; i++) {
        struct op *op = &f->ops[i];

        if (op->state != OP_LIVE || op->recv)
            continue;
        f->synth[n++] = (struct fab_event){ .kind = FAB_SENT,
                                            .ctx = op->ctx, .tag = op->tag };
        op->state = OP_GONE;
    }
    f->nsynth = n;
    f->in_flight = 0;
    if (open_tx(f) < 0)
        fprintf(stderr, "%s: no new endpoint for sends after a dead peer: "
                "sends may stall\n", f->name);
}

void fab_drop_peer(struct fab *f, int peer)
{
    int abandoned = 0;

    for (int i = 0; i < FAB_OPS; i++) {
        struct op *op = &f->ops[i];

        if (op->state == OP_LIVE && !op->recv && op->peer == peer) {
            op->state = OP_GONE;
            f->in_flight--;
            abandoned++;
        }
    }
    if (abandoned && !f->tcp)
        renew(f);
}

static void ring_later(struct fab *f, int peer)
{
    if (!f->is_due[peer]) {
        f->is_due[peer] = 1;
        f->due[f->ndue++] = peer;
    }
}

void fab_ring_soon(struct fab *f, int peer)
{
    if (f->holding && peer >= 0 && peer < f->npeers)
        ring_later(f, peer);
    else
        fab_ring(f, peer);
}

void fab_hold_rings(struct fab *f)
{
    f->holding = 1;
}

void fab_ring_due(struct fab *f)
{
    for (int i = 0; i < f->ndue; i++) {
        f->is_due[f->due[i]] = 0;
        /* A peer gone since its send was posted: the send fails. */
        fab_ring(f, f->due[i]);
    }
    f->ndue = 0;
}

void fab_flush_rings(struct fab *f)
{
    fab_ring_due(f);
    f->holding = 0;
}

int fab_send(struct fab *f, int peer, uint64_t tag, const void *buf,
             size_t len, void *ctx)
{
    struct op *op;
    int ret;

    if (peer < 0 || peer >= f->npeers || !f->peer_name[peer][0]) {
        errno = EINVAL;
        return -1;
    }
    if (f->ntx && f->tx_peers[peer] == FI_ADDR_NOTAVAIL) {
        errno = EHOSTDOWN;
        return -1;
    }
    if (fab_peer_stopped(f, peer)) {
        errno = EAGAIN;
        return -1;
    }
    if (!(op = op_take(f, ctx, tag, peer, 0)))
        return -1;
    ret = post_result(fi_tsend(f->ntx ? f->tx[f->ntx - 1].ep : f->ep, buf,
                               len, NULL, f->ntx ? f->tx_peers[peer]
                                                 : f->peers[peer], tag, op));
    if (ret == 0)
        f->in_flight++;
    else
        op_put(f, op);
    if (ret == 0 && f->holding) {
        ring_later(f, peer);
        return 0;
    }
    /* Ring after posting, and on EAGAIN too: the peer must poll for the
     * message to move, or before its first message can be posted. */
    if ((ret == 0 || errno == EAGAIN) && fab_ring(f, peer) < 0) {
        if (ret == 0)
            return 0;   /* posted; the failure shows in the completion */
        errno = EHOSTDOWN;
        return -1;
    }
    return ret;
}

int fab_recv(struct fab *f, int peer, uint64_t tag, void *buf, size_t len,
             void *ctx)
{
    fi_addr_t src = FI_ADDR_UNSPEC;
    struct op *op;

    if (peer >= f->npeers || peer < -1 || (peer >= 0 && !f->peer_name[peer][0])) {
        errno = EINVAL;
        return -1;
    }
    if (peer >= 0)
        src = f->peers[peer];
    if (!(op = op_take(f, ctx, tag, -1, 1)))
        return -1;
    if (post_result(fi_trecv(f->ep, buf, len, NULL, src, tag, 0, op)) == 0)
        return 0;
    op_put(f, op);
    return -1;
}

/* Fetch the failed operation behind -FI_EAVAIL into ev.  Returns 1, 0
 * for a withdrawn one (reported to nobody), or -1. */
static int poll_error(struct fab *f, struct fid_cq *cq, struct fab_event *ev,
                      char *err, size_t errlen)
{
    struct fi_cq_err_entry e = { 0 };
    ssize_t ret = fi_cq_readerr(cq, &e, 0);
    struct op *op = e.op_context;

    if (ret < 0)
        return seterr(err, errlen, fi_errno((int)ret),
                      "%s: fi_cq_readerr: %s", f->name,
                      fi_strerror((int)-ret));
    if (!op)
        return 0;
    *ev = (struct fab_event){ .kind = FAB_FAILED, .ctx = op->ctx,
                              .tag = op->tag, .recv = op->recv,
                              .err = e.err ? fi_errno(e.err) : EIO };
    if (op->state == OP_GONE) {
        op_put(f, op);
        return 0;
    }
    if (!op->recv)
        f->in_flight--;
    op_put(f, op);
    return 1;
}

/* Completions are read in small batches; more wait for the next call. */
#define POLL_BATCH 16

/* Completions of one completion queue into ev. */
static int poll_cq(struct fab *f, struct fid_cq *cq, struct fab_event *ev,
                   int max, char *err, size_t errlen)
{
    struct fi_cq_tagged_entry c[POLL_BATCH];
    ssize_t n;
    int k = 0;

    if (max > POLL_BATCH)
        max = POLL_BATCH;
    if (max <= 0)
        return 0;
    n = fi_cq_read(cq, c, max);
    if (n == -FI_EAGAIN)
        return 0;
    f->idle = 0;
    if (n == -FI_EAVAIL)
        return poll_error(f, cq, ev, err, errlen);
    if (n < 0)
        return seterr(err, errlen, fi_errno((int)n), "%s: fi_cq_read: %s",
                      f->name, fi_strerror((int)-n));
    for (ssize_t i = 0; i < n; i++) {
        struct op *op = c[i].op_context;
        int gone = op->state == OP_GONE;

        if (!gone && !op->recv)
            f->in_flight--;
        if (!gone)
            ev[k++] = (struct fab_event){
                .kind = op->recv ? FAB_RECEIVED : FAB_SENT, .ctx = op->ctx,
                .len = c[i].len, .tag = c[i].tag };
        op_put(f, op);
    }
    return k;
}

int fab_poll(struct fab *f, struct fab_event *ev, int max, char *err,
             size_t errlen)
{
    int k = 0, n;

    while (f->nsynth > 0 && k < max)
        ev[k++] = f->synth[--f->nsynth];
    if ((n = poll_cq(f, f->cq, ev + k, max - k, err, errlen)) < 0)
        return -1;
    k += n;
    if (!f->ntx)
        return k;
    if ((n = poll_cq(f, f->tx[f->ntx - 1].cq, ev + k, max - k, err,
                     errlen)) < 0)
        return -1;
    return k + n;
}

int fab_send_wait(struct fab *f, int peer, uint64_t tag, const void *buf,
                  size_t len, void *ctx, double limit_s, fab_handler_fn fn,
                  void *arg, char *err, size_t errlen)
{
    double limit = mono_now() + limit_s;
    struct fab_event ev[POLL_BATCH];

    while (fab_send(f, peer, tag, buf, len, ctx) < 0) {
        int n;

        if (errno != EAGAIN)
            return seterr(err, errlen, errno, "%s", strerror(errno));
        if (mono_now() > limit)
            return fab_peer_stopped(f, peer)
                   ? seterr(err, errlen, ETIMEDOUT, "%s is stopped",
                            f->peer_name[peer])
                   : seterr(err, errlen, ETIMEDOUT, "%s", strerror(ETIMEDOUT));
        if ((n = fab_poll(f, ev, POLL_BATCH, err, errlen)) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (fn(arg, &ev[i], err, errlen) < 0)
                return -1;
        if (n == 0)
            fab_idle(f);
    }
    return 0;
}

void *fab_buf_alloc(size_t len, char *err, size_t errlen)
{
    size_t size, lead;
    char *p, *buf;

    if (len == 0) {
        seterr(err, errlen, EINVAL, "empty buffer");
        return NULL;
    }
    /* Over-allocate by one huge page, then trim to a 2 MiB boundary. */
    size = (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    p = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        seterr(err, errlen, ENOMEM, "mmap of %zu bytes: %s", size,
               strerror(errno));
        return NULL;
    }
    buf = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    lead = (size_t)(buf - p);
    if (lead)
        munmap(p, lead);
    munmap(buf + size, HUGE_PAGE - lead);
    /* Advice only: without THP the buffer still works, just slower. */
    madvise(buf, size, MADV_HUGEPAGE);
    return buf;
}

void fab_buf_free(void *buf, size_t len)
{
    int saved = errno;

    if (buf && len)
        munmap(buf, (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    errno = saved;
}
