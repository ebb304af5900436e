/* test_topo.c - unit test of the tree topologies (fanout/topo.h).
 *
 * Every shape at every size must be a tree rooted at 0 whose parent and
 * children views agree; then each shape's own promises (depths, heap order,
 * contiguous binomial subtrees, the greedy rounds, the auto cost model) and
 * the refusal of bad specs are checked.
 */
#include "common/tap.h"
#include "fanout/topo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const shapes[] = {
    "kary:2", "kary:3", "kary:16", "chain", "flat", "binomial", "greedy",
    "auto",
};
static const int sizes[] = { 1, 2, 3, 7, 64, 255, 1023, 1024 };

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Every node but 0 has one parent, numbered lower, in range. */
static int check_parents(const struct topo *t)
{
    int n = topo_size(t);

    if (topo_parent(t, 0) != -1)
        return 0;
    for (int i = 1; i < n; i++) {
        int p = topo_parent(t, i);

        if (p < 0 || p >= i)
            return 0;
    }
    return 1;
}

/* Each child listed under p names p as its parent, and every non-root node
 * is listed exactly once over all the lists. */
static int check_children(const struct topo *t)
{
    int n = topo_size(t), listed = 0, good = 1;
    int *seen = calloc((size_t)n, sizeof(int));

    for (int p = 0; p < n; p++) {
        const int *c;
        int nc = topo_children(t, p, &c);

        for (int j = 0; j < nc; j++) {
            if (c[j] <= 0 || c[j] >= n || topo_parent(t, c[j]) != p)
                good = 0;
            else
                seen[c[j]]++;
        }
        listed += nc;
    }
    for (int i = 1; i < n; i++)
        good &= seen[i] == 1;
    free(seen);
    return good && listed == n - 1;
}

/* Walks down from 0 through the children lists: every node is reached once,
 * at depth parent + 1, and subtree sizes add up. */
static int walk(const struct topo *t, int i, int depth, int *visits,
                int *size)
{
    const int *c;
    int nc = topo_children(t, i, &c), good = 1;

    *size = 1;
    if (visits[i]++ || topo_depth(t, i) != depth)
        return 0;
    for (int j = 0; j < nc && good; j++) {
        int sub;

        good = walk(t, c[j], depth + 1, visits, &sub);
        *size += sub;
    }
    return good && topo_subtree_size(t, i) == *size;
}

static int check_reachable(const struct topo *t)
{
    int n = topo_size(t), size, good;
    int *visits = calloc((size_t)n, sizeof(int));

    good = walk(t, 0, 0, visits, &size) && size == n;
    for (int i = 0; i < n; i++)
        good &= visits[i] == 1;
    free(visits);
    return good;
}

/* max_depth is the deepest node; children come largest subtree first. */
static int check_depth_and_order(const struct topo *t)
{
    int n = topo_size(t), deepest = 0;

    for (int i = 0; i < n; i++) {
        const int *c;
        int nc = topo_children(t, i, &c);

        if (topo_depth(t, i) > deepest)
            deepest = topo_depth(t, i);
        for (int j = 1; j < nc; j++)
            if (topo_subtree_size(t, c[j - 1]) < topo_subtree_size(t, c[j]))
                return 0;
    }
    return deepest == topo_max_depth(t);
}

static void test_every_tree(void)
{
    char err[256];

    for (int s = 0; s < NELEM(shapes); s++) {
        for (int z = 0; z < NELEM(sizes); z++) {
            int n = sizes[z];
            struct topo *t = topo_create(shapes[s], n, err, sizeof(err));

            if (!ok(t && topo_size(t) == n, "%s n=%d: created", shapes[s], n)) {
                diag("%s", err);
                continue;
            }
            ok(check_parents(t), "%s n=%d: one lower parent per non-root",
               shapes[s], n);
            ok(check_children(t), "%s n=%d: parent and children agree",
               shapes[s], n);
            ok(check_reachable(t), "%s n=%d: all reached once from 0, "
               "depths and subtree sizes agree", shapes[s], n);
            ok(check_depth_and_order(t), "%s n=%d: max depth, send order",
               shapes[s], n);
            topo_destroy(t);
        }
    }
}

static int max_depth_of(const char *spec, int n)
{
    struct topo *t = topo_create(spec, n, NULL, 0);
    int d = t ? topo_max_depth(t) : -1;

    topo_destroy(t);
    return d;
}

