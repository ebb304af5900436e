/* hostlist.c - expand and compress Slurm hostlist expressions (hostlist.h).
 *
 * Expansion reads the expression twice.  The first pass checks the syntax
 * and adds up how many names there will be and how long they can get,
 * refusing anything over the limits before a byte is allocated; the second
 * writes the names into one buffer sized from those sums.  The product of
 * several bracket groups is checked group by group against the limit, so it
 * cannot overflow.
 */
#include "launcher/hostlist.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Digits in a range bound: 10^18 - 1 still fits in an unsigned long long
 * with room to add 1. */
#define MAX_DIGITS 18

/* How much of a bad expression an error message quotes. */
#define QUOTE_MAX 64

struct hostlist {
    int count;
    size_t *off;    /* name i starts at names + off[i] */
    char *names;    /* the names, each NUL-terminated */
    size_t used;
};

struct parser {
    const char *expr;
    size_t pos;
    size_t open;    /* offset of the '[' of the group being read */
    char *err;
    size_t errlen;
};

struct range {
    unsigned long long lo, hi;
    int width;      /* digits of lo as written: the zero padding */
};

/* What the first pass learns about the whole expression. */
struct sizes {
    size_t names;
    size_t bytes;
};

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == ':';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reports "invalid hostlist 'EXPR': WHY" and returns -1 with errno EINVAL. */
__attribute__((format(printf, 2, 3)))
static int fail(struct parser *p, const char *fmt, ...)
{
    char why[128];
    size_t len = strlen(p->expr);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "invalid hostlist '%.*s%s': %s",
                 QUOTE_MAX, p->expr, len > QUOTE_MAX ? "..." : "", why);
    errno = EINVAL;
    return -1;
}

static int fail_char(struct parser *p)
{
    unsigned char c = (unsigned char)p->expr[p->pos];

    if (c >= ' ' && c < 127)
        return fail(p, "unexpected '%c' at offset %zu", c, p->pos);
    return fail(p, "unexpected byte 0x%02x at offset %zu", c, p->pos);
}

