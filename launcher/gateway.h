/* gateway.h - the front-end host's daemon: the root of every launch tree.
 *
 * `vexec` does not load libfabric (Debian's costs ~0.3 s per process
 * before the first byte moves: a PSM library constructor that calibrates
 * its clock with sleeps, and a /proc/kallsyms scan in fi_getinfo).  It
 * hands its launch to the gateway over a local Unix seqpacket socket
 * ("@vexec-gw.CLUSTER"): the LAUNCH message with the image as a sealed
 * memfd (SCM_RIGHTS), a SIGKILL for the job to send if the client goes
 * away, then SIGNAL and STDIN messages, each signed by the client
 * (auth.h) and relayed unchanged.  The gateway, a
 * long-lived process with its libfabric loaded once, is node 0's parent:
 * it sends the LAUNCH to node 0 over the fabric, waits until node 0
 * accepts it (ACCEPTED, proto.h), broadcasts the image to node 0,
 * and relays every report batch from node 0 back over the socket.  When
 * the client goes away before its job ended, the gateway sends the
 * client's SIGKILL down the tree.  One launch at a time; further clients wait in the
 * listen queue.  This is the flux model: a command talks to its local
 * broker, brokers talk over the overlay.
 *
 * Between hosts (vexec --hosts) there is no long-lived gateway: vexec
 * starts a one-shot one (vexec-gateway, client_fd set) with a tcp
 * endpoint on this host's address, hands it the same LAUNCH and memfd
 * over a socketpair, and the gateway exits once vexec has gone.
 */
#ifndef VEXEC_GATEWAY_H
#define VEXEC_GATEWAY_H

#include <stddef.h>

/* The "kind" of the gateway's socket name (bell.h): "vexec-gw.CLUSTER". */
#define GATEWAY_KIND "gw"

/* The kind of its second socket, "vexec-gwq.CLUSTER": node status queries
 * (vexec nodes), served one at a time even while a launch runs.  A client
 * sends one signed QUERY (proto.h) and reads the answer's batches: one
 * NODE record per node asked (nodequery.h), or a FAIL record for no rank
 * if the query could not be started. */
#define GATEWAY_QUERY_KIND "gwq"

/* The cluster's gateway lends each client it accepts the memfd the image
 * is to be dumped into: its first message, this text with the fd attached
 * (SCM_RIGHTS), or without one if it lends none (another user; no memory).
 * A client given one writes the image into it from offset 0 and sends the
 * LAUNCH without an fd; else it sends a sealed memfd of its own.  The
 * gateway keeps the memfd and its pages from launch to launch: a fresh
 * memfd cost vexec ~2 ms per launch allocating and freeing 4.9 MB of
 * pages.  The one-shot gateway lends none. */
#define GATEWAY_LEND "vexec-gw-lend"

struct gateway_opts {
    const char *cluster;    /* cluster name: socket "vexec-gw.CLUSTER" */
    const char *endpoint;   /* its fabric endpoint name */
    int ready_fd;           /* >= 0: write one byte here once serving (one
                               shot: the endpoint's name and a newline) */
    int client_fd;          /* >= 0: one shot: serve this connected
                               seqpacket client only (no cluster socket),
                               and return when it leaves */
    int query_fd;           /* >= 0: one shot for `vexec nodes --hosts`:
                               answer the QUERY of this connected seqpacket
                               client, and return when it leaves */
};

/* Serve launches until SIGTERM or SIGINT (one shot: until the client
 * left and its job was cancelled, or the query client left).  Returns 0
 * then, or -1 if the gateway could not start (err says why). */
int gateway_run(const struct gateway_opts *o, char *err, size_t errlen);

#endif
