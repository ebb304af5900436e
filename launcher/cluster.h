/* cluster.h - the record of an emulated cluster on this host.
 *
 * vexec-cluster up writes it, vexec reads it, vexec-cluster down removes
 * it.  It lives in a directory: the one given, else $VEXEC_CLUSTER, else
 * ${XDG_RUNTIME_DIR:-/tmp}/vexec-UID.  Its files:
 *   name   the cluster's name, the prefix of every endpoint ("vx4242")
 *   pids   one line per node in rank order: "NODE PID" ("n17 4321")
 *   gateway  "PID ENDPOINT": the gateway's pid and endpoint name
 *            (launcher/gateway.h; "NAME.gw", "NAME.gw1" after a first
 *            restart by `up`, and so on; just "PID" means "NAME.gw")
 *   key    the cluster key (launcher/auth.h), or a link to it
 * A node's endpoint (and /dev/shm file) is NAME.NODE ("vx4242.n17").
 *
 * Errors: -1 with errno set (ENOENT: no cluster recorded there) and a
 * one-line message in err.
 */
#ifndef VEXEC_CLUSTER_H
#define VEXEC_CLUSTER_H

#include <stddef.h>
#include <sys/types.h>

#define CLUSTER_NAME_MAX 32

/* A gateway's endpoint name: NAME.gw and a restart count. */
#define CLUSTER_GW_ENDPOINT_MAX (CLUSTER_NAME_MAX + 16)

/* The key file's name in the cluster directory. */
#define CLUSTER_KEY_FILE "key"

struct cluster {
    char dir[4096];
    char name[CLUSTER_NAME_MAX + 1];
    int n;
    char **nodes;           /* node names, "n0" ... */
    pid_t *pids;
    pid_t gateway;          /* the gateway's pid (file "gateway"), or 0 */
    char gw_endpoint[CLUSTER_GW_ENDPOINT_MAX + 1];  /* its endpoint name */
};

/* The cluster directory: dir if not NULL, else the environment's or the
 * default.  Returns a static string. */
const char *cluster_dir(const char *dir);

/* Read the record in dir into c.  Returns 0, or -1 (ENOENT: none). */
int cluster_load(const char *dir, struct cluster *c, char *err,
                 size_t errlen);

/* Write c's record into c->dir (created if missing, mode 0700), replacing
 * any old one atomically.  Returns 0 or -1. */
int cluster_save(const struct cluster *c, char *err, size_t errlen);

/* Remove the record files (the key too).  Returns 0 or -1. */
int cluster_remove(const struct cluster *c, char *err, size_t errlen);

/* Write node i's endpoint name into buf.  Returns buf. */
char *cluster_endpoint(const struct cluster *c, int i, char *buf,
                       size_t size);

/* The rank of node name in c, or -1. */
int cluster_find(const struct cluster *c, const char *node);

/* Is node i's daemon alive (its process exists and its endpoint answers)? */
int cluster_node_up(const struct cluster *c, int i);

/* Is the cluster's gateway alive (its socket bound)? */
int cluster_gateway_up(const struct cluster *c);

/* Free what cluster_load or the caller allocated.  Accepts an empty c. */
void cluster_free(struct cluster *c);

#endif
