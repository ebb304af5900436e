/* frontend.h - one vexec launch, from the cluster record to the exit
 * status (the command line is vexec.c). */
#ifndef VEXEC_FRONTEND_H
#define VEXEC_FRONTEND_H

#include <stddef.h>

struct fe_opts {
    int nranks;             /* 0: as many as nodes */
    const char *nodes;      /* hostlist of node names, or NULL: n0.. */
    const char *hosts;      /* --hosts: hostlist of HOST[:N] (hosts.h) */
    const char *hostfile;   /* -f: a file of such lines */
    const char *hosts_from; /* the batch job's variable they came from
                               (cli_batch_hosts), or NULL */
    int port;               /* the first daemon's port on each host */
    const char *tree;       /* topology spec */
    size_t chunk;           /* 0: BCAST_CHUNK_DEFAULT */
    int label;              /* -l: prefix lines with "[RANK] " */
    int timing;             /* --timing */
    int keep_going;         /* --keep-going: dead nodes alone do not fail */
    double timeout;         /* --timeout seconds, or 0: no time limit */
    const char *key_file;   /* --key, or NULL: $VEXEC_KEY or the cluster's */
    char **argv;            /* PROG ARGS... */
};

/* vexec's exit status when the time limit (--timeout) ended the job, as
 * timeout(1)'s. */
#define VEXEC_TIMED_OUT 124

/* Launch, wait for every rank, print the summary.  Returns vexec's exit
 * status (see vexec.c). */
int fe_run(const struct fe_opts *o);

#endif
