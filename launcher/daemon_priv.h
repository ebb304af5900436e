/* daemon_priv.h - the node daemon's state, shared by its parts.
 *
 * daemon.c runs the event loop and a job's messages; rank.c starts the
 * rank and moves its stdio; adopt.c watches the tree's neighbours and
 * repairs the tree when one dies (a dead child's children are adopted,
 * a dead parent's adopter is followed).  Not an interface for anything
 * outside vexecd.
 */
#ifndef VEXEC_DAEMON_PRIV_H
#define VEXEC_DAEMON_PRIV_H

#include "fanout/bcast.h"
#include "fanout/fabric.h"
#include "fanout/topo.h"
#include "launcher/auth.h"
#include "launcher/daemon.h"
#include "launcher/hostlist.h"
#include "launcher/nodequery.h"
#include "launcher/nodestat.h"
#include "launcher/proto.h"
#include "vmadump/vmadump.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

/* Up receives kept posted: a child has at most one batch in flight, and
 * more wait in shm's unexpected queue until a receive is free. */
#define UP_RECVS 8

/* Signals in flight down the tree at once (each needs its own buffer). */
#define SIG_SLOTS 8

/* A signed SIGNAL message: header, signal number, credential. */
#define SIG_MSG_MAX 128

/* Image buffers up to this size are kept from job to job (at most this
 * much idle memory per node); larger ones are freed when the job ends. */
#define IMAGE_KEEP_MAX (16UL << 20)

/* Our rank's stdout or stderr, read into whole lines. */
struct stream {
    int fd;                     /* -1 once at end of file */
    int id;                     /* 1 stdout, 2 stderr */
    size_t len;
    char buf[PROTO_OUT_MAX];
};

enum kid_state { KID_LIVE, KID_ADOPTING, KID_DEAD };

/* A child in the tree as it is now: one of topo's, or an adopted node. */
struct kid {
    int rank;
    int peer;                   /* fab peer */
    enum kid_state state;
    uint32_t epoch;             /* the broadcast stream it listens on */
    double since;               /* KID_ADOPTING: when the ADOPT was made */
    double stopped;             /* first seen stopped, 0 if not */
    int adopt_sent;             /* KID_ADOPTING: the ADOPT is posted */
    double sent_at;             /* when it was */
    double heard;               /* its last ALIVE (tcp), or when added */
    char *adopt;                /* the ADOPT message, kept for the job */
    size_t adopt_len;
    int sig_due;                /* 1 + the j->sig slot it still lacks */
    int probe;                  /* tcp: a connect to its address, or -1 */
    double probe_since;         /* when that connect was started */
};

struct job {
    uint64_t id;
    int rank, n;
    struct topo *t;
    struct hostlist *nodes;
    int parent;                 /* fab peer; the front end for rank 0 */
    int parent_rank;            /* -1 for rank 0 */
    double parent_lost;         /* when the parent was found dead, or 0 */
    double parent_stopped;      /* first seen stopped, or 0 */
    uint32_t epoch;             /* the stream our image comes on */
    int adoptions;              /* ADOPTs we made (epochs of ours) */
    struct kid *kid;            /* children now, dead ones included */
    int nkid, kid_cap;
    struct bcast *bc;           /* the image broadcast, for the whole job */
    int image_done;             /* the image was checked (rank started) */
    int subtree;                /* ranks in our subtree, ours included */
    int exits;                  /* ranks of the subtree reported exited */
    unsigned char *exited;      /* per rank of the job: exit seen here */
    int *status;                /* per rank: that wait status */
    int own_done;               /* our rank's EXIT is in the batch */
    int orphan;                 /* given up: report nothing, kill rank */
    pid_t pid;                  /* our rank, 0 before it starts */
    int rank_exited, rank_status;
    int pending_signal;         /* arrived before the rank started */
    int killed;                 /* a SIGKILL came for the job */
    int told_to_end;            /* SIGINT, SIGTERM, SIGHUP or SIGKILL came */
    int swept;                  /* rank_end_leftovers has run */
    struct stream out, errs;
    int in_fd;                  /* rank 0's stdin, -1 otherwise */
    struct proto_batch in;      /* stdin bytes not yet written */
    int in_eof;
    size_t image_len;
    uint64_t image_sum;         /* the checksum the LAUNCH was signed with */
    struct vmad_sum sum;        /* of the image bytes in so far */
    char *launch;               /* the LAUNCH message, forwarded as is */
    size_t launch_len;
    struct proto_batch batch;   /* up records not yet sent */
    char sig[SIG_SLOTS][SIG_MSG_MAX];
    size_t sig_len[SIG_SLOTS];
    int sig_no[SIG_SLOTS];
    int next_sig;
    int end_signo;              /* the last of told_to_end's signals */
    int sigs_due;               /* some kid has sig_due set */
    double next_check;          /* adopt_tick's next look at neighbours */
    double next_alive;          /* when to tell a tcp parent we live */
    int up_probe;               /* over tcp: a probe of our parent (node
                                 * 0's is the gateway), or -1 */
    double up_probe_since;      /* when it was started */
    double up_heard;            /* when the parent last accepted one */
    double next_up_probe;       /* rank > 0: when to probe the parent */
    struct nodestat_last *last; /* the daemon's record of its launches */
};

