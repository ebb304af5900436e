/* proto.h - the messages vexec and vexecd exchange over the fabric.
 *
 * Down the tree (front end to node 0, each node to its children), tagged
 * PROTO_TAG_DOWN: one header naming the job and the message type, then a
 * body, then the originator's credential (launcher/auth.h), which proto
 * leaves room for but does not read.  LAUNCH carries the job's plan
 * (nodes, tree, image length and checksum, chunk); the image itself
 * follows as a broadcast (fanout/bcast.h).  SIGNAL asks
 * every node to signal its rank; STDIN carries bytes for rank 0 (an empty
 * body is end of file).  QUERY (vexec nodes) asks every node it names
 * for its status, down a tree of those nodes (launcher/nodequery.h).
 * ADOPT comes from a daemon, not vexec: the
 * nearest live ancestor of a dead node tells each of the dead node's
 * children that it is their parent now; it carries vexec's signed LAUNCH
 * unchanged, the adopter's rank and the new broadcast epoch, and is
 * signed by the adopter (launcher/adopt.h).
 *
 * Up the tree (each node to its parent, node 0 to the front end), tagged
 * PROTO_TAG_UP: a batch of records, each naming a rank: STARTED, OUT
 * (stdout or stderr bytes, whole lines unless a line is longer than a
 * record), IMAGE (the node holds the checked image), EXIT (its wait
 * status), FAIL (the node could not run the rank: a one-line reason; for
 * rank UINT32_MAX, the whole launch was refused), ACCEPTED (node 0 took
 * the LAUNCH: the root may start the broadcast), NODE (the answer to a
 * QUERY for the rank-th node it names: launcher/nodestat.h), DEAD (the
 * node of that rank died or stopped: value PROTO_DEAD_*, data the reason;
 * sent by its adopter), ADOPTED (the node of that rank took its adopter's
 * ADOPT: value the first image chunk it still needs, -1 none), ALIVE
 * (sent over tcp every second by a node to its parent, which drops it
 * instead of merging it: a parent that cannot see its child's process
 * hears from it this way while its rank runs).  A node
 * merges its children's batches with its own records into its next batch, so the front end receives a few batches
 * per subtree instead of one message per rank and event.
 *
 * Every decoder checks lengths, counts and string termination before it
 * trusts a byte: a malformed message is refused with a one-line reason,
 * never read past its end (fuzzed by launcher/fuzz/fuzz_proto.c).  Both
 * ends run on the same architecture; fields are in host byte order.
 *
 * Errors: -1 with errno EPROTO (malformed) or EMSGSIZE (does not fit), and
 * a one-line message in err (may be NULL).
 */
#ifndef VEXEC_PROTO_H
#define VEXEC_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Tags of the two streams; the broadcast uses 0xbc in the top byte. */
#define PROTO_TAG_DOWN (UINT64_C(0xd0) << 56)
#define PROTO_TAG_UP (UINT64_C(0xa0) << 56)

/* Largest message in either direction: a LAUNCH names its nodes as one
 * hostlist expression, which for the emulated cluster's numbered names is
 * a few dozen bytes; up batches are cut at this size.  64 KiB keeps each
 * posted receive buffer small. */
#define PROTO_MSG_MAX (64u << 10)

/* Room a down message keeps below PROTO_MSG_MAX for its credential
 * (AUTH_CRED_LEN, launcher/auth.h): the encoders refuse anything larger,
 * so a signed message still fits every posted receive. */
#define PROTO_TRAILER_MAX 64u

/* A LAUNCH's image lead is below one huge page (vmad_huge_lead). */
#define PROTO_LEAD_MAX (2u << 20)

/* Longest piece of output one OUT record carries: longer lines travel in
 * several records and the front end joins them. */
#define PROTO_OUT_MAX (32u << 10)

enum proto_down_type { PROTO_LAUNCH = 1, PROTO_SIGNAL, PROTO_STDIN,
                       PROTO_QUERY, PROTO_ADOPT };

enum proto_rec_type {
    PROTO_STARTED = 1,
    PROTO_OUT,          /* value: 1 stdout, 2 stderr */
    PROTO_EXIT,         /* value: wait status */
    PROTO_FAIL,         /* value: errno; data: the reason */
    PROTO_IMAGE,        /* the node holds the checked image */
    PROTO_ACCEPTED,     /* node 0 accepted the LAUNCH */
    PROTO_NODE,         /* value: state; data: a nodestat record */
    PROTO_DEAD,         /* value: PROTO_DEAD_*; data: the reason */
    PROTO_ADOPTED,      /* value: first chunk needed, -1 none */
    PROTO_ALIVE,        /* the sender lives: for its parent, not passed on */
};

/* Why a node is reported dead. */
enum proto_dead_why { PROTO_DEAD_DIED = 1, PROTO_DEAD_STOPPED,
                      PROTO_DEAD_SILENT };

