/* test_auth.c - credentials: a signed request verifies and decodes; no
 * changed, cut or lengthened byte, wrong key or missing credential gets
 * through; stale, future and replayed credentials are refused, also after
 * the replay cache overflows; key files are taken only when they are
 * exactly a key and private. */
#include "common/tap.h"
#include "launcher/auth.h"
#include "launcher/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS 1000000000ull

static const unsigned char key1[AUTH_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const unsigned char key2[AUTH_KEY_LEN] = "0123456789abcdef0123456789abcdX";

static const struct proto_launch launch = {
    .nnodes = 4, .image_len = 4894720, .image_sum = 0x1122334455667788ull,
    .chunk = 524288, .tree = "kary:2", .origin = "vx1.gw",
    .nodes = "vx1.n[0-3]",
};

/* A signed LAUNCH in msg; returns its length. */
static int signed_launch(struct auth *a, char *msg, size_t size)
{
    int len = proto_encode_launch(msg, size, 42, &launch, NULL, 0);

    return auth_sign(a, msg, (size_t)len, size, NULL, 0);
}

static void test_sign_verify(struct auth *a, struct auth *other)
{
    static char msg[PROTO_MSG_MAX];
    struct auth_cred c;
    struct proto_down d;
    int len = signed_launch(a, msg, sizeof(msg)), n;
    int flips = 0, cuts = 0;
    char err[256] = "";

    n = auth_verify(a, msg, (size_t)len, &c, err, sizeof(err));
    ok(n == len - AUTH_CRED_LEN
       && proto_decode_down(msg, (size_t)n, &d, NULL, 0) == 0
       && d.launch.image_sum == launch.image_sum && d.job == 42,
       "a signed LAUNCH verifies and decodes");
    ok(auth_verify(other, msg, (size_t)len, &c, err, sizeof(err)) < 0
       && errno == EPERM, "another key's check refuses it: %s", err);
    for (int i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            msg[i] ^= (char)(1 << bit);
            flips += auth_verify(a, msg, (size_t)len, &c, NULL, 0) < 0;
            msg[i] ^= (char)(1 << bit);
        }
    }
    ok(flips == 8 * len, "every one of the %d single-bit changes is refused "
       "(%d)", 8 * len, flips);
    for (int i = 0; i < len; i++)
        cuts += auth_verify(a, msg, (size_t)i, &c, NULL, 0) < 0;
    ok(cuts == len, "every truncation is refused (%d/%d)", cuts, len);
    msg[len] = 0;
    ok(auth_verify(a, msg, (size_t)len + 1, &c, NULL, 0) < 0,
       "a byte appended is refused");
    ok(auth_verify(a, msg, (size_t)len, &c, NULL, 0) == n,
       "the untouched message still verifies");
    len = proto_encode_launch(msg, sizeof(msg), 42, &launch, NULL, 0);
    ok(auth_verify(a, msg, (size_t)len, &c, err, sizeof(err)) < 0
       && errno == EBADMSG, "an unsigned LAUNCH is refused: %s", err);
    ok(auth_payload_len(msg, 3, NULL, 0) < 0 && errno == EBADMSG,
       "a 3-byte message has no credential");
}

static void test_room(struct auth *a)
{
    static char msg[PROTO_MSG_MAX], data[PROTO_STDIN_MAX];
    struct auth_cred c;
    int len = proto_encode_stdin(msg, sizeof(msg), 1, data, sizeof(data),
                                 NULL, 0);

    len = auth_sign(a, msg, (size_t)len, sizeof(msg), NULL, 0);
    ok(len == PROTO_MSG_MAX
       && auth_verify(a, msg, (size_t)len, &c, NULL, 0) > 0,
       "the largest STDIN piece, signed, fills a receive buffer exactly");
    ok(auth_sign(a, msg, sizeof(msg) - AUTH_CRED_LEN + 1, sizeof(msg), NULL,
                 0) < 0 && errno == EMSGSIZE,
       "signing without room for the credential is refused");
}

static struct auth_cred cred_at(uint64_t t, unsigned n)
{
    struct auth_cred c = { .version = AUTH_VERSION, .time_ns = t };

    memcpy(c.nonce, &n, sizeof(n));
    return c;
}

static void test_admit(struct auth *a)
{
    uint64_t now = auth_now();
    struct auth_cred c = cred_at(now, 1);
    char err[256] = "";

    ok(auth_admit(a, &c, now, err, sizeof(err)) == 0, "a fresh credential "
       "is admitted");
    ok(auth_admit(a, &c, now + NS, err, sizeof(err)) < 0
       && errno == EALREADY, "the same one a second later is a replay: %s",
       err);
    c = cred_at(now, 2);
    ok(auth_admit(a, &c, now + (AUTH_MAX_AGE_S + 1) * NS, err,
                  sizeof(err)) < 0 && errno == ETIMEDOUT,
       "one %d s old is refused: %s", AUTH_MAX_AGE_S + 1, err);
    c = cred_at(now + (AUTH_MAX_AHEAD_S + 1) * NS, 3);
    ok(auth_admit(a, &c, now, err, sizeof(err)) < 0 && errno == ETIMEDOUT,
       "one issued %d s ahead is refused: %s", AUTH_MAX_AHEAD_S + 1, err);
    c = cred_at(now - (AUTH_MAX_AGE_S - 1) * NS, 4);
    ok(auth_admit(a, &c, now, NULL, 0) == 0,
       "one %d s old is admitted", AUTH_MAX_AGE_S - 1);
}

