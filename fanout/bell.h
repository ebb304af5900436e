/* bell.h - names in the abstract Unix socket namespace, and whether
 * anyone listens there.
 *
 * Doorbells (fabric.h) and the gateway's control socket live in Linux's
 * abstract namespace: nothing on disk, gone with their process, unique on
 * the host (a second bind fails with EADDRINUSE).  This module has no
 * libfabric in it, so a program can check a daemon is alive without
 * loading libfabric (whose start-up costs ~0.3 s on Debian 12).
 */
#ifndef VEXEC_BELL_H
#define VEXEC_BELL_H

#include <sys/socket.h>
#include <sys/un.h>

/* Fill sa with the abstract name "vexec-KIND.NAME".  Returns the address
 * length to pass to bind/connect/sendto (NAME is cut to fit). */
socklen_t bell_sockaddr(const char *kind, const char *name,
                        struct sockaddr_un *sa);

/* Is a socket bound at "vexec-KIND.NAME" (of datagram or seqpacket type,
 * as type says)?  Returns 1, or 0 when no process has bound it. */
int bell_bound(const char *kind, const char *name, int type);

/* Is the fabric endpoint named name alive (its doorbell is bound)? */
int bell_alive(const char *name);

#endif
