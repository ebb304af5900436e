/* proto.c - encode and check the down and up messages (see proto.h).
 *
 * Layouts (host byte order, 8-byte aligned records):
 *   down: magic "VXDN" u32 | type u16 | 0 u16 | job u64 | body length u32 |
 *         0 u32 | body  (then the credential, launcher/auth.h)
 *     LAUNCH body: nnodes u32 | image lead u32 | image length u64 |
 *                  image checksum u64 | chunk u64 |
 *                  tree "\0" origin "\0" nodes "\0"
 *     SIGNAL body: signal number i32
 *     STDIN body:  the bytes
 *     QUERY body:  nnodes u32 | 0 u32 | tree "\0" origin "\0" nodes "\0"
 *     ADOPT body:  epoch u32 | adopter rank u32 | the signed LAUNCH
 *   up:   magic "VXUP" u32 | record count u32 | job u64 | body length u32 |
 *         0 u32 | records
 *     record: type u32 | rank u32 | value i32 | data length u32 | data,
 *             padded with zeros to a multiple of 8
 */
#include "common/err.h"
#include "launcher/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DOWN_MAGIC 0x4e445856u  /* "VXDN" */
#define UP_MAGIC 0x50555856u    /* "VXUP" */

struct msg_hdr {
    uint32_t magic;
    uint16_t type;      /* down: the type; up: unused */
    uint16_t zero;
    uint64_t job;
    uint32_t len;       /* body bytes after the header */
    uint32_t count;     /* up: records; down: 0 */
};

struct launch_body {
    uint32_t nnodes;
    uint32_t image_lead;
    uint64_t image_len;
    uint64_t image_sum;
    uint64_t chunk;
};

_Static_assert(sizeof(struct msg_hdr) + PROTO_STDIN_MAX + PROTO_TRAILER_MAX
               == PROTO_MSG_MAX, "PROTO_STDIN_MAX");

struct rec_hdr {
    uint32_t type;
    uint32_t rank;
    int32_t value;
    uint32_t len;
};

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Start a down message of type with a body of len bytes in buf. */
static int down_header(void *buf, size_t size, uint16_t type, uint64_t job,
                       size_t len, char *err, size_t errlen)
{
    struct msg_hdr h = { .magic = DOWN_MAGIC, .type = type, .job = job,
                         .len = (uint32_t)len };

    if (len > PROTO_MSG_MAX - PROTO_TRAILER_MAX - sizeof(h)
        || sizeof(h) + len > size)
        return seterr(err, errlen, EMSGSIZE, "message of %zu bytes is "
                      "larger than %u", sizeof(h) + len,
                      PROTO_MSG_MAX - PROTO_TRAILER_MAX);
    memcpy(buf, &h, sizeof(h));
    return (int)(sizeof(h) + len);
}

int proto_encode_launch(void *buf, size_t size, uint64_t job,
                        const struct proto_launch *l, char *err,
                        size_t errlen)
{
    struct launch_body b = { .nnodes = l->nnodes, .image_lead = l->image_lead,
                             .image_len = l->image_len,
                             .image_sum = l->image_sum, .chunk = l->chunk };
    const char *s[3] = { l->tree, l->origin, l->nodes };
    size_t len = sizeof(b);
    char *p;
    int total;

    for (int i = 0; i < 3; i++)
        len += strlen(s[i]) + 1;
    if ((total = down_header(buf, size, PROTO_LAUNCH, job, len, err,
                             errlen)) < 0)
        return -1;
    p = (char *)buf + sizeof(struct msg_hdr);
    memcpy(p, &b, sizeof(b));
    p += sizeof(b);
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(s[i]) + 1;

        memcpy(p, s[i], n);
        p += n;
    }
    return total;
}

int proto_encode_signal(void *buf, size_t size, uint64_t job, int signo,
                        char *err, size_t errlen)
{
    int32_t v = signo;
    int total = down_header(buf, size, PROTO_SIGNAL, job, sizeof(v), err,
                            errlen);

    if (total >= 0)
        memcpy((char *)buf + sizeof(struct msg_hdr), &v, sizeof(v));
    return total;
}

int proto_encode_stdin(void *buf, size_t size, uint64_t job,
                       const void *data, size_t len, char *err,
                       size_t errlen)
{
    int total = down_header(buf, size, PROTO_STDIN, job, len, err, errlen);

    if (total >= 0 && len)
        memcpy((char *)buf + sizeof(struct msg_hdr), data, len);
    return total;
}

