/* hostlist.h - Slurm hostlist expressions: expand "node[001-128,200]" into
 * host names, and compress a list of names back into such an expression.
 *
 * Syntax (the forms Slurm documents and SLURM_JOB_NODELIST uses):
 *
 *   list    := item { "," item }
 *   item    := part { part }              e.g. rack[1-2]-node[01-04]
 *   part    := name-chars | "[" range { "," range } "]"
 *   range   := number | number "-" number
 *
 * Name characters are letters, digits, '-', '.', '_' and ':' (so that
 * "host:port" endpoint names and Hydra's "host:n" can be written as
 * hostlists: 10.77.0.[2-5]:7400, vx[1-4]:2).  A range expands
 * low to high, zero-padded to the width of its low bound as written
 * (n[08-11] is n08 n09 n10 n11; n[8-11] is n8 n9 n10 n11).  Several bracket
 * groups in one item multiply, the last one varying fastest: a[1-2]b[1-2]
 * is a1b1 a1b2 a2b1 a2b2.  Names keep the order written, duplicates
 * included: node order is rank order.  Whitespace is not a separator.
 *
 * Refused with a one-line message: unbalanced or nested brackets, empty
 * names or ranges, reversed ranges (5-3), non-numeric ranges, numbers over
 * 18 digits, names over HOSTLIST_MAX_NAME characters, and expressions that
 * would expand to more than HOSTLIST_MAX_NAMES names (checked before
 * anything is expanded).
 *
 * Errors: -1 or NULL with errno set (EINVAL, ENOMEM), plus a one-line
 * message in the caller's err buffer (may be NULL).
 */
#ifndef VEXEC_HOSTLIST_H
#define VEXEC_HOSTLIST_H

#include <stddef.h>

/* Most names one expression may expand to: far beyond any machine we
 * launch on, yet small enough that a typo like n[1-99999999] is refused
 * instead of eating memory. */
#define HOSTLIST_MAX_NAMES 65536

/* Longest name: a DNS name is at most 253 characters; 255 leaves room for
 * the trailing dot some configurations write. */
#define HOSTLIST_MAX_NAME 255

struct hostlist;

/* Expand expr.  Returns the list, or NULL with errno EINVAL (bad
 * expression) or ENOMEM. */
struct hostlist *hostlist_create(const char *expr, char *err, size_t errlen);

/* Free the list.  Accepts NULL and keeps errno. */
void hostlist_destroy(struct hostlist *h);

/* Returns the number of names (at least 1). */
int hostlist_count(const struct hostlist *h);

/* Returns name i (0-based), valid until hostlist_destroy, or NULL with
 * errno EINVAL if i is out of range. */
const char *hostlist_nth(const struct hostlist *h, int i);

/* Write names[0..count-1] as one expression that expands back to the same
 * names in the same order, like snprintf: at most len bytes including the
 * NUL go to buf (which may be NULL when len is 0).  Adjacent names that
 * differ only in their last number share brackets: n1 n2 n3 n7 m1 becomes
 * "n[1-3,7],m1"; rack1-node2 rack1-node3 becomes "rack1-node[2-3]"; n1-ib
 * n2-ib becomes "n[1-2]-ib".
 * Returns the length of the whole expression, or -1 with errno EINVAL if
 * count < 1, buf is NULL with len > 0, or a name is NULL, empty, too long
 * or has a character the syntax does not allow; EOVERFLOW if the length
 * could pass INT_MAX; ENOMEM. */
int hostlist_compress(const char *const *names, int count, char *buf,
                      size_t len);

/* hostlist_compress over all the names of h; same returns. */
int hostlist_ranged(const struct hostlist *h, char *buf, size_t len);

#endif