static void test_depths(void)
{
    for (int z = 0; z < NELEM(sizes); z++) {
        int n = sizes[z];

        ok(max_depth_of("chain", n) == n - 1, "chain n=%d: depth %d", n, n - 1);
        ok(max_depth_of("kary:1", n) == n - 1, "kary:1 n=%d: depth %d", n,
           n - 1);
        ok(max_depth_of("flat", n) == (n > 1), "flat n=%d: depth %d", n,
           n > 1);
    }
    ok(max_depth_of("kary:2", 1023) == 9, "kary:2 n=1023: depth 9");
    ok(max_depth_of("kary:2", 1024) == 10, "kary:2 n=1024: depth 10");
    ok(max_depth_of("kary:16", 4096) == 3, "kary:16 n=4096: depth 3");
    ok(max_depth_of("binomial", 1024) == 10, "binomial n=1024: depth 10");
    ok(max_depth_of("binomial", 1023) == 9, "binomial n=1023: depth 9");
    ok(max_depth_of("greedy", 1024) == 10, "greedy n=1024: depth 10");
    ok(max_depth_of("kary:65536", 1024) == 1, "kary:65536 n=1024: flat");
}

static int popcount(int i)
{
    return __builtin_popcount((unsigned)i);
}

static void test_kary_heap_order(void)
{
    struct topo *t = topo_create("kary:3", 13, NULL, 0);
    const int *c;
    int nc = topo_children(t, 1, &c);

    ok(nc == 3 && c[0] == 4 && c[1] == 5 && c[2] == 6,
       "kary:3: children of 1 are 4 5 6");
    ok(topo_children(t, 4, &c) == 0, "kary:3 n=13: node 4 is a leaf");
    ok(topo_parent(t, 12) == 3, "kary:3: parent of 12 is 3");
    topo_destroy(t);
}

/* Binomial: parent clears the lowest bit, subtrees are contiguous ranges,
 * and the biggest subtree is sent first. */
static void test_binomial(void)
{
    struct topo *t = topo_create("binomial", 1000, NULL, 0);
    const int *c;
    int good = 1;

    for (int i = 1; i < 1000; i++) {
        int low = i & -i, end = i + low < 1000 ? i + low : 1000;

        good &= topo_parent(t, i) == (i & (i - 1));
        good &= topo_subtree_size(t, i) == end - i;
        good &= topo_depth(t, i) == popcount(i);
    }
    ok(good, "binomial n=1000: parent clears lowest bit, contiguous "
       "subtrees, depth = popcount");
    topo_destroy(t);
    t = topo_create("binomial", 8, NULL, 0);
    ok(topo_children(t, 0, &c) == 3 && c[0] == 4 && c[1] == 2 && c[2] == 1,
       "binomial n=8: root sends to 4, 2, 1");
    topo_destroy(t);
}

/* Greedy: round r doubles the holders, so the parent clears the highest
 * bit and the root serves 1, 2, 4, ... in that order. */
static void test_greedy(void)
{
    struct topo *t = topo_create("greedy", 1000, NULL, 0);
    const int *c;
    int good = 1;

    for (int i = 1; i < 1000; i++) {
        int high = 1 << (31 - __builtin_clz((unsigned)i));

        good &= topo_parent(t, i) == i - high;
        good &= topo_depth(t, i) == popcount(i);
    }
    ok(good, "greedy n=1000: parent clears highest bit, depth = popcount");
    topo_destroy(t);
    t = topo_create("greedy", 8, NULL, 0);
    ok(topo_children(t, 0, &c) == 3 && c[0] == 1 && c[1] == 2 && c[2] == 4,
       "greedy n=8: root sends to 1, 2, 4");
    ok(topo_children(t, 1, &c) == 2 && c[0] == 3 && c[1] == 5,
       "greedy n=8: node 1 sends to 3, 5");
    topo_destroy(t);
}