/* Overflow the cache: the forgotten credentials must stay refused. */
static void test_overflow(struct auth *a)
{
    uint64_t now = auth_now();
    int admitted = 0, replays = 0;
    struct auth_cred c;

    for (unsigned i = 0; i < AUTH_REPLAY_SLOTS + 100; i++) {
        c = cred_at(now + i, 1000 + i);
        admitted += auth_admit(a, &c, now + i, NULL, 0) == 0;
    }
    ok(admitted == AUTH_REPLAY_SLOTS + 100, "%d distinct credentials in a "
       "row are admitted (%d)", AUTH_REPLAY_SLOTS + 100, admitted);
    for (unsigned i = 0; i < AUTH_REPLAY_SLOTS + 100; i++) {
        c = cred_at(now + i, 1000 + i);
        replays += auth_admit(a, &c, now + 200000, NULL, 0) < 0;
    }
    ok(replays == AUTH_REPLAY_SLOTS + 100, "each of them replayed after the "
       "cache overflowed is refused (%d)", replays);
    c = cred_at(now + 300000, 99999);
    ok(auth_admit(a, &c, now + 300000, NULL, 0) == 0,
       "a new credential is still admitted");
}

static char dir[] = "/tmp/test_auth-XXXXXX";

static const char *write_key(const char *name, const void *data, size_t len,
                             mode_t mode)
{
    static char path[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        diag("writing %s: %s", path, strerror(errno));
    fchmod(fd, mode);
    close(fd);
    return path;
}

/* Does the key in path sign what key1 verifies? */
static int is_key1(const char *path)
{
    static char msg[PROTO_MSG_MAX];
    struct auth *a = auth_create(path, NULL, 0), *b = auth_create_key(key1,
                                                                    NULL, 0);
    struct auth_cred c;
    int len = a ? signed_launch(a, msg, sizeof(msg)) : -1;
    int same = len > 0 && auth_verify(b, msg, (size_t)len, &c, NULL, 0) > 0;

    auth_destroy(a);
    auth_destroy(b);
    return same;
}

static int refused(const char *path, const char *what)
{
    char err[256] = "";
    struct auth *a = auth_create(path, err, sizeof(err));

    auth_destroy(a);
    diag("%s", err);
    return !a && strstr(err, path) && strstr(err, what);
}

static void test_key_files(void)
{
    char hex[2 * AUTH_KEY_LEN + 2], p[300], err[256] = "";
    struct stat st;

    for (int i = 0; i < AUTH_KEY_LEN; i++)
        sprintf(hex + 2 * i, "%02x", key1[i]);
    strcat(hex, "\n");
    ok(is_key1(write_key("raw", key1, AUTH_KEY_LEN, 0600)),
       "a 0600 file of 32 raw bytes is the key");
    ok(is_key1(write_key("hex", hex, strlen(hex), 0400)),
       "a 0400 file of 64 hex digits and a newline is the same key");
    ok(refused(write_key("open", key1, AUTH_KEY_LEN, 0644), "mode 0644"),
       "a key file readable by others is refused");
    ok(refused(write_key("group", key1, AUTH_KEY_LEN, 0620), "mode 0620"),
       "a key file writable by the group is refused");
    ok(refused(write_key("short", key1, AUTH_KEY_LEN - 1, 0600), "31 bytes"),
       "a 31-byte key file is refused");
    ok(refused(write_key("badhex", "zz", 2, 0600), "2 bytes"),
       "a 2-byte key file is refused");
    ok(refused(dir, "not a regular file"), "a directory is refused");
    snprintf(p, sizeof(p), "%s/missing", dir);
    ok(refused(p, "No such file"), "a missing key file is refused");
    if (geteuid() == 0) {
        const char *path = write_key("theirs", key1, AUTH_KEY_LEN, 0600);

        ok(chown(path, 65534, 65534) == 0 && refused(path, "uid 65534"),
           "a key file of another user is refused");
    } else {
        ok(1, "# skip a key file of another user: chown needs root");
    }
    snprintf(p, sizeof(p), "%s/new", dir);
    ok(auth_key_create(p, err, sizeof(err)) == 0 && stat(p, &st) == 0
       && (st.st_mode & 07777) == 0600 && st.st_size == AUTH_KEY_LEN,
       "auth_key_create makes a 0600 file of 32 bytes");
    ok(auth_key_create(p, err, sizeof(err)) < 0 && errno == EEXIST,
       "and refuses to overwrite it: %s", err);
}

static void remove_dir(void)
{
    static const char *const files[] = { "raw", "hex", "open", "group",
                                         "short", "badhex", "theirs",
                                         "new" };
    char p[300];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    struct auth *a = auth_create_key(key1, NULL, 0);
    struct auth *b = auth_create_key(key2, NULL, 0);

    if (!a || !b || !mkdtemp(dir)) {
        ok(0, "set up: %s", strerror(errno));
        return done_testing();
    }
    test_sign_verify(a, b);
    test_room(a);
    test_admit(a);
    auth_destroy(a);
    a = auth_create_key(key1, NULL, 0);
    test_overflow(a);
    test_key_files();
    remove_dir();
    auth_destroy(a);
    auth_destroy(b);
    return done_testing();
}
