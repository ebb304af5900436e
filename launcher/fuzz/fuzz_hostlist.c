/* fuzz_hostlist.c - libFuzzer target for launcher/hostlist.c.
 *
 * Any input is read as an expression.  Parsing must never crash or exceed
 * its limits; an expression it accepts must compress to one that expands
 * to exactly the same names in the same order.
 */
#include "launcher/hostlist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, so libFuzzer keeps the input, if a and b differ. */
static void check_same(const struct hostlist *a, const struct hostlist *b,
                       const char *ranged)
{
    if (!b || hostlist_count(a) != hostlist_count(b)) {
        fprintf(stderr, "'%s' does not expand to %d names\n", ranged,
                hostlist_count(a));
        abort();
    }
    for (int i = 0; i < hostlist_count(a); i++) {
        if (strcmp(hostlist_nth(a, i), hostlist_nth(b, i)) != 0) {
            fprintf(stderr, "'%s': name %d is %s, not %s\n", ranged, i,
                    hostlist_nth(b, i), hostlist_nth(a, i));
            abort();
        }
    }
}

static void round_trip(const struct hostlist *h)
{
    int len = hostlist_ranged(h, NULL, 0);
    char *ranged, err[256];
    struct hostlist *again;

    if (len < 0 || !(ranged = malloc((size_t)len + 1)))
        abort();
    if (hostlist_ranged(h, ranged, (size_t)len + 1) != len ||
        strlen(ranged) != (size_t)len)
        abort();
    again = hostlist_create(ranged, err, sizeof(err));
    if (!again)
        fprintf(stderr, "'%s' refused: %s\n", ranged, err);
    check_same(h, again, ranged);
    hostlist_destroy(again);
    free(ranged);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *expr = malloc(size + 1);
    struct hostlist *h;
    char err[128];

    if (!expr)
        return 0;
    memcpy(expr, data, size);
    expr[size] = '\0';
    h = hostlist_create(expr, err, sizeof(err));
    if (h) {
        if (hostlist_count(h) < 1 || hostlist_count(h) > HOSTLIST_MAX_NAMES)
            abort();
        round_trip(h);
        hostlist_destroy(h);
    }
    free(expr);
    return 0;
}
