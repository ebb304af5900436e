/* gwspawn.h - start and reap the one-shot tcp gateway (vexec-gateway,
 * gateway.h) for a launch between hosts.
 *
 * vexec does not link libfabric, so for --hosts it runs vexec-gateway
 * (found beside its own binary) in a session of its own (a terminal's ^C
 * is for vexec, which forwards it as a SIGNAL), connected to vexec by a
 * seqpacket socketpair that speaks the cluster gateway's protocol.  The
 * gateway's stderr, where libfabric also warns, goes to
 * $VEXEC_GATEWAY_LOG if set, else /dev/null: whatever concerns the user
 * reaches vexec as a FAIL record or through the ready pipe.
 *
 * Errors: -1 with errno set and a one-line message in err.
 */
#ifndef VEXEC_GWSPAWN_H
#define VEXEC_GWSPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* The gateway's program, looked up in the directory of vexec's own. */
#define GWSPAWN_PROG "vexec-gateway"

/* Start the gateway with a tcp endpoint at ip (a port the kernel picks)
 * for a launch, or (query) for the QUERY of `vexec nodes`, and wait until
 * it serves.  Returns 0 with *sock our end of its
 * socket, *pid its pid and origin its endpoint name ("IP:PORT"); -1 if it
 * could not start (it has been reaped then). */
int gwspawn_start(const char *ip, int query, int *sock, pid_t *pid,
                  char *origin, size_t size, char *err, size_t errlen);

/* After closing our end of its socket: wait at most limit_s seconds for
 * the gateway to exit (it cancels what is left of the job first), then
 * kill it.  Accepts pid <= 0. */
void gwspawn_reap(pid_t pid, double limit_s);

#endif
