/* test_fabric_tcp.c - fabric endpoints over tcp;ofi_rxm on loopback.
 *
 * Two processes, each with an endpoint bound to 127.0.0.1 on a port the
 * kernel picks (tell each other the names through pipes): the receiver
 * sleeps on fab_fd until the sender's first message wakes it (the wait
 * object works, no doorbell), a 4 MiB buffer crosses in a broadcast of
 * 512 KiB chunks intact, and the receiver answers.  Also: names, the
 * mode mismatch refusal, and a send to a port where nobody listens
 * ending in ETIMEDOUT instead of hanging.
 */
#include "common/clock.h"
#include "common/tap.h"
#include "fanout/bcast.h"
#include "fanout/fabric.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (4UL << 20)
#define CHUNK (512UL << 10)
#define TAG_HELLO 0x1
#define TAG_ANSWER 0x2

/* The receiver's exit statuses. */
enum { RX_OK, RX_SETUP, RX_NO_WAKE, RX_BCAST, RX_DATA, RX_ANSWER };

static void fill(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 2654435761u >> 13);
}

static int wait_one(struct fab *f, void *ctx)
{
    struct fab_event ev[4];
    double end = mono_now() + 10;

    while (mono_now() < end) {
        int n = fab_poll(f, ev, 4, NULL, 0);

        if (n < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (ev[i].ctx == ctx)
                return 0;
        if (n == 0)
            fab_idle(f);
    }
    return -1;
}

/* Sleep on fab_fd (at most 10 s) until something arrives. */
static int sleep_until_woken(struct fab *f)
{
    struct pollfd p = { .fd = fab_fd(f), .events = POLLIN };

    while (fab_can_sleep(f))
        if (poll(&p, 1, 10000) <= 0)
            return -1;
    return 0;
}

static int receiver(int name_out, int name_in)
{
    struct fab *f = fab_create("127.0.0.1:0", NULL, 0);
    char peer[FAB_NAME_MAX + 1] = "", hello[8];
    unsigned char *buf = fab_buf_alloc(LEN, NULL, 0), *want = malloc(LEN);
    struct bcast_io io = { .parent = 0 };
    int p;

    if (!f || !buf || !want
        || write(name_out, fab_name(f), strlen(fab_name(f)) + 1) < 0
        || read(name_in, peer, sizeof(peer) - 1) <= 0
        || (p = fab_add_peer(f, peer, NULL, 0)) < 0
        || fab_recv(f, -1, TAG_HELLO, hello, sizeof(hello), hello) < 0)
        return RX_SETUP;
    io.parent = p;
    if (sleep_until_woken(f) < 0 || wait_one(f, hello) < 0)
        return RX_NO_WAKE;
    if (bcast_run(f, &io, buf, LEN, CHUNK, NULL, 0) < 0)
        return RX_BCAST;
    fill(want, LEN);
    if (memcmp(buf, want, LEN))
        return RX_DATA;
    if (fab_send_wait(f, p, TAG_ANSWER, "done", 5, buf, 10, NULL, NULL,
                      NULL, 0) < 0 || wait_one(f, buf) < 0)
        return RX_ANSWER;
    fab_destroy(f);
    return RX_OK;
}

static int ignore(void *arg, const struct fab_event *ev, char *err,
                  size_t errlen)
{
    (void)arg, (void)ev, (void)err, (void)errlen;
    return 0;
}

/* The answer's receive, if it completes while the broadcast still runs
 * (the receiver answers once it has the last chunk, maybe before our
 * last send's completion reaches us). */
struct answer {
    char text[8];
    int in;
};

static int note_answer(void *arg, const struct fab_event *ev, char *err,
                       size_t errlen)
{
    struct answer *a = arg;

    (void)err, (void)errlen;
    if (ev->ctx == a->text)
        a->in = 1;
    return 0;
}

static void sender(struct fab *f, pid_t pid, int name_in, int name_out)
{
    char peer[FAB_NAME_MAX + 1] = "", err[256] = "";
    unsigned char *buf = fab_buf_alloc(LEN, NULL, 0);
    int p = -1, status = -1;
    struct answer a = { "", 0 };
    struct bcast_io io = { .parent = -1, .kids = &p, .nkids = 1,
                           .other = note_answer, .arg = &a };
    char *answer = a.text;

    fill(buf, LEN);
    if (read(name_in, peer, sizeof(peer) - 1) <= 0
        || write(name_out, fab_name(f), strlen(fab_name(f)) + 1) < 0)
        diag("pipes: %s", strerror(errno));
    ok((p = fab_add_peer(f, peer, err, sizeof(err))) >= 0,
       "the receiver's address %s is a peer", peer);
    fab_recv(f, -1, TAG_ANSWER, answer, sizeof(a.text), answer);
    /* Let the receiver fall asleep on its fd first. */
    usleep(200000);
    if (!ok(fab_send_wait(f, p, TAG_HELLO, "hi", 3, f, 10, ignore, NULL, err,
                          sizeof(err)) == 0, "hello posted"))
        diag("%s", err);
    if (!ok(bcast_run(f, &io, buf, LEN, CHUNK, err, sizeof(err)) == 0,
            "4 MiB broadcast in 512 KiB chunks over tcp"))
        diag("%s", err);
    ok((a.in || wait_one(f, answer) == 0) && !strcmp(answer, "done"),
       "the receiver's answer arrives");
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == RX_OK,
       "the receiver woke on fab_fd and got the whole buffer intact "
       "(status %#x)", status);
    fab_buf_free(buf, LEN);
}

