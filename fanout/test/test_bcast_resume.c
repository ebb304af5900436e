/* test_bcast_resume.c - a node told again to listen on the stream it
 * already listens on loses nothing (shm, two processes).
 *
 * An adopter that sends its ADOPT again (the answer was slow) makes the
 * orphan call bcast_resume a second time with the same stream, while the
 * adopter's chunks arrive.  The receiver here does that after every
 * completion it takes, reading completions one at a time so that others
 * wait in the completion queue: withdrawing the receives then would drop
 * the chunks already received into them, and the broadcast would never
 * end.  It must end with every byte right.
 */
#include "common/clock.h"
#include "common/tap.h"
#include "fanout/bcast.h"
#include "fanout/fabric.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (4UL << 20)
#define CHUNK (64UL << 10)
#define STREAM 12345u
#define DEADLINE_S 20.0

static unsigned char byte_at(size_t i)
{
    return (unsigned char)(i * 2654435761u >> 13);
}

/* The receiver: exit 0 if the whole buffer arrived right, 2 if it stalled,
 * 3 if it arrived wrong, 1 on a setup or fabric error. */
static int receive(const char *self, const char *root, int ready_fd,
                   int go_fd)
{
    char err[256], c = 'r';
    unsigned char *buf = malloc(LEN);
    struct fab *f = fab_create(self, err, sizeof(err));
    struct bcast_io io = { .stream = STREAM };
    struct bcast *b;
    double end = mono_now() + DEADLINE_S;

    /* The root's endpoint exists once go_fd has a byte. */
    if (!buf || !f || write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1
        || (io.parent = fab_add_peer(f, root, err, sizeof(err))) < 0
        || !(b = bcast_create(f, &io, buf, LEN, CHUNK, err, sizeof(err))))
        return 1;
    while (!bcast_have_all(b)) {
        struct fab_event ev;
        int n = fab_poll(f, &ev, 1, err, sizeof(err));

        if (n < 0 || bcast_step(b, err, sizeof(err)) < 0)
            return 1;
        if (n == 1) {
            if (bcast_event(b, &ev, err, sizeof(err)) < 0)
                return 1;
            if (bcast_resume(b, io.parent, STREAM, err, sizeof(err)) < 0)
                return 1;
        } else {
            fab_idle(f);
        }
        if (mono_now() > end)
            return 2;
    }
    for (size_t i = 0; i < LEN; i++)
        if (buf[i] != byte_at(i))
            return 3;
    return 0;
}

int main(void)
{
    char name[2][64], err[256], c;
    unsigned char *buf = malloc(LEN);
    int p[2], go[2], kid = -1, status = -1;
    struct bcast_io io = { .parent = -1, .kids = &kid, .nkids = 1,
                           .stream = STREAM };
    struct fab *f;
    pid_t pid;

    if (!buf || pipe(p) < 0 || pipe(go) < 0 || fab_init(err, sizeof(err)) < 0)
        return printf("Bail out! %s\n", err), 1;
    for (size_t i = 0; i < LEN; i++)
        buf[i] = byte_at(i);
    for (int i = 0; i < 2; i++)
        snprintf(name[i], sizeof(name[i]), "tbr%d.%d", (int)getpid(), i);
    if ((pid = fork()) == 0)
        _exit(receive(name[1], name[0], p[1], go[0]));
    if (read(p[0], &c, 1) != 1 || c != 'r')
        return printf("Bail out! no receiver\n"), 1;
    f = fab_create(name[0], err, sizeof(err));
    ok(f && (kid = fab_add_peer(f, name[1], err, sizeof(err))) >= 0
       && write(go[1], "g", 1) == 1, "a root and its child");
    ok(f && kid >= 0 && bcast_run(f, &io, buf, LEN, CHUNK, err,
                                  sizeof(err)) == 0,
       "the root sends 4 MiB in 64 KiB chunks%s%s", f ? "" : ": ",
       f ? "" : err);
    for (double end = mono_now() + DEADLINE_S; mono_now() < end;
         usleep(10000))
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "resumed on its own stream after every completion, the child gets "
       "every byte (exit status %d)", status);
    fab_destroy(f);
    free(buf);
    snprintf(err, sizeof(err), "/dev/shm/%s", name[1]);
    unlink(err);
    return done_testing();
}