int proto_encode_query(void *buf, size_t size, uint64_t id,
                       const struct proto_query *q, char *err,
                       size_t errlen)
{
    uint32_t head[2] = { q->nnodes, 0 };
    const char *s[3] = { q->tree, q->origin, q->nodes };
    size_t len = sizeof(head);
    char *p;
    int total;

    for (int i = 0; i < 3; i++)
        len += strlen(s[i]) + 1;
    if ((total = down_header(buf, size, PROTO_QUERY, id, len, err,
                             errlen)) < 0)
        return -1;
    p = (char *)buf + sizeof(struct msg_hdr);
    memcpy(p, head, sizeof(head));
    p += sizeof(head);
    for (int i = 0; i < 3; i++) {
        memcpy(p, s[i], strlen(s[i]) + 1);
        p += strlen(s[i]) + 1;
    }
    return total;
}

uint32_t proto_stream(uint64_t job, uint32_t epoch)
{
    uint64_t x = job ^ ((uint64_t)epoch * UINT64_C(0x9e3779b97f4a7c15));

    /* A 64-bit mix (splitmix64's finaliser), folded to 31 bits. */
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return (uint32_t)(x ^ (x >> 32)) & 0x7fffffffu;
}

int proto_encode_adopt(void *buf, size_t size, uint64_t job, uint32_t epoch,
                       uint32_t adopter, const void *launch, size_t len,
                       char *err, size_t errlen)
{
    uint32_t head[2] = { epoch, adopter };
    int total = down_header(buf, size, PROTO_ADOPT, job, sizeof(head) + len,
                            err, errlen);
    char *p = (char *)buf + sizeof(struct msg_hdr);

    if (total < 0)
        return -1;
    memcpy(p, head, sizeof(head));
    memcpy(p + sizeof(head), launch, len);
    return total;
}

static int decode_adopt(const char *body, size_t len, struct proto_down *d,
                        char *err, size_t errlen)
{
    uint32_t head[2];

    if (len < sizeof(head) + sizeof(struct msg_hdr))
        return seterr(err, errlen, EPROTO, "adopt request of %zu bytes is "
                      "truncated", len);
    memcpy(head, body, sizeof(head));
    d->epoch = head[0];
    d->adopter = head[1];
    d->data = body + sizeof(head);
    d->len = len - sizeof(head);
    return 0;
}

/* Take the next NUL-terminated string from [*p, end). */
static const char *take_string(const char **p, const char *end)
{
    const char *s = *p, *nul = memchr(s, '\0', (size_t)(end - s));

    if (!nul || nul == s)
        return NULL;
    *p = nul + 1;
    return s;
}

static int decode_launch(const char *body, size_t len, struct proto_down *d,
                         char *err, size_t errlen)
{
    const char *p = body + sizeof(struct launch_body), *end = body + len;
    struct launch_body b;

    if (len < sizeof(b))
        return seterr(err, errlen, EPROTO, "launch request of %zu bytes is "
                      "truncated", len);
    memcpy(&b, body, sizeof(b));
    if (b.nnodes == 0 || b.image_len == 0 || b.chunk == 0)
        return seterr(err, errlen, EPROTO, "launch request with no nodes, "
                      "no image or no chunk size");
    if (b.image_lead >= PROTO_LEAD_MAX || b.image_lead % 4096)
        return seterr(err, errlen, EPROTO, "launch request with an image "
                      "lead of %u bytes (not a page multiple below 2 MiB)",
                      b.image_lead);
    d->launch.nnodes = b.nnodes;
    d->launch.image_lead = b.image_lead;
    d->launch.image_len = b.image_len;
    d->launch.image_sum = b.image_sum;
    d->launch.chunk = b.chunk;
    if (!(d->launch.tree = take_string(&p, end))
        || !(d->launch.origin = take_string(&p, end))
        || !(d->launch.nodes = take_string(&p, end)))
        return seterr(err, errlen, EPROTO, "launch request with a missing "
                      "or unterminated name");
    if (p != end)
        return seterr(err, errlen, EPROTO, "launch request with %zu bytes "
                      "of trailing garbage", (size_t)(end - p));
    return 0;
}

