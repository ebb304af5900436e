/* nodes.h - `vexec nodes`: which nodes are up, asked through the tree.
 *
 *   vexec nodes [--tree SHAPE] [--key FILE] [--wait SECONDS] [LIST]
 *
 * Sends one signed QUERY for the nodes of LIST (a Slurm hostlist of the
 * emulated cluster's nodes; default all of them) to the cluster's
 * gateway, which passes it down a tree of those nodes (nodequery.h), and
 * prints one line per node from the answer, then "N nodes: U up, D down".
 * The command line is parsed here; vexec.c only dispatches to it.
 *
 * Exit status: 0 every node listed is up, 1 some node is down or vexec
 * could not ask (no cluster, no gateway, no answer), 2 bad usage (a bad
 * LIST, an unknown node, a bad tree).
 */
#ifndef VEXEC_NODES_H
#define VEXEC_NODES_H

/* Run `vexec nodes` with argv[0] "nodes".  Returns the exit status. */
int nodes_main(int argc, char **argv);

#endif