static void test_names(struct fab *f)
{
    char err[256] = "";
    struct fab *g;

    ok(strncmp(fab_name(f), "127.0.0.1:", 10) == 0
       && strcmp(fab_name(f), "127.0.0.1:0") != 0,
       "port 0 binds a port the kernel picked: %s", fab_name(f));
    errno = 0;
    ok(fab_add_peer(f, "node17", err, sizeof(err)) < 0 && errno == EINVAL,
       "an shm name is refused as a tcp peer: %s", err);
    ok(fab_add_peer(f, "127.0.0.1:7x", err, sizeof(err)) < 0
       && errno == EINVAL, "a bad address is refused: %s", err);
    g = fab_create(fab_name(f), err, sizeof(err));
    ok(!g, "binding an address in use fails: %s", err);
    fab_destroy(g);
}

/* A port nobody listens on: ours, closed again. */
static void test_nobody_listens(struct fab *f)
{
    struct fab *g = fab_create("127.0.0.1:0", NULL, 0);
    char name[FAB_NAME_MAX + 1], err[256] = "";
    int p;

    strcpy(name, g ? fab_name(g) : "127.0.0.1:1");
    fab_destroy(g);
    p = fab_add_peer(f, name, err, sizeof(err));
    errno = 0;
    ok(p >= 0 && fab_send_wait(f, p, TAG_HELLO, "x", 2, err, 1.0, ignore,
                               NULL, err, sizeof(err)) < 0
       && errno == ETIMEDOUT, "a send to %s where nobody listens ends "
       "in ETIMEDOUT", name);
}

int main(void)
{
    int to_parent[2], to_child[2];
    struct fab *f;
    pid_t pid;

    if (pipe(to_parent) < 0 || pipe(to_child) < 0)
        return 1;
    if ((pid = fork()) == 0) {
        alarm(60);
        _exit(receiver(to_parent[1], to_child[0]));
    }
    f = fab_create("127.0.0.1:0", NULL, 0);
    if (!ok(f != NULL, "an endpoint on 127.0.0.1:0")) {
        kill(pid, SIGKILL);
        return done_testing();
    }
    test_names(f);
    sender(f, pid, to_parent[0], to_child[1]);
    test_nobody_listens(f);
    fab_destroy(f);
    return done_testing();
}
