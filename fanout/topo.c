/* topo.c - broadcast tree topologies (see topo.h for the shapes).
 *
 * Each shape only says who the parent of every node is; one builder then
 * derives depths, subtree sizes and the children lists (in sending order)
 * from the parent array, so every shape gets the same checks and layout.
 */
#include "fanout/topo.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct topo {
    int n;
    int max_depth;
    char name[32];
    int *parent;     /* parent[0] == -1 */
    int *depth;
    int *subtree;
    int *child_off;  /* children of i: child[child_off[i] .. child_off[i+1]) */
    int *child;
};

__attribute__((format(printf, 3, 4)))
static void errprintf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void shape_kary(int *parent, int n, int k)
{
    for (int i = 1; i < n; i++)
        parent[i] = (i - 1) / k;
}

static void shape_flat(int *parent, int n)
{
    for (int i = 1; i < n; i++)
        parent[i] = 0;
}

static void shape_binomial(int *parent, int n)
{
    for (int i = 1; i < n; i++)
        parent[i] = i & (i - 1);
}

/* Played round by round as topo.h describes it.  Nodes are served in number
 * order and the senders of a round are exactly the nodes served before it,
 * in that same order, so the j-th sender of a round serves the j-th new
 * node. */
static void shape_greedy(int *parent, int n)
{
    int next = 1;

    while (next < n) {
        int senders = next;

        for (int j = 0; j < senders && next < n; j++)
            parent[next++] = j;
    }
}

/* Depth of the heap-ordered k-ary tree of n nodes: the fewest levels below
 * the root that hold n - 1 nodes. */
static int kary_depth(int n, int k)
{
    long long level = 1, total = 1;
    int depth = 0;

    while (total < n) {
        level *= k;
        total += level;
        depth++;
    }
    return depth;
}

int topo_auto_width(int n, int chunks)
{
    long long best_cost = -1;
    int best = 1;

    if (n < 1 || n > TOPO_MAX_NODES || chunks < 1) {
        errno = EINVAL;
        return -1;
    }
    for (int k = 1; k < n; k++) {
        long long cost = (long long)(kary_depth(n, k) + chunks - 1) * k;

        if (best_cost < 0 || cost < best_cost) {
            best_cost = cost;
            best = k;
        }
    }
    return best;
}

/* Parses the K of "kary:K": decimal digits only, 1..TOPO_MAX_WIDTH.
 * Returns K, or -1. */
static int parse_width(const char *s)
{
    long k = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        k = k * 10 + (*s - '0');
        if (k > TOPO_MAX_WIDTH)
            return -1;
    }
    return k >= 1 ? (int)k : -1;
}

/* Fills t->parent for spec and sets t->name.  Returns 0, or -1 with errno
 * EINVAL and a message. */
static int build_shape(struct topo *t, const char *spec, char *err,
                       size_t errlen)
{
    int k;

    t->parent[0] = -1;
    if (strncmp(spec, "kary:", 5) == 0) {
        if ((k = parse_width(spec + 5)) < 0)
            goto bad_width;
        shape_kary(t->parent, t->n, k);
        snprintf(t->name, sizeof(t->name), "kary:%d", k);
    } else if (strcmp(spec, "auto") == 0) {
        k = topo_auto_width(t->n, TOPO_AUTO_CHUNKS);
        shape_kary(t->parent, t->n, k);
        snprintf(t->name, sizeof(t->name), "kary:%d", k);
    } else if (strcmp(spec, "chain") == 0) {
        shape_kary(t->parent, t->n, 1);
        strcpy(t->name, "chain");
    } else if (strcmp(spec, "flat") == 0) {
        shape_flat(t->parent, t->n);
        strcpy(t->name, "flat");
    } else if (strcmp(spec, "binomial") == 0) {
        shape_binomial(t->parent, t->n);
        strcpy(t->name, "binomial");
    } else if (strcmp(spec, "greedy") == 0) {
        shape_greedy(t->parent, t->n);
        strcpy(t->name, "greedy");
    } else {
        errprintf(err, errlen, "invalid topology '%s': unknown name (want "
                  "kary:K, chain, flat, binomial, greedy or auto)", spec);
        errno = EINVAL;
        return -1;
    }
    return 0;
bad_width:
    errprintf(err, errlen, "invalid topology '%s': width must be 1..%d",
              spec, TOPO_MAX_WIDTH);
    errno = EINVAL;
    return -1;
}

/* Depths top-down and subtree sizes bottom-up: both rely on every parent
 * having a lower number than its children. */
