/* test_hostlist.c - unit test of Slurm hostlist expansion and compression
 * (launcher/hostlist.h), against the forms Slurm documents
 * ("tux[0-5,12,20-25]", "node1,node[2-5,12]", SLURM_JOB_NODELIST's
 * "node[001-128,200]"), the limits, and every refusal's message.
 */
#include "common/tap.h"
#include "launcher/hostlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Joins the names of h with spaces into a static buffer. */
static const char *joined(const struct hostlist *h)
{
    static char buf[4096];
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; h && i < hostlist_count(h) && used < sizeof(buf); i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
                                 i ? " " : "", hostlist_nth(h, i));
    return buf;
}

static void expands_to(const char *expr, const char *want)
{
    char err[256] = "";
    struct hostlist *h = hostlist_create(expr, err, sizeof(err));

    if (!ok(h && strcmp(joined(h), want) == 0, "%s -> %s", expr, want))
        diag("got '%s' %s", joined(h), err);
    hostlist_destroy(h);
}

static void test_expand(void)
{
    expands_to("node1", "node1");
    expands_to("node[001-003,200]", "node001 node002 node003 node200");
    expands_to("n[08-11]", "n08 n09 n10 n11");
    expands_to("n[8-11]", "n8 n9 n10 n11");
    expands_to("n[098-101]", "n098 n099 n100 n101");
    expands_to("n[0]", "n0");
    expands_to("n[5-5]", "n5");
    expands_to("a[1-3]b[01-02]", "a1b01 a1b02 a2b01 a2b02 a3b01 a3b02");
    expands_to("a[1-2][3-4]", "a13 a14 a23 a24");
    expands_to("n1,n2,rack[1-2]-node[1-2]",
               "n1 n2 rack1-node1 rack1-node2 rack2-node1 rack2-node2");
    expands_to("tux[0-5,12,20-25]", "tux0 tux1 tux2 tux3 tux4 tux5 tux12 "
               "tux20 tux21 tux22 tux23 tux24 tux25");
    expands_to("node1,node[2-5,12]", "node1 node2 node3 node4 node5 node12");
    expands_to("n[3,1-2]", "n3 n1 n2");
    expands_to("n[1-2],n[1-2]", "n1 n2 n1 n2");
    expands_to("[1-3]", "1 2 3");
    expands_to("n[1-2]-ib", "n1-ib n2-ib");
    expands_to("10.0.0.[1-3]", "10.0.0.1 10.0.0.2 10.0.0.3");
    expands_to("host_a.example.org", "host_a.example.org");
    expands_to("10.77.0.[2-3]:7400", "10.77.0.2:7400 10.77.0.3:7400");
    expands_to("10.77.0.2:[7400-7401]", "10.77.0.2:7400 10.77.0.2:7401");
    expands_to("vx[1-2]:2", "vx1:2 vx2:2");
    expands_to("n[999999999999999998-999999999999999999]",
               "n999999999999999998 n999999999999999999");
}

static void test_slurm_nodelist(void)
{
    struct hostlist *h = hostlist_create("node[001-128,200]", NULL, 0);

    ok(h && hostlist_count(h) == 129, "node[001-128,200]: 129 names");
    ok(h && strcmp(hostlist_nth(h, 0), "node001") == 0 &&
       strcmp(hostlist_nth(h, 127), "node128") == 0 &&
       strcmp(hostlist_nth(h, 128), "node200") == 0,
       "node[001-128,200]: node001 ... node128, node200");
    errno = 0;
    ok(h && !hostlist_nth(h, 129) && !hostlist_nth(h, -1) && errno == EINVAL,
       "nth out of range: NULL, EINVAL");
    errno = ERANGE;
    hostlist_destroy(h);
    hostlist_destroy(NULL);
    ok(errno == ERANGE, "hostlist_destroy keeps errno and accepts NULL");
}

static void refused(const char *expr, const char *why)
{
    char err[256] = "", want[512];
    struct hostlist *h;

    snprintf(want, sizeof(want), "invalid hostlist '%s': %s", expr, why);
    errno = 0;
    h = hostlist_create(expr, err, sizeof(err));
    if (!ok(!h && errno == EINVAL && strcmp(err, want) == 0, "refused: %s",
            want))
        diag("got: %s", err);
    hostlist_destroy(h);
}