static int decode_query(const char *body, size_t len, struct proto_down *d,
                        char *err, size_t errlen)
{
    const char *p = body + 2 * sizeof(uint32_t), *end = body + len;
    uint32_t head[2];

    if (len < sizeof(head))
        return seterr(err, errlen, EPROTO, "query of %zu bytes is "
                      "truncated", len);
    memcpy(head, body, sizeof(head));
    if (head[0] == 0 || head[1])
        return seterr(err, errlen, EPROTO, "query for no nodes");
    d->query.nnodes = head[0];
    if (!(d->query.tree = take_string(&p, end))
        || !(d->query.origin = take_string(&p, end))
        || !(d->query.nodes = take_string(&p, end)))
        return seterr(err, errlen, EPROTO, "query with a missing or "
                      "unterminated name");
    if (p != end)
        return seterr(err, errlen, EPROTO, "query with %zu bytes of "
                      "trailing garbage", (size_t)(end - p));
    return 0;
}

int proto_decode_down(const void *msg, size_t len, struct proto_down *d,
                      char *err, size_t errlen)
{
    const char *body = (const char *)msg + sizeof(struct msg_hdr);
    struct msg_hdr h;

    memset(d, 0, sizeof(*d));
    if (len < sizeof(h))
        return seterr(err, errlen, EPROTO, "message of %zu bytes is too "
                      "short", len);
    memcpy(&h, msg, sizeof(h));
    if (h.magic != DOWN_MAGIC || h.zero || h.count)
        return seterr(err, errlen, EPROTO, "not a vexec request");
    if (h.len != len - sizeof(h))
        return seterr(err, errlen, EPROTO, "request says %u bytes, %zu "
                      "arrived", h.len, len - sizeof(h));
    d->type = h.type;
    d->job = h.job;
    switch (h.type) {
    case PROTO_LAUNCH:
        return decode_launch(body, h.len, d, err, errlen);
    case PROTO_SIGNAL:
        if (h.len != sizeof(d->signo))
            return seterr(err, errlen, EPROTO, "signal request of %u bytes",
                          h.len);
        memcpy(&d->signo, body, sizeof(d->signo));
        if (d->signo <= 0 || d->signo >= 65)
            return seterr(err, errlen, EPROTO, "signal %d out of range",
                          (int)d->signo);
        return 0;
    case PROTO_STDIN:
        d->data = body;
        d->len = h.len;
        return 0;
    case PROTO_QUERY:
        return decode_query(body, h.len, d, err, errlen);
    case PROTO_ADOPT:
        return decode_adopt(body, h.len, d, err, errlen);
    }
    return seterr(err, errlen, EPROTO, "unknown request type %u", h.type);
}

static int batch_reserve(struct proto_batch *b, size_t more)
{
    size_t size = b->size ? b->size : 4096;
    char *p;

    if (b->len + more <= b->size)
        return 0;
    while (size < b->len + more)
        size *= 2;
    if (!(p = realloc(b->buf, size))) {
        errno = ENOMEM;
        return -1;
    }
    b->buf = p;
    b->size = size;
    return 0;
}

int proto_batch_add(struct proto_batch *b, uint32_t type, uint32_t rank,
                    int32_t value, const void *data, uint32_t len)
{
    struct rec_hdr r = { .type = type, .rank = rank, .value = value,
                         .len = len };
    size_t n = sizeof(r) + pad8(len);

    if (batch_reserve(b, n) < 0)
        return -1;
    memcpy(b->buf + b->len, &r, sizeof(r));
    if (len)
        memcpy(b->buf + b->len + sizeof(r), data, len);
    memset(b->buf + b->len + sizeof(r) + len, 0, pad8(len) - len);
    b->len += n;
    return 0;
}

int proto_batch_merge(struct proto_batch *b, const void *msg, size_t len)
{
    const char *p = (const char *)msg + sizeof(struct msg_hdr);
    const char *end = (const char *)msg + len;

    if (batch_reserve(b, (size_t)(end - p)) < 0)
        return -1;
    /* Record by record (the message was checked): ALIVE is only for us. */
    while (p < end) {
        struct rec_hdr r;
        size_t n;

        memcpy(&r, p, sizeof(r));
        n = sizeof(r) + pad8(r.len);
        if (r.type != PROTO_ALIVE) {
            memcpy(b->buf + b->len, p, n);
            b->len += n;
        }
        p += n;
    }
    return 0;
}

