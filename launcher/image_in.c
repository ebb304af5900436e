/* image_in.c - the job's image on a node: the memory it arrives in (kept
 * from job to job), its part in the broadcast, its check against the
 * signed LAUNCH, and the start of our rank once it is in.
 */
#include "common/err.h"
#include "launcher/daemon_priv.h"
#include "vmadump/vmadump.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Huge-page size the image buffer is aligned to. */
#define HUGE_PAGE (2UL << 20)

/* A receiving broadcast with no data for this long fails our rank.  Far
 * above the 10 s of a plain broadcast: a parent may itself wait for its
 * own dead parent's adoption (adopt.c's bounds) before data flows again. */
#define RECV_STALL_S 60.0

static size_t huge_round(size_t len)
{
    return (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

/* Anonymous private memory for images up to size bytes, 2 MiB aligned
 * with huge pages requested: cross-memory copies into huge pages are
 * several times faster.  The first head bytes (0 or one huge page) get
 * small pages, faulted in only where an image lands: with a lead, the
 * first huge page would hold little of the image (a page of big4m's)
 * and never a whole huge page of it to move (its header comes first).
 * Returns it, or NULL. */
static void *new_image_buffer(size_t size, size_t head)
{
    char *area = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), *buf;

    if (area == MAP_FAILED)
        return NULL;
    buf = (char *)(((uintptr_t)area + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    if (buf > area)
        munmap(area, (size_t)(buf - area));
    munmap(buf + size, (size_t)(area + HUGE_PAGE - buf));
    madvise(buf + head, size - head, MADV_HUGEPAGE);
    /* Fault every page in now, before the broadcast: faults taken inside
     * the cross-memory copies of the first launch (a few GB at once on a
     * 1023-node cluster) stalled whole subtrees past the 10 s limit. */
    madvise(buf + head, size - head, MADV_POPULATE_WRITE);
    return buf;
}

void image_buffer_drop(struct daemon *d)
{
    if (d->image_buf)
        munmap(d->image_buf, d->image_buf_size);
    d->image_buf = d->image = NULL;
    d->image_buf_size = d->image_buf_head = d->image_lead = 0;
}

/* The buffer for this job's image: the one kept from the last job if it
 * is large enough — its pages are already allocated, and ranks started
 * from it hold copy-on-write pages of their own (vmad_spawn_image) —,
 * else a new one.  The image goes lead bytes into it, so that its
 * largest data extent moves into the rank by whole huge pages. */
void *image_buffer(struct daemon *d, size_t lead, size_t len, char *err,
                   size_t errlen)
{
    size_t need = huge_round(lead + len), head = lead ? HUGE_PAGE : 0;

    if (!d->image_buf || d->image_buf_size < need
        || d->image_buf_head != head) {
        image_buffer_drop(d);
        if (!(d->image_buf = new_image_buffer(need, head))) {
            seterr(err, errlen, ENOMEM, "mapping a %zu-byte image: %s", len,
                   strerror(errno));
            return NULL;
        }
        d->image_buf_size = need;
        d->image_buf_head = head;
    }
    if (head && (lead != d->image_lead || !d->image))
        madvise((char *)d->image_buf + lead, head - lead, MADV_POPULATE_WRITE);
    d->image_lead = lead;
    d->image = (char *)d->image_buf + lead;
    return d->image;
}

/* Is the image the one the LAUNCH was signed for?  Its checksum is
 * checked against its bytes already (vmad_check); this binds it to the
 * signed request, as far as a 64-bit checksum can (vmadump.h). */
static int image_is_signed(struct daemon *d, const void *buf, size_t len,
                           char *err, size_t errlen)
{
    struct job *j = d->job;
    uint64_t sum = vmad_image_checksum(buf, len);

    if (sum == j->image_sum)
        return 0;
    seterr(err, errlen, EACCES, "the image received is not the one the "
           "launch was signed for (checksum %#llx, signed %#llx)",
           (unsigned long long)sum, (unsigned long long)j->image_sum);
    daemon_log(d, "refused the image of job %#llx: %s",
           (unsigned long long)j->id, err);
    return -1;
}

/* The image is in: check it and start our rank from it. */
static void start_from_image(struct daemon *d)
{
    struct job *j = d->job;
    char err[512];

    j->image_done = 1;
    vmad_sum_feed(&j->sum, d->image, j->image_len);
    if (vmad_check_summed(d->image, j->image_len, &j->sum, err,
                          sizeof(err)) < 0
        || image_is_signed(d, d->image, j->image_len, err, sizeof(err)) < 0)
        goto fail;
    job_rec(j, PROTO_IMAGE, j->rank, 0, NULL, 0);
    if (j->pending_signal == SIGKILL)
        snprintf(err, sizeof(err), "cancelled before start");
    else if (rank_spawn(d, j->image_len, err, sizeof(err)) == 0)
        return;
fail:
    job_fail_own(j, errno ? errno : EIO, err);
}

/* Our part of the broadcast cannot go on: our rank fails; sends still in
 * flight to the children may read the buffer, which is kept. */
void image_broadcast_failed(struct daemon *d, const char *why)
{
    struct job *j = d->job;

    daemon_log(d, "broadcast failed: %s", why);
    bcast_destroy(j->bc);
    j->bc = NULL;
    if (!j->image_done) {
        j->image_done = 1;
        job_fail_own(j, EIO, why);
    }
}

/* Start taking part in the image broadcast, into buf (NULL: there is
 * none, err says why). */
void image_begin_broadcast(struct daemon *d, void *buf, size_t chunk,
                            char *err, size_t errlen)
{
    struct job *j = d->job;
    int peers[FAB_MAX_PEERS], n = 0;
    struct bcast_io io = { .parent = j->parent,
                           .stream = proto_stream(j->id, 0) };

    for (int k = 0; k < j->nkid && n < FAB_MAX_PEERS; k++)
        if (j->kid[k].state == KID_LIVE)
            peers[n++] = j->kid[k].peer;
    io.kids = peers;
    io.nkids = n;
    vmad_sum_init(&j->sum);
    if (!buf || !(j->bc = bcast_create(d->f, &io, buf, j->image_len, chunk,
                                       err, errlen))) {
        daemon_log(d, "cannot take the image: %s", err);
        j->image_done = 1;
        job_fail_own(j, errno ? errno : EIO, err);
    }
}

/* Move the broadcast on; start the rank once the image is in. */
void image_drive_broadcast(struct daemon *d)
{
    struct job *j = d->job;
    char err[512];

    if (!j || !j->bc)
        return;
    if (bcast_step(j->bc, err, sizeof(err)) < 0) {
        image_broadcast_failed(d, err);
        return;
    }
    /* Hash what has arrived soon after it lands: more of it is in cache
     * then than once the whole image is in. */
    if (!j->image_done)
        vmad_sum_feed(&j->sum, d->image, bcast_have_bytes(j->bc));
    /* The rank is forked from the buffer once the children have read it
     * too: a child's cross-memory read of a page shared with our rank
     * copies the page first (the kernel unshares pages it pins). */
    if (!j->image_done && bcast_done(j->bc))
        start_from_image(d);
    else if (!j->image_done && !j->parent_lost && !bcast_have_all(j->bc)
             && bcast_quiet(j->bc) > RECV_STALL_S) {
        snprintf(err, sizeof(err), "no image data from the parent for "
                 "%.0f s", RECV_STALL_S);
        image_broadcast_failed(d, err);
    }
}

/* Is a broadcast still moving data (poll the fabric closely)? */
int image_broadcasting(const struct daemon *d)
{
    return d->job && d->job->bc && !bcast_done(d->job->bc);
}
