/* fabric_priv.h - what fabric.c and fabric_wait.c share: the endpoint
 * itself and its operation entries.  Not for other modules (fabric.h). */
#ifndef VEXEC_FABRIC_PRIV_H
#define VEXEC_FABRIC_PRIV_H

#include "fanout/fabric.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>

enum op_state { OP_FREE, OP_LIVE, OP_GONE };

/* One posted operation; its address is the libfabric context. */
struct op {
    void *ctx;          /* the caller's */
    uint64_t tag;
    int peer;           /* sends: the peer; receives: -1 */
    int recv;
    enum op_state state;    /* OP_GONE: withdrawn, report nothing */
    struct op *next;        /* free list */
};

/* Endpoints sends can move to (see fab_drop_peer), at most. */
#define MAX_TX 16

/* A send-only endpoint, opened when a dead peer blocked the last one. */
struct txep {
    struct fi_info *info;
    struct fid_av *av;
    struct fid_cq *cq;
    struct fid_ep *ep;
};

/* A peer's /proc/PID/stat, kept open while watched (fab_peer_state),
 * and its last reading. */
struct peer_stat {
    int pid;            /* 0: none open */
    int fd;             /* -1 once that process is gone */
    char state;         /* read at `at` (mono_now), or at < 0: none */
    double at;
};

struct fab {
    char name[FAB_NAME_MAX + 1];
    int tcp;            /* tcp;ofi_rxm, else shm */
    int bell;           /* shm: our doorbell, a bound datagram socket */
    int waitfd;         /* tcp: the completion queue's wait fd */
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av *av;
    struct fid_cq *cq;
    struct fid_ep *ep;
    fi_addr_t peers[FAB_MAX_PEERS];
    char peer_name[FAB_MAX_PEERS][FAB_NAME_MAX + 1];  /* "" = free slot */
    int peer_pid[FAB_MAX_PEERS];  /* from its last ring, 0 unknown */
    struct peer_stat stat[FAB_MAX_PEERS];  /* fab_peer_state */
    struct sockaddr_un peer_bell[FAB_MAX_PEERS];  /* shm: where to ring */
    socklen_t peer_bell_len[FAB_MAX_PEERS];
    int npeers;         /* slots ever used: 0..npeers-1 */
    struct op *ops;     /* FAB_OPS entries */
    struct op *free_ops;
    struct txep tx[MAX_TX];     /* sends go on tx[ntx - 1] (ep if none) */
    int ntx;
    fi_addr_t tx_peers[FAB_MAX_PEERS];  /* in tx[ntx - 1]'s AV */
    struct fab_event *synth;    /* completions made up by a renewal */
    int nsynth;
    int in_flight;      /* sends posted, not completed */
    int idle;           /* empty polls in a row, for fab_idle */
    int holding;        /* fab_hold_rings: rings wait for the flush */
    int ndue;           /* peers to ring at the flush, in due[] */
    int due[FAB_MAX_PEERS];
    unsigned char is_due[FAB_MAX_PEERS];
};

/* Bind f's doorbell (shm).  Returns 0, or -1 with err set. */
int fab_open_bell(struct fab *f, char *err, size_t errlen);

/* Is peer's process stopped (SIGSTOP, a debugger)?  shm only; 0 when
 * its pid is unknown. */
int fab_peer_stopped(struct fab *f, int peer);

/* Ring the peers whose rings are held (fab_hold_rings) now; go on
 * holding.  Before any wait: a held ring must not wait for our sleep. */
void fab_ring_due(struct fab *f);

/* Note where peer slot's doorbell is (shm), for fab_ring. */
void fab_note_bell(struct fab *f, int slot);

#endif
