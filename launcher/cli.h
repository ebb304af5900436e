/* cli.h - what vexec's commands (a launch, `vexec nodes`) share: the
 * one-line error, the check of a tree for a node list, and the key a
 * request is signed with.  CLI code: these print to stderr and return
 * the exit status to use; libraries never call them.
 */
#ifndef VEXEC_CLI_H
#define VEXEC_CLI_H

#include "launcher/auth.h"
#include "launcher/hosts.h"

#include <sys/types.h>

/* Print "vexec: " and the message on stderr as one line.  Returns code. */
__attribute__((format(printf, 2, 3)))
int cli_fail(int code, const char *fmt, ...);

/* Check that SPEC is a tree for n nodes that one endpoint can serve (no
 * node with more than FAB_MAX_PEERS - 1 children); *depth (may be NULL)
 * gets its depth.  Returns 0, or 2 after one line naming the problem. */
int cli_check_tree(const char *spec, int n, int *depth);

/* The key to sign with: key_file, else $VEXEC_KEY, else the cluster's
 * DIR/key (cluster_dir NULL: no such fallback, a missing key is a usage
 * error naming need, exit 2).  Returns 0 with *auth set, or the exit
 * status after one line (1: the key file is unusable). */
int cli_load_key(const char *key_file, const char *cluster_dir,
                 const char *need, struct auth **auth);

/* A tcp port number from 1 to 65535 in s, or -1. */
int cli_parse_port(const char *s);

/* Connect to the emulated cluster's gateway socket of the given kind
 * (GATEWAY_KIND for launches, GATEWAY_QUERY_KIND for vexec nodes).
 * Returns 0 with *sock set, or 1 after one line naming the cluster and
 * the `vexec-cluster up` for its number of nodes that restarts it. */
int cli_connect_gateway(const char *kind, const char *cluster_name,
                        const char *cluster_dir, int nodes, int *sock);

/* Inside a batch job, the job's nodes, when a command names none (named
 * is 0: no -w, --hosts, -f or LIST) and VEXEC_CLUSTER names no emulated
 * cluster, as mpiexec takes them: Slurm's SLURM_JOB_NODELIST as --hosts,
 * else PBS's PBS_NODEFILE as -f.  Sets *hosts or *hostfile and returns
 * the variable's name; else returns NULL. */
const char *cli_batch_hosts(int named, const char **hosts,
                            const char **hostfile);

/* Add the daemons of list (--hosts) and of file (-f; either may be
 * NULL) to h, at ports from port, and refuse a daemon named twice.  from:
 * the variable they came from (cli_batch_hosts), or NULL.  Returns 0, or
 * 2 after one line starting with what ("" or "nodes"). */
int cli_add_hosts(struct hosts *h, const char *list, const char *file,
                  int port, const char *from, const char *what);

/* Start a one-shot tcp gateway (gwspawn.h) on this host's address toward
 * h's first daemon, for a launch or (query) for `vexec nodes`.  Returns 0
 * with *sock, *pid and origin set, or 1 after one line. */
int cli_start_gateway(const struct hosts *h, int query, int *sock,
                      pid_t *pid, char *origin, size_t size);

#endif
