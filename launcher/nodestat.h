/* nodestat.h - what a node says about itself when asked (vexec nodes).
 *
 * The answer to a QUERY (proto.h) is one NODE record per node, its rank
 * the node's index in the query's list, its value the node's state, its
 * data this module's record:
 *
 *   load u32 (1-minute load average of the node's host x 100) |
 *   phase u32 (of the last launch: enum nodestat_phase) |
 *   rss u64 (the daemon's resident memory, KiB) |
 *   job u64 (the last launch's job id; 0: none since the daemon started) |
 *   rank i32 (its rank there) | status i32 (its wait status, if exited) |
 *   image u64 (us from the LAUNCH's arrival to the image checked; 0: not
 *              reached) |
 *   run u64 (us the rank ran: to its exit, or until now) |
 *   ago u64 (us since the LAUNCH arrived) |
 *   reason (the rest: why a node is down, as its parent saw it; no NUL)
 *
 * Durations, not clock times: the nodes' clocks need not agree.  Host
 * byte order, like the rest of the protocol.  The decoder checks the
 * length, the ranges and the reason text before it trusts a byte
 * (fuzzed by launcher/fuzz/fuzz_proto.c).
 *
 * Errors: -1 with errno EPROTO (malformed) or EMSGSIZE, and a one-line
 * message in err (may be NULL).
 */
#ifndef VEXEC_NODESTAT_H
#define VEXEC_NODESTAT_H

#include <stddef.h>
#include <stdint.h>

/* The record's value. */
enum nodestat_state {
    NODESTAT_UP = 1,    /* its daemon answered, no job there */
    NODESTAT_BUSY,      /* its daemon answered during a job */
    NODESTAT_DOWN,      /* no daemon, or no answer in time */
};

/* How far the node's last launch got. */
enum nodestat_phase {
    NODESTAT_NONE,      /* no launch since the daemon started */
    NODESTAT_RECEIVING, /* the image is on its way */
    NODESTAT_RUNNING,   /* the rank runs */
    NODESTAT_EXITED,    /* the rank exited: status is its wait status */
    NODESTAT_FAILED,    /* the rank could not start */
};

/* Longest reason a down record carries. */
#define NODESTAT_REASON_MAX 200

/* A node's status; reason points into the record it was decoded from. */
struct nodestat {
    uint32_t state;
    uint32_t phase;
    uint32_t load100;
    uint64_t rss_kib;
    uint64_t job;
    int32_t rank, status;
    uint64_t image_us, run_us, ago_us;
    const char *reason;
    uint32_t reason_len;
};

/* What a daemon remembers of its last launch (CLOCK_MONOTONIC seconds). */
struct nodestat_last {
    uint64_t job;
    int rank;
    uint32_t phase;
    int status;
    double t_launch, t_image, t_start, t_end;
};

/* A LAUNCH for job, rank, arrived at now. */
void nodestat_last_begin(struct nodestat_last *l, uint64_t job, int rank,
                         double now);

/* The daemon reported an up record of type (proto.h) with value for its
 * own rank at now: IMAGE, STARTED, FAIL and EXIT move the phase on. */
void nodestat_last_note(struct nodestat_last *l, uint32_t type,
                        int32_t value, double now);

/* Fill s with this daemon's status at now: l, busy (a job is here), the
 * host's load average and our resident memory (from /proc; 0 where
 * unreadable). */
void nodestat_self(const struct nodestat_last *l, int busy, double now,
                   struct nodestat *s);

/* A down record for a node: why (cut at NODESTAT_REASON_MAX). */
void nodestat_down(struct nodestat *s, const char *why);

/* Encode s into buf (size bytes).  Returns its length, or -1 (EMSGSIZE). */
int nodestat_encode(const struct nodestat *s, void *buf, size_t size,
                    char *err, size_t errlen);

/* Decode the data of a NODE record whose value is state.  Returns 0, or
 * -1 (EPROTO). */
int nodestat_decode(const void *data, size_t len, int32_t state,
                    struct nodestat *s, char *err, size_t errlen);

/* Longest encoded record. */
#define NODESTAT_REC_MAX (64 + NODESTAT_REASON_MAX)

#endif
