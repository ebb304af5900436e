/* rank.c - the daemon's rank: its start from the image, and its stdio (output read into whole lines for the up batch, stdin
 * written to rank 0).
 */
#include "common/err.h"
#include "launcher/daemon_priv.h"
#include "launcher/sweep.h"
#include "vmadump/vmadump.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

static void stream_emit(struct job *j, struct stream *s, size_t len)
{
    job_rec(j, PROTO_OUT, j->rank, s->id, s->buf, len);
    memmove(s->buf, s->buf + len, s->len - len);
    s->len -= len;
}

/* Read what the pipe has; pass on whole lines, or a full buffer's worth
 * of a line longer than the buffer, or the rest at end of file. */
void rank_read_stream(struct daemon *d, struct stream *s)
{
    struct job *j = d->job;
    ssize_t n;

    while (s->fd >= 0) {
        char *nl;

        n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            epoll_ctl(d->ep, EPOLL_CTL_DEL, s->fd, NULL);
            close(s->fd);
            s->fd = -1;
            if (s->len)
                stream_emit(j, s, s->len);
            return;
        }
        s->len += (size_t)n;
        if ((nl = memrchr(s->buf, '\n', s->len)))
            stream_emit(j, s, (size_t)(nl - s->buf) + 1);
        else if (s->len == sizeof(s->buf))
            stream_emit(j, s, s->len);
    }
}

void rank_end_leftovers(struct daemon *d)
{
    struct job *j = d->job;
    int n;

    if (j->pid <= 0 || j->swept || !j->rank_exited)
        return;
    j->swept = 1;
    /* Everything the rank started and left is ours now, as an orphan or
     * below one, whatever group, session or cgroup it went to; then,
     * should anything else be left, the rank's group (its zombie still
     * holds the group's id) and our cgroup. */
    n = sweep_descendants(j->pid);
    kill(-j->pid, SIGKILL);
    n = (n > 0 ? n : 0) + sweep_leftovers();
    if (n > 0)
        daemon_log(d, "job %#llx: ended %d process%s its rank left running",
                   (unsigned long long)j->id, n, n == 1 ? "" : "es");
    while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Our rank has exited and its pipes are drained: end what it left
 * running, then report its status, so that none of it outlives vexec's
 * answer by more than its SIGKILL's delivery. */
void rank_report_exit(struct daemon *d)
{
    struct job *j = d->job;

    if (j->own_done || !j->rank_exited || j->out.fd >= 0 || j->errs.fd >= 0)
        return;
    rank_end_leftovers(d);
    job_rec(j, PROTO_EXIT, j->rank, j->rank_status, NULL, 0);
    job_note_exit(j, j->rank, j->rank_status);
    j->own_done = 1;
}

/* Write pending stdin bytes to rank 0; close its stdin at end of file. */
void rank_write_stdin(struct daemon *d)
{
    struct job *j = d->job;

    while (j->in_fd >= 0 && j->in.len) {
        ssize_t n = write(j->in_fd, j->in.buf, j->in.len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {                /* EPIPE: rank 0 closed its stdin */
            j->in.len = 0;
            j->in_eof = 1;
            break;
        }
        memmove(j->in.buf, j->in.buf + n, j->in.len - (size_t)n);
        j->in.len -= (size_t)n;
    }
    if (j->in_fd >= 0 && j->in_eof && j->in.len == 0) {
        epoll_ctl(d->ep, EPOLL_CTL_DEL, j->in_fd, NULL);
        close(j->in_fd);
        j->in_fd = -1;
    }
}


int rank_watch(struct daemon *d, int fd, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.fd = fd };

    return epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* A new pipe end's status flags are its access mode only, which F_SETFL
 * ignores: no F_GETFL first. */
static int set_nonblock(int fd)
{
    return fcntl(fd, F_SETFL, O_NONBLOCK);
}

/* Pipes for the rank's stdio: ours are non-blocking and close-on-exec. */
static int make_pipes(struct job *j, int child[3])
{
    int out[2], errp[2], in[2] = { -1, -1 };

    if (pipe2(out, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(errp, O_CLOEXEC) < 0)
        goto close_out;
    if (j->rank == 0 && pipe2(in, O_CLOEXEC) < 0)
        goto close_err;
    j->out = (struct stream){ .fd = out[0], .id = 1 };
    j->errs = (struct stream){ .fd = errp[0], .id = 2 };
    j->in_fd = in[1];
    child[0] = in[0];
    child[1] = out[1];
    child[2] = errp[1];
    set_nonblock(out[0]);
    set_nonblock(errp[0]);
    if (in[1] >= 0)
        set_nonblock(in[1]);
    return 0;
close_err:
    close(errp[0]);
    close(errp[1]);
close_out:
    close(out[0]);
    close(out[1]);
    return -1;
}

int rank_spawn(struct daemon *d, size_t len, char *err, size_t errlen)
{
    struct job *j = d->job;
    struct vmad_restore_opts ro = { .rank = j->rank, .verified = 1,
                                    .label = d->o->node };
    /* The rank gets its own process group, so a signal for the job
     * reaches whatever it starts too.  A daemon killed outright can
     * neither report its rank nor end it: the kernel ends it then. */
    struct vmad_spawn_io io = { .new_pgroup = 1, .lean = 1,
                                .lead = d->image_lead, .death_sig = SIGKILL };
    int ret;

    if (make_pipes(j, io.fds) < 0)
        return seterr(err, errlen, errno, "pipe: %s", strerror(errno));
    ret = vmad_spawn_image(d->image, len, &ro, &io, &j->pid, err, errlen);
    for (int i = 0; i < 3; i++)
        if (io.fds[i] >= 0)
            close(io.fds[i]);
    if (ret < 0)
        return -1;
    rank_watch(d, j->out.fd, EPOLLIN);
    rank_watch(d, j->errs.fd, EPOLLIN);
    if (j->in_fd >= 0)
        rank_watch(d, j->in_fd, EPOLLOUT | EPOLLET);   /* no spin while stdin is empty */
    job_rec(j, PROTO_STARTED, j->rank, 0, NULL, 0);
    if (j->pending_signal)
        kill(-j->pid, j->pending_signal);
    return 0;
}