size_t proto_batch_take(struct proto_batch *b, uint64_t job, void *out)
{
    struct msg_hdr h = { .magic = UP_MAGIC, .job = job };
    size_t used = 0;

    /* Whole records only; a record never exceeds the limit because OUT
     * data is at most PROTO_OUT_MAX and FAIL text is short. */
    while (used < b->len) {
        struct rec_hdr r;
        size_t n;

        memcpy(&r, b->buf + used, sizeof(r));
        n = sizeof(r) + pad8(r.len);
        if (sizeof(h) + used + n > PROTO_MSG_MAX)
            break;
        used += n;
        h.count++;
    }
    if (used == 0)
        return 0;
    h.len = (uint32_t)used;
    memcpy(out, &h, sizeof(h));
    memcpy((char *)out + sizeof(h), b->buf, used);
    memmove(b->buf, b->buf + used, b->len - used);
    b->len -= used;
    return sizeof(h) + used;
}

int proto_batch_append(struct proto_batch *b, const void *data, size_t len)
{
    if (batch_reserve(b, len) < 0)
        return -1;
    memcpy(b->buf + b->len, data, len);
    b->len += len;
    return 0;
}

int proto_batch_unget(struct proto_batch *b, const void *msg, size_t len)
{
    size_t body = len - sizeof(struct msg_hdr);

    if (batch_reserve(b, body) < 0)
        return -1;
    memmove(b->buf + body, b->buf, b->len);
    memcpy(b->buf, (const char *)msg + sizeof(struct msg_hdr), body);
    b->len += body;
    return 0;
}

void proto_batch_free(struct proto_batch *b)
{
    free(b->buf);
    *b = (struct proto_batch){ 0 };
}

/* Walk the records of a checked body; fn may be NULL (checking only). */
static int walk(const char *p, const char *end, uint32_t count,
                int (*fn)(void *, const struct proto_rec *), void *arg,
                char *err, size_t errlen)
{
    for (uint32_t i = 0; i < count; i++) {
        struct rec_hdr r;
        struct proto_rec rec;
        int ret;

        if ((size_t)(end - p) < sizeof(r))
            return seterr(err, errlen, EPROTO, "record %u of %u is "
                          "truncated", i, count);
        memcpy(&r, p, sizeof(r));
        if (r.type < PROTO_STARTED || r.type > PROTO_ALIVE)
            return seterr(err, errlen, EPROTO, "record %u has unknown type "
                          "%u", i, r.type);
        if (r.len > PROTO_MSG_MAX
            || (size_t)(end - p) - sizeof(r) < pad8(r.len))
            return seterr(err, errlen, EPROTO, "record %u says %u bytes, "
                          "fewer remain", i, r.len);
        rec = (struct proto_rec){ .type = r.type, .rank = r.rank,
                                  .value = r.value, .len = r.len,
                                  .data = p + sizeof(r) };
        p += sizeof(r) + pad8(r.len);
        if (fn && (ret = fn(arg, &rec)))
            return ret;
    }
    if (p != end)
        return seterr(err, errlen, EPROTO, "%zu bytes after the last "
                      "record", (size_t)(end - p));
    return 0;
}

int proto_each_rec(const void *msg, size_t len, uint64_t *job,
                   int (*fn)(void *arg, const struct proto_rec *r),
                   void *arg, char *err, size_t errlen)
{
    const char *body = (const char *)msg + sizeof(struct msg_hdr);
    struct msg_hdr h;

    if (len < sizeof(h))
        return seterr(err, errlen, EPROTO, "report of %zu bytes is too "
                      "short", len);
    memcpy(&h, msg, sizeof(h));
    if (h.magic != UP_MAGIC || h.type || h.zero)
        return seterr(err, errlen, EPROTO, "not a vexec report");
    if (h.len != len - sizeof(h))
        return seterr(err, errlen, EPROTO, "report says %u bytes, %zu "
                      "arrived", h.len, len - sizeof(h));
    *job = h.job;
    if (walk(body, body + h.len, h.count, NULL, NULL, err, errlen) < 0)
        return -1;
    return walk(body, body + h.len, h.count, fn, arg, err, errlen);
}