static void compute_depths(struct topo *t)
{
    t->depth[0] = 0;
    t->max_depth = 0;
    for (int i = 1; i < t->n; i++) {
        t->depth[i] = t->depth[t->parent[i]] + 1;
        if (t->depth[i] > t->max_depth)
            t->max_depth = t->depth[i];
    }
    for (int i = 0; i < t->n; i++)
        t->subtree[i] = 1;
    for (int i = t->n - 1; i > 0; i--)
        t->subtree[t->parent[i]] += t->subtree[i];
}

/* Does child a go before child b of the same parent?  Largest subtree
 * first, then lower number. */
static int sends_before(const struct topo *t, int a, int b)
{
    if (t->subtree[a] != t->subtree[b])
        return t->subtree[a] > t->subtree[b];
    return a < b;
}

/* Lays the children lists out in one array, each in sending order.  Each
 * node builds the whole tree at every launch, so this is linear for the
 * usual shapes: nodes go to their parent's list in number order, and a
 * list is then insertion-sorted, which costs nothing on one already in
 * order (kary, flat) and little on a short one.  Returns 0. */
static int compute_children(struct topo *t)
{
    memset(t->child_off, 0, sizeof(int) * ((size_t)t->n + 1));
    for (int i = 1; i < t->n; i++)
        t->child_off[t->parent[i] + 1]++;
    for (int i = 0; i < t->n; i++)
        t->child_off[i + 1] += t->child_off[i];
    /* child_off[p] runs ahead as p's list fills, then is moved back. */
    for (int i = 1; i < t->n; i++)
        t->child[t->child_off[t->parent[i]]++] = i;
    for (int p = t->n; p > 0; p--)
        t->child_off[p] = t->child_off[p - 1];
    t->child_off[0] = 0;
    for (int p = 0; p < t->n; p++) {
        int *c = t->child + t->child_off[p];
        int len = t->child_off[p + 1] - t->child_off[p];

        for (int i = 1; i < len; i++) {
            int x = c[i], j = i;

            for (; j > 0 && sends_before(t, x, c[j - 1]); j--)
                c[j] = c[j - 1];
            c[j] = x;
        }
    }
    return 0;
}

static int alloc_arrays(struct topo *t)
{
    size_t n = (size_t)t->n;

    t->parent = malloc(sizeof(int) * n);
    t->depth = malloc(sizeof(int) * n);
    t->subtree = malloc(sizeof(int) * n);
    t->child_off = malloc(sizeof(int) * (n + 1));
    t->child = malloc(sizeof(int) * n);
    if (!t->parent || !t->depth || !t->subtree || !t->child_off || !t->child)
        return -1;
    return 0;
}

struct topo *topo_create(const char *spec, int n, char *err, size_t errlen)
{
    struct topo *t;

    if (!spec || n < 1 || n > TOPO_MAX_NODES) {
        errprintf(err, errlen, "invalid topology size %d for '%s': need "
                  "1..%d nodes", n, spec ? spec : "(null)", TOPO_MAX_NODES);
        errno = EINVAL;
        return NULL;
    }
    /* Allocation failures leave errno ENOMEM; build_shape sets EINVAL. */
    if (!(t = calloc(1, sizeof(*t))))
        goto error;
    t->n = n;
    if (alloc_arrays(t) < 0 || build_shape(t, spec, err, errlen) < 0)
        goto error;
    compute_depths(t);
    if (compute_children(t) < 0)
        goto error;
    return t;
error:
    if (errno == ENOMEM)
        errprintf(err, errlen, "topology '%s' for %d nodes: %s", spec, n,
                  strerror(errno));
    topo_destroy(t);
    return NULL;
}

void topo_destroy(struct topo *t)
{
    int saved = errno;

    if (t) {
        free(t->parent);
        free(t->depth);
        free(t->subtree);
        free(t->child_off);
        free(t->child);
        free(t);
    }
    errno = saved;
}

int topo_size(const struct topo *t)
{
    return t->n;
}

const char *topo_name(const struct topo *t)
{
    return t->name;
}

static int bad_node(const struct topo *t, int i)
{
    if (i >= 0 && i < t->n)
        return 0;
    errno = EINVAL;
    return 1;
}

int topo_parent(const struct topo *t, int i)
{
    return bad_node(t, i) ? -1 : t->parent[i];
}

int topo_children(const struct topo *t, int i, const int **children)
{
    if (bad_node(t, i))
        return -1;
    *children = t->child + t->child_off[i];
    return t->child_off[i + 1] - t->child_off[i];
}

int topo_depth(const struct topo *t, int i)
{
    return bad_node(t, i) ? -1 : t->depth[i];
}

int topo_subtree_size(const struct topo *t, int i)
{
    return bad_node(t, i) ? -1 : t->subtree[i];
}

int topo_max_depth(const struct topo *t)
{
    return t->max_depth;
}