struct proto_launch {
    uint32_t nnodes;
    uint32_t image_lead;    /* where the image begins in a node's 2 MiB-
                             * aligned buffer (vmad_huge_lead) */
    uint64_t image_len;
    uint64_t image_sum;     /* the checksum in the image's header */
    uint64_t chunk;
    const char *tree;       /* topology spec, e.g. "kary:8" */
    const char *origin;     /* the front end's endpoint name */
    const char *nodes;      /* hostlist of endpoint names, rank order */
};

/* A QUERY: the nodes to ask, and the tree the question travels down. */
struct proto_query {
    uint32_t nnodes;
    const char *tree;       /* topology spec */
    const char *origin;     /* the front end's endpoint name */
    const char *nodes;      /* hostlist of endpoint names, tree order */
};

/* A decoded down message; pointers point into the message buffer. */
struct proto_down {
    uint16_t type;
    uint64_t job;                   /* for a QUERY: the query's id */
    struct proto_launch launch;     /* PROTO_LAUNCH */
    struct proto_query query;       /* PROTO_QUERY */
    int32_t signo;                  /* PROTO_SIGNAL */
    const void *data;               /* PROTO_STDIN; PROTO_ADOPT: the */
    size_t len;                     /* signed LAUNCH, credential included */
    uint32_t epoch;                 /* PROTO_ADOPT */
    uint32_t adopter;               /* PROTO_ADOPT: the adopter's rank */
};

/* The broadcast stream (fanout/bcast.h) of a job's image towards nodes
 * adopted at epoch (0: the tree as launched). */
uint32_t proto_stream(uint64_t job, uint32_t epoch);

/* Encode an ADOPT of job carrying the len-byte signed LAUNCH.  Returns its
 * length, or -1 (EMSGSIZE). */
int proto_encode_adopt(void *buf, size_t size, uint64_t job, uint32_t epoch,
                       uint32_t adopter, const void *launch, size_t len,
                       char *err, size_t errlen);

/* Encode a LAUNCH into buf.  Returns its length, or -1 (EMSGSIZE). */
int proto_encode_launch(void *buf, size_t size, uint64_t job,
                        const struct proto_launch *l, char *err,
                        size_t errlen);

/* Encode a SIGNAL or a STDIN piece (len <= PROTO_STDIN_MAX); same
 * returns. */
int proto_encode_signal(void *buf, size_t size, uint64_t job, int signo,
                        char *err, size_t errlen);
int proto_encode_stdin(void *buf, size_t size, uint64_t job,
                       const void *data, size_t len, char *err,
                       size_t errlen);

/* Encode a QUERY with id; same returns. */
int proto_encode_query(void *buf, size_t size, uint64_t id,
                       const struct proto_query *q, char *err,
                       size_t errlen);

/* Longest STDIN piece: what fits with the header and the credential. */
#define PROTO_STDIN_MAX (PROTO_MSG_MAX - PROTO_TRAILER_MAX - 24u)

/* Decode a down message of len bytes (without its credential).  Returns 0, or -1 (EPROTO). */
int proto_decode_down(const void *msg, size_t len, struct proto_down *d,
                      char *err, size_t errlen);

/* One up record. */
struct proto_rec {
    uint32_t type;
    uint32_t rank;
    int32_t value;
    const void *data;
    uint32_t len;
};

/* A growing batch of up records being built by a node. */
struct proto_batch {
    char *buf;
    size_t len, size;
};

/* Append a record to b (which grows).  Returns 0, or -1 (ENOMEM). */
int proto_batch_add(struct proto_batch *b, uint32_t type, uint32_t rank,
                    int32_t value, const void *data, uint32_t len);

/* Append the records of a received up message (already checked by
 * proto_each_rec) to b, but ALIVE.  Returns 0, or -1 (ENOMEM). */
int proto_batch_merge(struct proto_batch *b, const void *msg, size_t len);

/* Move the first whole records of b, at most PROTO_MSG_MAX bytes with the
 * header, into out as one up message for job.  Returns its length (0
 * when b is empty). */
size_t proto_batch_take(struct proto_batch *b, uint64_t job, void *out);

/* Append len raw bytes to b (a byte queue, not records).  Returns 0, or
 * -1 (ENOMEM). */
int proto_batch_append(struct proto_batch *b, const void *data, size_t len);

/* Put a message from proto_batch_take back in front of b's records (its
 * send could not be posted).  Returns 0, or -1 (ENOMEM). */
int proto_batch_unget(struct proto_batch *b, const void *msg, size_t len);

/* Free b's buffer.  Accepts an empty batch. */
void proto_batch_free(struct proto_batch *b);

/* Check an up message of len bytes and call fn for each record, in order,
 * until fn returns non-zero.  *job receives the message's job.  Returns
 * 0, fn's non-zero return, or -1 (EPROTO) for a malformed message (before
 * any record is passed on). */
int proto_each_rec(const void *msg, size_t len, uint64_t *job,
                   int (*fn)(void *arg, const struct proto_rec *r),
                   void *arg, char *err, size_t errlen);

#endif