static void test_refusals(void)
{
    char err[256];

    refused("node[1-3", "unbalanced '[' at offset 4");
    refused("node[1-3,", "unbalanced '[' at offset 4");
    refused("a,n[", "unbalanced '[' at offset 3");
    refused("node1-3]", "unbalanced ']' at offset 7");
    refused("n[1-2]x]", "unbalanced ']' at offset 7");
    refused("n[[1]]", "nested '[' at offset 2");
    refused("n[1[2]]", "nested '[' at offset 3");
    refused("n[]", "empty range at offset 2");
    refused("n[1,]", "empty range at offset 4");
    refused("n[,1]", "empty range at offset 2");
    refused("n[1-]", "empty range at offset 4");
    refused("n[5-3]", "reversed range 5-3 at offset 2");
    refused("n[a-b]", "non-numeric range at offset 2");
    refused("n[1-b]", "non-numeric range at offset 4");
    refused("n[-3]", "non-numeric range at offset 2");
    refused("n[1-2-3]", "non-numeric range at offset 5");
    refused("n[1x]", "non-numeric range at offset 3");
    refused("", "empty name at offset 0");
    refused("a,,b", "empty name at offset 2");
    refused("a,", "empty name at offset 2");
    refused(",a", "empty name at offset 0");
    refused("a b", "unexpected ' ' at offset 1");
    refused("a\tb", "unexpected byte 0x09 at offset 1");
    refused("n/1", "unexpected '/' at offset 1");
    refused("n[1234567890123456789]",
            "number longer than 18 digits at offset 2");
    errno = 0;
    ok(!hostlist_create(NULL, err, sizeof(err)) && errno == EINVAL &&
       strcmp(err, "invalid hostlist: no expression") == 0,
       "NULL expression refused");
    ok(!hostlist_create("n[", NULL, 0), "NULL err buffer is fine");
}

static void expect_count(const char *expr, int want)
{
    struct hostlist *h = hostlist_create(expr, NULL, 0);

    ok(h && hostlist_count(h) == want, "%.60s: %d names", expr, want);
    hostlist_destroy(h);
}

static void test_limits(void)
{
    char name[300];
    struct hostlist *h = hostlist_create("n[1-65536]", NULL, 0);

    ok(h && hostlist_count(h) == 65536 &&
       strcmp(hostlist_nth(h, 65535), "n65536") == 0,
       "n[1-65536]: 65536 names, the last n65536");
    hostlist_destroy(h);
    expect_count("a[1-256]b[1-256]", 65536);
    expect_count("a[1-65535],b", 65536);
    refused("n[1-65537]", "expands to more than 65536 names");
    refused("n[0-65535],x", "expands to more than 65536 names");
    refused("n[1-65536,7]", "expands to more than 65536 names");
    refused("a[1-256]b[1-257]", "expands to more than 65536 names");
    refused("a[1-65536]b[1-65536]c[1-65536]d[1-65536]",
            "expands to more than 65536 names");
    refused("a[0-999999999999999999]", "expands to more than 65536 names");
    refused("a[1-1000],b[1-1000]c[1-1000]",
            "expands to more than 65536 names");
    memset(name, 'x', 255);
    name[255] = '\0';
    expect_count(name, 1);
    strcpy(name + 253, "[1-99]");
    expect_count(name, 99);
    strcpy(name + 253, "[1-100]");
    h = hostlist_create(name, NULL, 0);
    ok(!h && errno == EINVAL, "253 characters + 3 digits: too long");
    memset(name, 'x', 256);
    name[256] = '\0';
    h = hostlist_create(name, NULL, 0);
    ok(!h && errno == EINVAL, "a 256-character name: too long");
}

static void compresses(const char *const *names, int n, const char *want)
{
    char buf[256];
    int len = hostlist_compress(names, n, buf, sizeof(buf));

    if (!ok(len == (int)strlen(want) && strcmp(buf, want) == 0,
            "compress -> %s", want))
        diag("got %d '%s'", len, buf);
}

