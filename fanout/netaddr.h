/* netaddr.h - tcp endpoint names: "IP:PORT", an IPv4 address in dotted
 * form and a decimal port ("10.77.0.2:7400").
 *
 * A fabric endpoint whose name contains ':' is a tcp;ofi_rxm endpoint
 * bound to that address (fabric.h); any other name is an shm endpoint.
 * The name is also how a daemon finds its rank in a LAUNCH's node list,
 * so both ends must spell an address the same way: netaddr_format's
 * canonical form.  No libfabric here: vexec, which must not load it,
 * uses these too.
 *
 * Errors: -1 with errno EINVAL and a one-line message in err (may be
 * NULL).
 */
#ifndef VEXEC_NETADDR_H
#define VEXEC_NETADDR_H

#include <netinet/in.h>
#include <stddef.h>

/* Longest canonical name, "255.255.255.255:65535", with its NUL. */
#define NETADDR_STRLEN 22

/* Is name a tcp endpoint name (it has a ':')? */
int netaddr_is_tcp(const char *name);

/* Parse "A.B.C.D:PORT" (port 0..65535; 0 asks the kernel for one when
 * binding) into sa.  Returns 0 or -1. */
int netaddr_parse(const char *name, struct sockaddr_in *sa, char *err,
                  size_t errlen);

/* Write sa's canonical name into buf (at least NETADDR_STRLEN bytes).
 * Returns buf. */
char *netaddr_format(const struct sockaddr_in *sa, char *buf, size_t size);

/* Liveness probes: a daemon is up if its address accepts a connection.
 * Start a non-blocking connect to name.  Returns the socket, or -1 with
 * errno set when the connect failed at once. */
int netaddr_connect(const char *name);

/* How a probe's connect stands, without waiting: 0 (accepted),
 * EINPROGRESS (no answer yet), or the errno it failed with
 * (ECONNREFUSED: nothing listens there). */
int netaddr_connect_result(int fd);

/* Close a probe's socket with a reset, not a FIN: libfabric 1.17's tcp
 * provider, once it has a connection up, keeps an accepted socket whose
 * peer closed normally before its handshake in CLOSE-WAIT and spins on it
 * (measured: a daemon at 90% CPU while idle); a reset makes it drop the
 * socket.  Ignores fd < 0. */
void netaddr_close_reset(int fd);

#endif
