/* nodestat.c - a node's status record: gather, encode, check (see
 * nodestat.h).
 */
#include "common/err.h"
#include "launcher/nodestat.h"
#include "launcher/proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct wire {
    uint32_t load100;
    uint32_t phase;
    uint64_t rss_kib;
    uint64_t job;
    int32_t rank;
    int32_t status;
    uint64_t image_us;
    uint64_t run_us;
    uint64_t ago_us;
};

_Static_assert(sizeof(struct wire) + NODESTAT_REASON_MAX <= NODESTAT_REC_MAX,
               "NODESTAT_REC_MAX");

void nodestat_last_begin(struct nodestat_last *l, uint64_t job, int rank,
                         double now)
{
    *l = (struct nodestat_last){ .job = job, .rank = rank, .t_launch = now,
                                 .phase = NODESTAT_RECEIVING };
}

void nodestat_last_note(struct nodestat_last *l, uint32_t type,
                        int32_t value, double now)
{
    switch (type) {
    case PROTO_IMAGE:
        l->t_image = now;
        break;
    case PROTO_STARTED:
        l->t_start = now;
        l->phase = NODESTAT_RUNNING;
        break;
    case PROTO_FAIL:
        l->phase = NODESTAT_FAILED;
        break;
    case PROTO_EXIT:
        l->t_end = now;
        l->status = value;
        if (l->phase != NODESTAT_FAILED)
            l->phase = NODESTAT_EXITED;
        break;
    }
}

static uint64_t micros(double from, double to)
{
    return from > 0 && to > from ? (uint64_t)((to - from) * 1e6) : 0;
}

/* The host's 1-minute load average x 100, or 0. */
static uint32_t load_average(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double load = 0;

    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = 0;
        fclose(f);
    }
    return load > 0 && load < 4e7 ? (uint32_t)(load * 100 + 0.5) : 0;
}

/* Our VmRSS in KiB, or 0. */
static uint64_t resident_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kib = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

void nodestat_self(const struct nodestat_last *l, int busy, double now,
                   struct nodestat *s)
{
    double end = l->t_end > 0 ? l->t_end : now;

    *s = (struct nodestat){ .state = busy ? NODESTAT_BUSY : NODESTAT_UP,
                            .phase = l->phase, .job = l->job,
                            .rank = l->rank, .status = l->status,
                            .load100 = load_average(),
                            .rss_kib = resident_kib(),
                            .image_us = micros(l->t_launch, l->t_image),
                            .ago_us = micros(l->t_launch, now), .reason = "" };
    if (l->t_start > 0)
        s->run_us = micros(l->t_start, end);
}

void nodestat_down(struct nodestat *s, const char *why)
{
    size_t len = strlen(why);

    *s = (struct nodestat){ .state = NODESTAT_DOWN, .reason = why,
                            .reason_len = len > NODESTAT_REASON_MAX
                                          ? NODESTAT_REASON_MAX
                                          : (uint32_t)len };
}

int nodestat_encode(const struct nodestat *s, void *buf, size_t size,
                    char *err, size_t errlen)
{
    struct wire w = { .load100 = s->load100, .phase = s->phase,
                      .rss_kib = s->rss_kib, .job = s->job, .rank = s->rank,
                      .status = s->status, .image_us = s->image_us,
                      .run_us = s->run_us, .ago_us = s->ago_us };

    if (s->reason_len > NODESTAT_REASON_MAX
        || sizeof(w) + s->reason_len > size)
        return seterr(err, errlen, EMSGSIZE, "node record of %zu bytes "
                      "does not fit", sizeof(w) + s->reason_len);
    memcpy(buf, &w, sizeof(w));
    memcpy((char *)buf + sizeof(w), s->reason, s->reason_len);
    return (int)(sizeof(w) + s->reason_len);
}

int nodestat_decode(const void *data, size_t len, int32_t state,
                    struct nodestat *s, char *err, size_t errlen)
{
    const char *reason = (const char *)data + sizeof(struct wire);
    struct wire w;

    if (len < sizeof(w) || len - sizeof(w) > NODESTAT_REASON_MAX)
        return seterr(err, errlen, EPROTO, "node record of %zu bytes", len);
    if (state < NODESTAT_UP || state > NODESTAT_DOWN)
        return seterr(err, errlen, EPROTO, "node record with unknown state "
                      "%d", (int)state);
    memcpy(&w, data, sizeof(w));
    if (w.phase > NODESTAT_FAILED)
        return seterr(err, errlen, EPROTO, "node record with unknown phase "
                      "%u", w.phase);
    if (memchr(reason, '\0', len - sizeof(w)))
        return seterr(err, errlen, EPROTO, "node record with a NUL in its "
                      "reason");
    *s = (struct nodestat){ .state = (uint32_t)state, .phase = w.phase,
                            .load100 = w.load100, .rss_kib = w.rss_kib,
                            .job = w.job, .rank = w.rank,
                            .status = w.status, .image_us = w.image_us,
                            .run_us = w.run_us, .ago_us = w.ago_us,
                            .reason = reason,
                            .reason_len = (uint32_t)(len - sizeof(w)) };
    return 0;
}