static void test_compress(void)
{
    static const char *const mixed[] = { "n1", "n2", "n3", "n7", "m1" };
    static const char *const racks[] = { "rack1-node2", "rack1-node3" };
    static const char *const ib[] = { "n1-ib", "n2-ib", "n3-ib" };
    static const char *const pad[] = { "n9", "n010", "n011" };
    static const char *const order[] = { "n3", "n1", "n2" };
    static const char *const plain[] = { "a", "b", "c1x" };
    static const char *const carry[] = { "n08", "n09", "n10", "n99", "n100" };
    static const char *const tcp[] = { "10.77.0.2:7400", "10.77.0.2:7401",
                                       "10.77.0.3:7400" };

    compresses(mixed, 5, "n[1-3,7],m1");
    compresses(racks, 2, "rack1-node[2-3]");
    compresses(ib, 3, "n[1-3]-ib");
    compresses(pad, 3, "n[9,010-011]");
    compresses(order, 3, "n[3,1-2]");
    compresses(plain, 3, "a,b,c1x");
    compresses(carry, 5, "n[08-10,99-100]");
    compresses(mixed, 1, "n1");
    compresses(tcp, 3, "10.77.0.2:[7400-7401],10.77.0.3:7400");
}

static void test_compress_buffers(void)
{
    static const char *const names[] = { "node1", "node2", "node3", "node7" };
    static const char *const bad[] = { "ok", "not ok" };
    static const char *const brackets[] = { "n[1]" };
    static const char *const empty[] = { "" };
    char buf[8];

    ok(hostlist_compress(names, 4, NULL, 0) == 11,
       "length only: node[1-3,7] is 11");
    ok(hostlist_compress(names, 4, buf, sizeof(buf)) == 11 &&
       strcmp(buf, "node[1-") == 0, "truncated like snprintf: 'node[1-'");
    errno = 0;
    ok(hostlist_compress(bad, 2, buf, sizeof(buf)) == -1 && errno == EINVAL,
       "a name with a space: EINVAL");
    ok(hostlist_compress(brackets, 1, NULL, 0) == -1,
       "a name with brackets: refused");
    ok(hostlist_compress(empty, 1, NULL, 0) == -1, "an empty name: refused");
    ok(hostlist_compress(names, 0, NULL, 0) == -1, "no names: refused");
    ok(hostlist_compress(names, 1, NULL, 4) == -1, "NULL buf, len 4: refused");
}

/* Expand, compress, expand again: the same names in the same order. */
static void round_trip(const char *expr, const char *want)
{
    struct hostlist *h = hostlist_create(expr, NULL, 0), *again;
    char ranged[1024], first[4096];

    strcpy(first, joined(h));
    hostlist_ranged(h, ranged, sizeof(ranged));
    again = hostlist_create(ranged, NULL, 0);
    ok(again && strcmp(first, joined(again)) == 0 &&
       strcmp(ranged, want) == 0, "%s -> %s -> same names", expr, want);
    hostlist_destroy(h);
    hostlist_destroy(again);
}

static void test_round_trip(void)
{
    round_trip("node[001-128,200]", "node[001-128,200]");
    round_trip("tux[0-5,12,20-25]", "tux[0-5,12,20-25]");
    round_trip("n[08-11]", "n[08-11]");
    round_trip("a[1-3]b[01-02]", "a1b[01-02],a2b[01-02],a3b[01-02]");
    round_trip("n1,n2,rack[1-2]-node[1-2]",
               "n[1-2],rack1-node[1-2],rack2-node[1-2]");
    round_trip("n[1-2],n[1-2]", "n[1-2,1-2]");
    round_trip("n[9-10],n010", "n[9-10,010]");
    round_trip("x1234567890123456789,x1234567890123456790",
               "x1234567890123456789,x1234567890123456790");
}

int main(void)
{
    test_expand();
    test_slurm_nodelist();
    test_refusals();
    test_limits();
    test_compress();
    test_compress_buffers();
    test_round_trip();
    return done_testing();
}
