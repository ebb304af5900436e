/* topo.h - broadcast tree topologies, chosen by name.
 *
 * A topology arranges nodes 0..n-1 (numbered in the order the user gave
 * them) into a tree rooted at node 0: the front end sends to node 0, and
 * every node forwards to its children.  This module is pure arithmetic: it
 * knows nothing of transports, images or ranks, so the daemon, the unit test
 * and the tree simulator all use the same trees.
 *
 * Specs (the name given to topo_create):
 *
 *   kary:K    heap order: the children of i are K*i+1 ... K*i+K (those < n).
 *             K is 1..65536.
 *   chain     kary:1: 0 -> 1 -> 2 -> ... -> n-1.
 *   flat      node 0 sends to every other node.
 *   binomial  the binomial tree with contiguous subtrees: the parent of i is
 *             i with its lowest set bit cleared, and the subtree of i > 0 is
 *             the range i .. i+lowbit(i)-1.  Neighbours in the host list
 *             (often neighbours on the network) share subtrees.
 *   greedy    BProc's "ready senders" spread, simulated in rounds: in each
 *             round every node that already has the data, in the order it
 *             got it (node 0 first), sends to one new node, the lowest
 *             numbered one not yet served; a node served in round r sends
 *             from round r+1 on.  Round 0: 0->1; round 1: 0->2, 1->3;
 *             round 2: 0->4, 1->5, 2->6, 3->7; ...  This makes the parent
 *             of i be i with its highest set bit cleared: the same depths
 *             as binomial (popcount(i)), but subtrees are strided across
 *             the host list instead of contiguous.
 *   auto      kary:K with K = topo_auto_width(n, TOPO_AUTO_CHUNKS); see the
 *             cost model there.
 *
 * Whatever the shape, a parent always has a lower number than its children,
 * and topo_children lists the children in the order a parent should send to
 * them: largest subtree first, ties broken by lower number.
 *
 * Errors: -1 or NULL with errno set (EINVAL, ENOMEM), plus a one-line
 * message in the caller's err buffer (may be NULL).
 */
#ifndef VEXEC_TOPO_H
#define VEXEC_TOPO_H

#include <stddef.h>

/* Largest tree: the largest host list the launcher accepts (hostlist.h);
 * every per-node array is sized n, so this also bounds memory. */
#define TOPO_MAX_NODES 65536

/* Largest k-ary width; wider than any tree we can build, so no valid width
 * is refused for being too large. */
#define TOPO_MAX_WIDTH 65536

/* Chunks per image assumed by "auto": a typical 4 MiB image cut into the
 * 1 MiB chunks that were fastest in our libfabric shm experiments. */
#define TOPO_AUTO_CHUNKS 4

struct topo;

/* Build the tree named by spec for n nodes.  Returns the tree, or NULL with
 * errno EINVAL (bad spec or n outside 1..TOPO_MAX_NODES) or ENOMEM. */
struct topo *topo_create(const char *spec, int n, char *err, size_t errlen);

/* Free the tree.  Accepts NULL and keeps errno. */
void topo_destroy(struct topo *t);

/* Returns the number of nodes. */
int topo_size(const struct topo *t);

/* Returns the resolved spec: "kary:8", "chain", "binomial", ...; for "auto"
 * the k-ary width that was chosen ("kary:2"), so logs say what ran. */
const char *topo_name(const struct topo *t);

/* The queries below take a node 0..size-1; for any other node they return
 * -1 with errno EINVAL. */

/* Returns the parent of node i, or -1 for the root (node 0). */
int topo_parent(const struct topo *t, int i);

/* Points *children at node i's children in sending order (valid until
 * topo_destroy) and returns how many there are (0 for a leaf). */
int topo_children(const struct topo *t, int i, const int **children);

/* Returns the number of hops from the root to node i (0 for the root). */
int topo_depth(const struct topo *t, int i);

/* Returns the number of nodes in the subtree rooted at i, i included. */
int topo_subtree_size(const struct topo *t, int i);

/* Returns the largest depth of any node: the hops the last node waits. */
int topo_max_depth(const struct topo *t);

/* The "auto" cost model.  A node forwards each chunk to its K children one
 * after another, so in a pipelined k-ary broadcast each hop is a stage that
 * takes K chunk-times, and the last node has its last chunk after
 *
 *     (depth(K, n) + chunks - 1) * K   chunk-times,
 *
 * depth(K, n) being the depth of the heap-ordered K-ary tree of n nodes.
 * Returns the K in 1..n-1 (1 when n <= 2) that minimises this, the smallest
 * on a tie: fewer children means fewer endpoints per node.  The model
 * ignores per-hop latency and wake-up costs, which favour wider trees, and
 * contention on shared links, which favours narrower ones.  Returns -1 with
 * errno EINVAL if n is outside 1..TOPO_MAX_NODES or chunks < 1. */
int topo_auto_width(int n, int chunks);

#endif