struct daemon {
    const struct daemon_opts *o;
    struct auth *auth;                  /* the cluster key, our nonce cache */
    struct fab *f;
    int ep, sigfd;
    int stop;
    struct job *job;
    struct job *done;                   /* the last job that ended here */
    char down[PROTO_MSG_MAX];           /* the posted down receive */
    char (*up)[PROTO_MSG_MAX];          /* UP_RECVS posted up receives */
    char sendbuf[PROTO_MSG_MAX];        /* the up batch in flight */
    /* Each buffer above has had all its pages touched (daemon.c). */
    unsigned char down_full, send_full, up_full[UP_RECVS];
    int sending;
    void *image_buf;                    /* the image buffer, kept */
    size_t image_buf_size;
    size_t image_buf_head;              /* its first bytes in small pages */
    void *image;                        /* this job's image in it, */
    size_t image_lead;                  /* that far into it */
    struct nodeq *query;                /* a QUERY being answered */
    struct nodeq *query_old;            /* the last, its sends in flight */
    struct nodestat_last last;          /* our last launch, for queries */
    char *held;                         /* a LAUNCH waiting for job to end */
    size_t held_len;
    double held_until;                  /* then it is refused */
};

/* ---- daemon.c ---- */

/* One line on stderr (the cluster's log), prefixed with the node. */
void daemon_log(struct daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Has j nothing left to do here but see its last report's send complete? */
int job_reported(const struct job *j);

/* Add a record to the job's up batch (unless the job is given up). */
void job_rec(struct job *j, uint32_t type, int rank, int32_t value,
             const void *data, size_t len);

/* Note rank's exit with status (once per rank).  Returns 1 if new. */
int job_note_exit(struct job *j, int rank, int status);

/* Our own rank cannot run (errnum, why): FAIL and EXIT for it. */
void job_fail_own(struct job *j, int errnum, const char *why);

/* The ranks of i's subtree cannot run: FAIL and EXIT for each. */
void job_fail_subtree(struct job *j, int i, const char *why);

/* Give the job up here and end it below: our rank and, through a signed
 * SIGKILL passed down, every rank under us. */
void daemon_kill_job(struct daemon *d);

/* Child k was adopted after a signal that ends the job came: send it that
 * signal, signed by us (vexec's message may be stale by now, and may have
 * reached k before its parent died). */
void daemon_signal_adopted(struct daemon *d, struct kid *k);

/* Post the signals some children still lack (sig_due). */
void daemon_pass_due_signals(struct daemon *d);

/* Start the job of a verified, admitted LAUNCH (msg, len bytes, m its
 * decoding), with parent_rank as its parent (-2: the tree's).  Returns 0,
 * or -1 if it was refused (logged). */
int daemon_start_job(struct daemon *d, const struct proto_down *m,
                     const void *msg, size_t len, int parent_rank);

/* ---- daemon_wait.c ---- */

/* How long epoll may sleep (ts filled, or NULL: until woken): not at all
 * while a broadcast moves data (fab_idle has waited already, unless
 * moved), a tick while busy, FAB_IDLE_QUIET_NS at most while only the
 * children's completions are awaited, until adopt_tick's next look while
 * a job runs or a query's next deadline, else until woken. */
struct timespec *daemon_wait_time(struct daemon *d, int moved,
                                  struct timespec *ts);

/* ---- rank.c ---- */

/* Read what the rank's pipe s has and add its whole lines to the batch. */
void rank_read_stream(struct daemon *d, struct stream *s);

/* Our rank has exited and its pipes are drained: end what it left
 * running (rank_end_leftovers), then report its status. */
void rank_report_exit(struct daemon *d);

/* The job ends here, or was told to, and its rank (if one started) has
 * exited: once, SIGKILL what the rank left running, everything below us
 * but its zombie (sweep_descendants), the rest of its process group (the
 * zombie still holds the group's id) and of our cgroup (sweep_leftovers),
 * log how many, then reap the rank. */
void rank_end_leftovers(struct daemon *d);

/* Write pending stdin bytes to rank 0; close its stdin at end of file. */
void rank_write_stdin(struct daemon *d);

/* Start our rank from the len-byte image in d->image.  Returns 0, or -1
 * with err set. */
int rank_spawn(struct daemon *d, size_t len, char *err, size_t errlen);

/* Watch fd in the daemon's epoll set.  Returns 0 or -1. */
int rank_watch(struct daemon *d, int fd, uint32_t events);

/* ---- image_in.c ---- */

/* Where a len-byte image goes, lead bytes into the 2 MiB-aligned buffer
 * kept from job to job (vmad_huge_lead): d->image, or NULL. */
void *image_buffer(struct daemon *d, size_t lead, size_t len, char *err,
                   size_t errlen);

/* Free the kept image buffer. */
void image_buffer_drop(struct daemon *d);

/* Start taking part in the job's image broadcast, into buf (NULL: there
 * is none, err says why: our rank fails). */
void image_begin_broadcast(struct daemon *d, void *buf, size_t chunk,
                           char *err, size_t errlen);

/* Move the broadcast on; start our rank once the image is in and our
 * children have read it. */
void image_drive_broadcast(struct daemon *d);

/* Our part of the broadcast cannot go on (why): our rank fails. */
void image_broadcast_failed(struct daemon *d, const char *why);

/* Is a broadcast still moving data (poll the fabric closely)? */
int image_broadcasting(const struct daemon *d);

/* ---- adopt.c ---- */

/* The job ends here: let go of what watching its neighbours holds. */
void adopt_end(struct job *j);

/* Add a live child (rank, fab peer) to the job.  Returns 0 or -1. */
int adopt_add_kid(struct job *j, int rank, int peer);

/* Child rank cannot be reached or died (why: PROTO_DEAD_*, text): report
 * it dead and adopt its children. */
void adopt_dead(struct daemon *d, int rank, int why, const char *text);

/* Look at our neighbours when it is time (every ADOPT_CHECK_S): a child
 * that died or stopped is reported and its children adopted; a parent
 * that did is given up until an adopter comes (or ORPHAN_WAIT_S passes).
 * Also posts ADOPTs the provider could not take yet. */
void adopt_tick(struct daemon *d);

/* An ADOPT whose own credential verified (m: its decoding): check the
 * LAUNCH it carries and follow the new parent (for a job that ended here,
 * send its exits again). */
void adopt_on_request(struct daemon *d, const struct proto_down *m);

/* An ADOPTED record from a child we adopted. */
void adopt_on_adopted(struct daemon *d, const struct proto_rec *r);

/* An ALIVE record from a child. */
void adopt_on_alive(struct daemon *d, const struct proto_rec *r);

/* Must the loop wake up for adopt_tick while nothing else happens?
 * Returns the seconds until then, or -1 for never. */
double adopt_next(struct daemon *d);

#endif