static void test_auto(void)
{
    struct topo *t = topo_create("auto", 1024, NULL, 0);

    ok(topo_auto_width(1, 4) == 1 && topo_auto_width(2, 4) == 1,
       "auto: width 1 for one or two nodes");
    ok(topo_auto_width(7, 4) == 1, "auto: a chain for 7 nodes, 4 chunks "
       "(9 chunk-times against 10 for kary:2)");
    ok(topo_auto_width(16, 4) == 2, "auto: kary:2 for 16 nodes, 4 chunks "
       "(14 against 18 for a chain or kary:3)");
    ok(topo_auto_width(1024, 4) == 2, "auto: kary:2 for 1024 nodes");
    ok(topo_auto_width(1023, 1) == 2, "auto: kary:2 and kary:3 tie at 18 "
       "for 1023 nodes, 1 chunk; the narrower wins");
    ok(topo_auto_width(64, 1000) == 1, "auto: many chunks favour a chain");
    ok(t && strcmp(topo_name(t), "kary:2") == 0,
       "auto n=1024: named kary:2, got %s", t ? topo_name(t) : "NULL");
    errno = 0;
    ok(topo_auto_width(0, 4) == -1 && errno == EINVAL,
       "auto: n=0 refused with EINVAL");
    ok(topo_auto_width(8, 0) == -1, "auto: 0 chunks refused");
    topo_destroy(t);
}

static void test_names(void)
{
    static const char *const spec[] = { "kary:08", "chain", "flat",
                                        "binomial", "greedy" };
    static const char *const want[] = { "kary:8", "chain", "flat",
                                        "binomial", "greedy" };

    for (int i = 0; i < NELEM(spec); i++) {
        struct topo *t = topo_create(spec[i], 10, NULL, 0);

        ok(t && strcmp(topo_name(t), want[i]) == 0, "'%s' is named '%s'",
           spec[i], want[i]);
        topo_destroy(t);
    }
}

static void expect_refused(const char *spec, int n, const char *msg)
{
    char err[256] = "";
    struct topo *t;

    errno = 0;
    t = topo_create(spec, n, err, sizeof(err));
    ok(!t && errno == EINVAL && strcmp(err, msg) == 0,
       "'%s' n=%d refused: %s", spec ? spec : "(null)", n, msg);
    if (strcmp(err, msg) != 0)
        diag("got: %s", err);
    topo_destroy(t);
}

static void test_bad_specs(void)
{
    static const char *const bad_width[] = {
        "kary:0", "kary:x", "kary:", "kary:-1", "kary:+2", "kary:2x",
        "kary: 2", "kary:65537", "kary:99999999999999999999",
    };
    static const char *const unknown[] = {
        "", "foo", "KARY:2", "kary", "binomial ", "chain:2", "auto:4",
    };
    char msg[256];

    for (int i = 0; i < NELEM(bad_width); i++) {
        snprintf(msg, sizeof(msg), "invalid topology '%s': width must be "
                 "1..65536", bad_width[i]);
        expect_refused(bad_width[i], 8, msg);
    }
    for (int i = 0; i < NELEM(unknown); i++) {
        snprintf(msg, sizeof(msg), "invalid topology '%s': unknown name "
                 "(want kary:K, chain, flat, binomial, greedy or auto)",
                 unknown[i]);
        expect_refused(unknown[i], 8, msg);
    }
    expect_refused("binomial", 0, "invalid topology size 0 for 'binomial': "
                   "need 1..65536 nodes");
    expect_refused("kary:2", -5, "invalid topology size -5 for 'kary:2': "
                   "need 1..65536 nodes");
    expect_refused("flat", 65537, "invalid topology size 65537 for 'flat': "
                   "need 1..65536 nodes");
    expect_refused(NULL, 4, "invalid topology size 4 for '(null)': need "
                   "1..65536 nodes");
    ok(topo_create("kary:x", 8, NULL, 0) == NULL, "NULL err buffer is fine");
}

static void test_queries(void)
{
    struct topo *t = topo_create("flat", 65536, NULL, 0);
    const int *c;

    ok(t && topo_children(t, 0, &c) == 65535 && c[65534] == 65535,
       "flat n=65536: root has 65535 children in order");
    errno = 0;
    ok(topo_parent(t, 65536) == -1 && errno == EINVAL,
       "parent of a node out of range: EINVAL");
    errno = 0;
    ok(topo_children(t, -1, &c) == -1 && topo_depth(t, -1) == -1 &&
       topo_subtree_size(t, 70000) == -1 && errno == EINVAL,
       "children, depth, subtree of nodes out of range: EINVAL");
    errno = ERANGE;
    topo_destroy(t);
    topo_destroy(NULL);
    ok(errno == ERANGE, "topo_destroy keeps errno and accepts NULL");
}

int main(void)
{
    test_every_tree();
    test_depths();
    test_kary_heap_order();
    test_binomial();
    test_greedy();
    test_auto();
    test_names();
    test_bad_specs();
    test_queries();
    return done_testing();
}
