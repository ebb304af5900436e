/* daemon_wait.c - how long the node daemon's loop may sleep in epoll.
 *
 * shm cannot block and rings nothing when a send completes, so the loop
 * polls the fabric only while it must: at once after a turn that moved
 * something (what it handled may have more behind it), while a broadcast
 * moves data (fab_idle has waited on the doorbell already), and at
 * BUSY_WAIT_NS ticks while a send whose completion matters is in flight
 * or a batch waits to be sent.  Otherwise it sleeps until woken, or until
 * adopt_tick's next look or a query's next deadline.  A ring needs no
 * more polling than this: the sender posted before it rang, so the
 * message is there for the turn the ring starts.
 */
#include "common/clock.h"
#include "launcher/daemon_priv.h"

#include <time.h>

/* Poll interval with sends in flight: fab_idle's bound. */
#define BUSY_WAIT_NS FAB_IDLE_MAX_NS

/* How often a signal a child could not take yet is posted again: soon for
 * whoever pressed ^C, and few wake-ups while a dead child over tcp is
 * still being found out (30 s, adopt.c). */
#define SIG_RETRY_S 0.01

/* Sends of ours in flight that we must see complete soon: all but the
 * broadcast's once only the children's completions are left
 * (bcast_sleepy: each child rings once it has the image), and but an up
 * batch with nothing queued behind it while the job still runs (the next
 * event or adopt_tick's next look finds its completion).  The job's last
 * report is watched: its completion ends the job, which frees the image
 * and the job's fds. */
static int unrung_sends(struct daemon *d)
{
    int n = fab_sends_in_flight(d->f);
    struct job *j = d->job;

    if (j && j->bc && bcast_sleepy(j->bc))
        n -= (int)bcast_sends_in_flight(j->bc);
    if (d->sending && (!j || (j->batch.len == 0 && !job_reported(j))))
        n--;
    return n > 0;
}

/* Poll the fabric soon (something is moving) or sleep until woken? */
static int busy(struct daemon *d)
{
    if (unrung_sends(d) || !fab_can_sleep(d->f))
        return 1;
    return d->job && d->job->batch.len && !d->sending && !d->job->orphan
           && !d->job->parent_lost;
}

struct timespec *daemon_wait_time(struct daemon *d, int moved,
                                  struct timespec *ts)
{
    double next = adopt_next(d);
    long qns = nodeq_wait_ns(d->query, mono_now());

    if (qns >= 0 && (next < 0 || qns < next * 1e9))
        next = qns / 1e9;
    if (d->job && d->job->sigs_due && (next < 0 || next > SIG_RETRY_S))
        next = SIG_RETRY_S;

    if (moved) {
        *ts = (struct timespec){ 0, 0 };
    } else if (image_broadcasting(d) && !bcast_sleepy(d->job->bc)) {
        fab_idle(d->f);
        *ts = (struct timespec){ 0, 0 };
    } else if (busy(d)) {
        *ts = (struct timespec){ 0, BUSY_WAIT_NS };
    } else if (image_broadcasting(d)
               && (next < 0 || next > FAB_IDLE_QUIET_NS / 1e9)) {
        /* Waiting for the children's rings; bounded for one that cannot
         * ring us (an adopted node that had the image already). */
        *ts = (struct timespec){ 0, FAB_IDLE_QUIET_NS };
    } else if (next >= 0) {
        *ts = (struct timespec){ (time_t)next,
                                 (long)((next - (double)(time_t)next) * 1e9) };
    } else {
        return NULL;
    }
    return ts;
}
