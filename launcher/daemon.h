/* daemon.h - vexecd, the node daemon, as a function.
 *
 * A node daemon owns one fabric endpoint and sleeps in epoll on its
 * doorbell, a signalfd and its rank's pipes; it uses no CPU while no
 * message and no output arrives.  It acts only on requests signed with
 * the cluster key (auth.h), whoever relays them.  A LAUNCH from its parent (the front end
 * for node 0) makes it: forward the LAUNCH to its children; take part in
 * the image broadcast, receiving into a buffer of its own that it keeps
 * from job to job; check the image; start its rank from it (a forked
 * child that becomes the restorer, vmad_spawn_image; rank substituted);
 * send the rank's output, its exit status and its subtree's reports up,
 * merged; pass SIGNALs down and to its rank.  A child that dies or stops
 * mid-job is reported and its children adopted; a parent that does is
 * replaced by the adopter that comes (adopt.c).  SIGTERM or SIGINT to the
 * daemon kills a running rank and ends the daemon.
 *
 * vexecd (vexecd.c) and vexec-cluster (which forks its daemons after
 * loading libfabric once) both call daemon_run.
 */
#ifndef VEXEC_DAEMON_H
#define VEXEC_DAEMON_H

#include <stddef.h>

struct daemon_opts {
    const char *endpoint;   /* fabric endpoint name, unique on the host,
                               or "IP:PORT" for tcp (fabric.h) */
    const char *node;       /* node name for messages */
    const char *key_file;   /* the cluster key (auth.h) */
    int ready_fd;           /* >= 0: write one byte here once serving */
};

/* Serve until SIGTERM or SIGINT.  Returns 0 then, or -1 if the daemon
 * could not start (err says why). */
int daemon_run(const struct daemon_opts *o, char *err, size_t errlen);

#endif