static int digits_of(unsigned long long v)
{
    int n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Reads a decimal number at p->pos.  Returns its digit count, or -1. */
static int parse_number(struct parser *p, unsigned long long *value)
{
    size_t start = p->pos;

    *value = 0;
    while (is_digit(p->expr[p->pos])) {
        if (p->pos - start == MAX_DIGITS)
            return fail(p, "number longer than %d digits at offset %zu",
                        MAX_DIGITS, start);
        *value = *value * 10 + (unsigned)(p->expr[p->pos++] - '0');
    }
    if (p->pos == start) {
        char c = p->expr[p->pos];

        if (c == '\0')
            return fail(p, "unbalanced '[' at offset %zu", p->open);
        if (c == ',' || c == ']')
            return fail(p, "empty range at offset %zu", start);
        if (c == '[')
            return fail(p, "nested '[' at offset %zu", start);
        return fail(p, "non-numeric range at offset %zu", start);
    }
    return (int)(p->pos - start);
}

/* Reads "lo" or "lo-hi" and checks what follows it.  Returns 0 or -1. */
static int parse_range(struct parser *p, struct range *r)
{
    size_t start = p->pos;
    char c;

    if ((r->width = parse_number(p, &r->lo)) < 0)
        return -1;
    r->hi = r->lo;
    if (p->expr[p->pos] == '-') {
        p->pos++;
        if (parse_number(p, &r->hi) < 0)
            return -1;
        if (r->hi < r->lo)
            return fail(p, "reversed range %llu-%llu at offset %zu", r->lo,
                        r->hi, start);
    }
    c = p->expr[p->pos];
    if (c == '\0')
        return fail(p, "unbalanced '[' at offset %zu", p->open);
    if (c == '[')
        return fail(p, "nested '[' at offset %zu", p->pos);
    if (c != ',' && c != ']')
        return fail(p, "non-numeric range at offset %zu", p->pos);
    return 0;
}

/* First pass over "[...]" at p->pos: how many values and the widest one.
 * Leaves p->pos after the ']'.  Returns 0 or -1. */
static int scan_group(struct parser *p, size_t *count, int *width)
{
    struct range r;

    *count = 0;
    *width = 0;
    p->open = p->pos;
    do {
        p->pos++;               /* the '[' or ',' */
        if (parse_range(p, &r) < 0)
            return -1;
        if (r.hi - r.lo >= HOSTLIST_MAX_NAMES - *count)
            return fail(p, "expands to more than %d names",
                        HOSTLIST_MAX_NAMES);
        *count += (size_t)(r.hi - r.lo) + 1;
        if (r.width > *width)
            *width = r.width;
        if (digits_of(r.hi) > *width)
            *width = digits_of(r.hi);
    } while (p->expr[p->pos] == ',');
    p->pos++;                   /* the ']' */
    return 0;
}

/* First pass over one item: adds its names and their bytes to s.  Leaves
 * p->pos at the ',' or NUL after it.  Returns 0 or -1. */
static int scan_item(struct parser *p, struct sizes *s)
{
    size_t start = p->pos, names = 1, len = 0, count;
    int width;
    char c;

    while ((c = p->expr[p->pos]) != ',' && c != '\0') {
        if (c == '[') {
            if (scan_group(p, &count, &width) < 0)
                return -1;
            if (names > HOSTLIST_MAX_NAMES / count)
                return fail(p, "expands to more than %d names",
                            HOSTLIST_MAX_NAMES);
            names *= count;
            len += (size_t)width;
        } else if (c == ']') {
            return fail(p, "unbalanced ']' at offset %zu", p->pos);
        } else if (is_name_char(c)) {
            p->pos++;
            len++;
        } else {
            return fail_char(p);
        }
        if (len > HOSTLIST_MAX_NAME)
            return fail(p, "name at offset %zu longer than %d characters",
                        start, HOSTLIST_MAX_NAME);
    }
    if (p->pos == start)
        return fail(p, "empty name at offset %zu", start);
    if (names > HOSTLIST_MAX_NAMES - s->names)
        return fail(p, "expands to more than %d names", HOSTLIST_MAX_NAMES);
    s->names += names;
    s->bytes += names * (len + 1);
    return 0;
}

static int scan(struct parser *p, struct sizes *s)
{
    s->names = 0;
    s->bytes = 0;
    for (;;) {
        if (scan_item(p, s) < 0)
            return -1;
        if (p->expr[p->pos] == '\0')
            return 0;
        p->pos++;               /* the ',' */
    }
}

static void push_name(struct hostlist *h, const char *name, size_t len)
{
    h->off[h->count++] = h->used;
    memcpy(h->names + h->used, name, len);
    h->names[h->used + len] = '\0';
    h->used += len + 1;
}

/* v in decimal, zero-padded to width digits, at out (no NUL): what
 * sprintf's "%0*llu" writes, at a fraction of its cost — every node
 * expands the job's whole hostlist at each launch, 1023 names at 1023
 * nodes.  Returns the length. */
static int put_number(char *out, unsigned long long v, int width)
{
    char digits[24];
    int n = 0, len;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    len = n < width ? width : n;
    memset(out, '0', (size_t)(len - n));
    for (int i = 0; i < n; i++)
        out[len - 1 - i] = digits[i];
    return len;
}

/* Second pass: expands the item from s onward, after the len characters
 * already in name.  The syntax and sizes were checked by the first pass,
 * and each group adds at least one character, so the recursion is at most
 * HOSTLIST_MAX_NAME deep. */
static void expand(struct hostlist *h, const char *s, char *name, size_t len)
{
    struct parser p = { 0 };
    const char *after;
    struct range r;

    while (*s && *s != ',' && *s != '[')
        name[len++] = *s++;
    if (*s != '[') {
        push_name(h, name, len);
        return;
    }
    p.expr = s;
    after = strchr(s, ']') + 1;
    do {
        p.pos++;                /* the '[' or ',' */
        parse_range(&p, &r);
        for (unsigned long long v = r.lo; v <= r.hi; v++) {
            int n = put_number(name + len, v, r.width);

            expand(h, after, name, len + (size_t)n);
        }
    } while (p.expr[p.pos] == ',');
}

/* Returns the ',' or NUL that ends the (checked) item at s. */
static const char *item_end(const char *s)
{
    int in_group = 0;

    for (; *s; s++) {
        if (*s == '[')
            in_group = 1;
        else if (*s == ']')
            in_group = 0;
        else if (*s == ',' && !in_group)
            break;
    }
    return s;
}

static void expand_all(struct hostlist *h, const char *expr)
{
    char name[HOSTLIST_MAX_NAME + 1];

    for (;;) {
        expand(h, expr, name, 0);
        expr = item_end(expr);
        if (*expr == '\0')
            return;
        expr++;
    }
}

struct hostlist *hostlist_create(const char *expr, char *err, size_t errlen)
{
    struct parser p = { .expr = expr, .err = err, .errlen = errlen };
    struct hostlist *h = NULL;
    struct sizes s;

    if (!expr) {
        if (err && errlen)
            snprintf(err, errlen, "invalid hostlist: no expression");
        errno = EINVAL;
        return NULL;
    }
    if (scan(&p, &s) < 0)
        goto error;
    if (!(h = calloc(1, sizeof(*h))) ||
        !(h->off = malloc(sizeof(*h->off) * s.names)) ||
        !(h->names = malloc(s.bytes)))
        goto error;
    expand_all(h, expr);
    return h;
error:
    if (errno == ENOMEM && err && errlen)
        snprintf(err, errlen, "hostlist of %zu names: %s", s.names,
                 strerror(errno));
    hostlist_destroy(h);
    return NULL;
}

void hostlist_destroy(struct hostlist *h)
{
    int saved = errno;

    if (h) {
        free(h->off);
        free(h->names);
        free(h);
    }
    errno = saved;
}

int hostlist_count(const struct hostlist *h)
{
    return h->count;
}

const char *hostlist_nth(const struct hostlist *h, int i)
{
    if (i < 0 || i >= h->count) {
        errno = EINVAL;
        return NULL;
    }
    return h->names + h->off[i];
}

/* snprintf-style output: keeps what fits, counts everything. */
struct out {
    char *buf;
    size_t len;
    size_t total;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->total < o->len) {
        size_t room = o->len - 1 - o->total;

        memcpy(o->buf + o->total, s, n < room ? n : room);
    }
    o->total += n;
}

