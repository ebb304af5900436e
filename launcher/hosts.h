/* hosts.h - the daemons of several hosts, as vexec --hosts and -f name
 * them, and plain-socket checks that they are reachable.
 *
 * A host item is "HOST[:N]" (Hydra's syntax): N daemons on HOST (default
 * 1), listening on consecutive ports from a base port (--port; default
 * HOSTS_PORT_DEFAULT): HOST:N means the tcp endpoints IP:BASE ...
 * IP:BASE+N-1, where IP is HOST resolved with getaddrinfo (IPv4).  A list
 * is a Slurm hostlist of such items ("vx[1-4]:2", "10.77.0.[2-5]"); a host
 * file has one list per line (usually one item), with blank lines and
 * '#' comments ignored, and may name a host on several lines (Hydra's
 * slots, PBS_NODEFILE's line per core): the k-th daemon it lists for a
 * host is at BASE+k-1.  Ranks go to the daemons in the order listed:
 * all of the first item's, then the next item's.
 *
 * No libfabric here (vexec must not load it): reachability is a TCP
 * connect to each daemon's port, which its tcp;ofi_rxm listener accepts
 * and drops.
 *
 * Errors: -1 with errno set and a one-line message in err.
 */
#ifndef VEXEC_HOSTS_H
#define VEXEC_HOSTS_H

#include <stddef.h>

/* The first daemon's port on every host unless --port says otherwise:
 * unassigned by IANA, above the ephemeral-port floor of the BSDs. */
#define HOSTS_PORT_DEFAULT 7400

/* Most daemons one item may ask for: more than any host has cores, and
 * small enough that "host:7400" (a port written where a count goes) is
 * refused instead of meaning 7400 daemons. */
#define HOSTS_PER_HOST_MAX 256

struct hosts {
    int n;                  /* daemons */
    char **endpoint;        /* "IP:PORT", canonical (netaddr.h) */
    char **label;           /* "HOST:PORT" as the user wrote HOST */
};

/* Add the daemons of list (a hostlist of HOST[:N] items) to h, ports
 * from base.  Returns 0 or -1 (EINVAL: bad list; ENOENT: a host name
 * that does not resolve; ENOMEM); h is unchanged on failure. */
int hosts_add_list(struct hosts *h, const char *list, int base, char *err,
                   size_t errlen);

/* Add the daemons of every line of the host file path, numbered per
 * host over the whole file (above).  Same returns, and what opening or
 * reading the file failed with; the message names the line, or the host
 * whose daemons would pass port 65535. */
int hosts_add_file(struct hosts *h, const char *path, int base, char *err,
                   size_t errlen);

/* Refuse a list that names one daemon twice (it could not tell which
 * rank it is).  Returns 0 or -1 (EINVAL). */
int hosts_check_unique(const struct hosts *h, char *err, size_t errlen);

/* Connect to the first n daemons at once, at most timeout_s seconds.
 * Returns 0 when every one accepted, else -1 with errno ECONNREFUSED,
 * ETIMEDOUT, EHOSTUNREACH, ... and err naming the first that did not. */
int hosts_probe(const struct hosts *h, int n, double timeout_s, char *err,
                size_t errlen);

/* The address of this host that the kernel would use to reach endpoint
 * ("IP:PORT"), as dotted IPv4 into ip (INET_ADDRSTRLEN bytes).  Sends
 * nothing.  Returns 0 or -1 (ENETUNREACH, ...). */
int hosts_local_address(const char *endpoint, char *ip, size_t size,
                        char *err, size_t errlen);

/* Resolve "HOST:PORT" (HOST a name or IPv4 address) into the canonical
 * endpoint name.  Returns 0 or -1 (EINVAL, ENOENT). */
int hosts_resolve(const char *host_port, char *name, size_t size, char *err,
                  size_t errlen);

/* Free h's lists.  Accepts an empty h. */
void hosts_free(struct hosts *h);

#endif