/* A name cut around its last run of digits: prefix, number, suffix. */
struct split {
    const char *name;
    size_t pre;         /* prefix length */
    size_t digits;      /* 0: no number that brackets could hold */
    unsigned long long value;
};

static void split_name(const char *name, struct split *s)
{
    size_t end = strlen(name);

    s->name = name;
    s->digits = 0;
    s->value = 0;
    while (end > 0 && !is_digit(name[end - 1]))
        end--;
    s->pre = end;
    while (s->pre > 0 && is_digit(name[s->pre - 1]))
        s->pre--;
    if (end == s->pre || end - s->pre > MAX_DIGITS)
        return;
    s->digits = end - s->pre;
    for (size_t i = s->pre; i < end; i++)
        s->value = s->value * 10 + (unsigned)(name[i] - '0');
}

/* Whether b can share brackets with a: same prefix and suffix. */
static int same_stem(const struct split *a, const struct split *b)
{
    return a->digits && b->digits && a->pre == b->pre &&
           memcmp(a->name, b->name, a->pre) == 0 &&
           strcmp(a->name + a->pre + a->digits,
                  b->name + b->pre + b->digits) == 0;
}

/* Whether b is the value after a, written as a range from a would write
 * it (zero-padded to a's width). */
static int follows(const struct split *a, const struct split *b, int width)
{
    char want[MAX_DIGITS + 2];
    int n = snprintf(want, sizeof(want), "%0*llu", width, a->value + 1);

    return b->value == a->value + 1 && (size_t)n == b->digits &&
           memcmp(want, b->name + b->pre, b->digits) == 0;
}

/* Writes the numbers of s[0..n-1] (one stem) as "lo-hi,v,..." . */
static void put_ranges(struct out *o, const struct split *s, int n)
{
    for (int i = 0, j; i < n; i = j) {
        int width = (int)s[i].digits;

        for (j = i + 1; j < n && follows(&s[j - 1], &s[j], width); j++)
            ;
        if (i > 0)
            put(o, ",", 1);
        put(o, s[i].name + s[i].pre, s[i].digits);
        if (j - i > 1) {
            put(o, "-", 1);
            put(o, s[j - 1].name + s[j - 1].pre, s[j - 1].digits);
        }
    }
}

/* Writes s[0..n-1], all of one stem, as "prefix[ranges]suffix", or the bare
 * name when there is only one. */
static void put_stem(struct out *o, const struct split *s, int n)
{
    if (n == 1) {
        put(o, s->name, strlen(s->name));
        return;
    }
    put(o, s->name, s->pre);
    put(o, "[", 1);
    put_ranges(o, s, n);
    put(o, "]", 1);
    put(o, s->name + s->pre + s->digits, strlen(s->name + s->pre + s->digits));
}

static int valid_name(const char *name)
{
    size_t len = 0;

    for (; name[len]; len++)
        if (!is_name_char(name[len]) || len == HOSTLIST_MAX_NAME)
            return 0;
    return len > 0;
}

/* Checks that names[0..count-1] are names an expression can hold, and that
 * their compressed form (at most count names of HOSTLIST_MAX_NAME
 * characters plus a separator each) has a length that fits in an int.
 * Returns 0, or -1 with errno EINVAL or EOVERFLOW. */
static int check_names(const char *const *names, int count)
{
    if (count < 1)
        goto invalid;
    for (int i = 0; i < count; i++)
        if (!names[i] || !valid_name(names[i]))
            goto invalid;
    if (count > INT_MAX / (HOSTLIST_MAX_NAME + 1)) {
        errno = EOVERFLOW;
        return -1;
    }
    return 0;
invalid:
    errno = EINVAL;
    return -1;
}

int hostlist_compress(const char *const *names, int count, char *buf,
                      size_t len)
{
    struct out o = { buf, len, 0 };
    struct split *s;

    if (!buf && len) {
        errno = EINVAL;
        return -1;
    }
    if (check_names(names, count) < 0)
        return -1;
    if (!(s = malloc(sizeof(*s) * (size_t)count)))
        return -1;
    for (int i = 0; i < count; i++)
        split_name(names[i], &s[i]);
    for (int i = 0, j; i < count; i = j) {
        for (j = i + 1; j < count && same_stem(&s[i], &s[j]); j++)
            ;
        if (i > 0)
            put(&o, ",", 1);
        put_stem(&o, &s[i], j - i);
    }
    free(s);
    if (len)
        buf[o.total < len ? o.total : len - 1] = '\0';
    return (int)o.total;
}

int hostlist_ranged(const struct hostlist *h, char *buf, size_t len)
{
    const char **names = malloc(sizeof(*names) * (size_t)h->count);
    int n;

    if (!names)
        return -1;
    for (int i = 0; i < h->count; i++)
        names[i] = hostlist_nth(h, i);
    n = hostlist_compress(names, h->count, buf, len);
    free(names);
    return n;
}
