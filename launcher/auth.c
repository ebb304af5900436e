/* auth.c - the cluster key, signing, verifying and the replay cache
 * (auth.h).  libsodium provides the HMAC-SHA256, the constant-time
 * comparison and the random nonces.
 *
 * Trailer offsets: magic 0, version 4, zero 6, time 8, nonce 16, MAC 32.
 */
#include "common/err.h"
#include "launcher/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CRED_MAGIC 0x55415856u  /* "VXAU" */
#define OFF_VERSION 4
#define OFF_ZERO 6
#define OFF_TIME 8
#define OFF_NONCE 16
#define OFF_MAC 32

#define NS_PER_S UINT64_C(1000000000)

_Static_assert(OFF_MAC + AUTH_MAC_LEN == AUTH_CRED_LEN, "trailer layout");
_Static_assert(crypto_auth_hmacsha256_KEYBYTES == AUTH_KEY_LEN, "key size");
_Static_assert(crypto_auth_hmacsha256_BYTES == AUTH_MAC_LEN, "MAC size");

/* One admitted credential. */
struct seen {
    uint64_t time_ns;
    unsigned char nonce[AUTH_NONCE_LEN];
};

struct auth {
    unsigned char key[AUTH_KEY_LEN];
    struct seen *seen;          /* AUTH_REPLAY_SLOTS, allocated on first use */
    size_t nseen;
    uint64_t floor_ns;          /* newest time an evicted entry had */
};

uint64_t auth_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

struct auth *auth_create_key(const unsigned char *key, char *err,
                             size_t errlen)
{
    struct auth *a;

    if (sodium_init() < 0) {
        seterr(err, errlen, EIO, "libsodium cannot start");
        return NULL;
    }
    if (!(a = calloc(1, sizeof(*a)))) {
        seterr(err, errlen, ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(a->key, key, AUTH_KEY_LEN);
    return a;
}

void auth_destroy(struct auth *a)
{
    int saved = errno;

    if (a) {
        sodium_memzero(a->key, sizeof(a->key));
        free(a->seen);
        free(a);
    }
    errno = saved;
}

/* The key file may be read only by us: a regular file we own that no one
 * else can read or write. */
static int check_key_file(int fd, const char *path, char *err,
                          size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return seterr(err, errlen, errno, "key file %s: %s", path,
                      strerror(errno));
    if (!S_ISREG(st.st_mode))
        return seterr(err, errlen, EINVAL, "key file %s is not a regular "
                      "file", path);
    if (st.st_uid != geteuid())
        return seterr(err, errlen, EPERM, "key file %s belongs to uid %u, "
                      "not to this user (uid %u)", path, (unsigned)st.st_uid,
                      (unsigned)geteuid());
    if (st.st_mode & 077)
        return seterr(err, errlen, EPERM, "key file %s has mode %04o: "
                      "others may read or change it (chmod 600 it)", path,
                      (unsigned)(st.st_mode & 07777));
    return 0;
}

/* 32 raw bytes, or 64 hex digits with an optional newline. */
static int parse_key(const char *buf, size_t n, unsigned char *key,
                     const char *path, char *err, size_t errlen)
{
    size_t bin = 0;

    if (n == AUTH_KEY_LEN) {
        memcpy(key, buf, AUTH_KEY_LEN);
        return 0;
    }
    if (n == 2 * AUTH_KEY_LEN + 1 && buf[n - 1] == '\n')
        n--;
    if (n == 2 * AUTH_KEY_LEN
        && sodium_hex2bin(key, AUTH_KEY_LEN, buf, n, NULL, &bin, NULL) == 0
        && bin == AUTH_KEY_LEN)
        return 0;
    return seterr(err, errlen, EINVAL, "key file %s holds %zu bytes: "
                  "expected %d random bytes or %d hex digits", path, n,
                  AUTH_KEY_LEN, 2 * AUTH_KEY_LEN);
}

static int read_key(const char *path, unsigned char *key, char *err,
                    size_t errlen)
{
    char buf[2 * AUTH_KEY_LEN + 2];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    ssize_t n;
    int ret;

    if (fd < 0)
        return seterr(err, errlen, errno, "key file %s: %s", path,
                      strerror(errno));
    if (check_key_file(fd, path, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0)
        return seterr(err, errlen, errno, "key file %s: %s", path,
                      strerror(errno));
    ret = parse_key(buf, (size_t)n, key, path, err, errlen);
    sodium_memzero(buf, sizeof(buf));
    return ret;
}

struct auth *auth_create(const char *keyfile, char *err, size_t errlen)
{
    unsigned char key[AUTH_KEY_LEN];
    struct auth *a = NULL;

    if (read_key(keyfile, key, err, errlen) == 0)
        a = auth_create_key(key, err, errlen);
    sodium_memzero(key, sizeof(key));
    return a;
}

int auth_key_create(const char *path, char *err, size_t errlen)
{
    unsigned char key[AUTH_KEY_LEN];
    int fd, ret = 0;

    if (sodium_init() < 0)
        return seterr(err, errlen, EIO, "libsodium cannot start");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return seterr(err, errlen, errno, "key file %s: %s", path,
                      strerror(errno));
    randombytes_buf(key, sizeof(key));
    if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key)) {
        ret = seterr(err, errlen, errno ? errno : EIO, "writing key file "
                     "%s: %s", path, strerror(errno ? errno : EIO));
        unlink(path);
    }
    sodium_memzero(key, sizeof(key));
    close(fd);
    return ret;
}

int auth_sign(const struct auth *a, void *msg, size_t len, size_t size,
              char *err, size_t errlen)
{
    unsigned char *t = (unsigned char *)msg + len;
    uint32_t magic = CRED_MAGIC;
    uint16_t version = AUTH_VERSION, zero = 0;
    uint64_t now = auth_now();

    if (len + AUTH_CRED_LEN > size || len + AUTH_CRED_LEN > INT32_MAX)
        return seterr(err, errlen, EMSGSIZE, "no room for a credential "
                      "after %zu bytes", len);
    memcpy(t, &magic, 4);
    memcpy(t + OFF_VERSION, &version, 2);
    memcpy(t + OFF_ZERO, &zero, 2);
    memcpy(t + OFF_TIME, &now, 8);
    randombytes_buf(t + OFF_NONCE, AUTH_NONCE_LEN);
    crypto_auth_hmacsha256(t + OFF_MAC, msg, len + OFF_MAC, a->key);
    return (int)(len + AUTH_CRED_LEN);
}

int auth_payload_len(const void *msg, size_t len, char *err, size_t errlen)
{
    const unsigned char *t;
    uint32_t magic;
    uint16_t version, zero;

    if (len < AUTH_CRED_LEN || len > INT32_MAX)
        return seterr(err, errlen, EBADMSG, "no credential");
    t = (const unsigned char *)msg + len - AUTH_CRED_LEN;
    memcpy(&magic, t, 4);
    memcpy(&version, t + OFF_VERSION, 2);
    memcpy(&zero, t + OFF_ZERO, 2);
    if (magic != CRED_MAGIC)
        return seterr(err, errlen, EBADMSG, "no credential");
    if (version != AUTH_VERSION || zero)
        return seterr(err, errlen, EBADMSG, "credential version %u, "
                      "expected %u", version, AUTH_VERSION);
    return (int)(len - AUTH_CRED_LEN);
}

int auth_verify(const struct auth *a, const void *msg, size_t len,
                struct auth_cred *cred, char *err, size_t errlen)
{
    int signed_len = auth_payload_len(msg, len, err, errlen);
    const unsigned char *t;

    if (signed_len < 0)
        return -1;
    t = (const unsigned char *)msg + signed_len;
    if (crypto_auth_hmacsha256_verify(t + OFF_MAC, msg,
                                      (size_t)signed_len + OFF_MAC,
                                      a->key) != 0)
        return seterr(err, errlen, EPERM, "credential does not verify "
                      "(wrong key or altered message)");
    cred->version = AUTH_VERSION;
    memcpy(&cred->time_ns, t + OFF_TIME, 8);
    memcpy(cred->nonce, t + OFF_NONCE, AUTH_NONCE_LEN);
    return signed_len;
}

/* Is the credential's time inside the window around now? */
static int check_time(const struct auth *a, uint64_t t, uint64_t now,
                      char *err, size_t errlen)
{
    uint64_t age = AUTH_MAX_AGE_S * NS_PER_S;

    if (t > now + AUTH_MAX_AHEAD_S * NS_PER_S)
        return seterr(err, errlen, ETIMEDOUT, "credential issued %.1f s in "
                      "the future", (double)(t - now) / 1e9);
    if (now > age && t < now - age)
        return seterr(err, errlen, ETIMEDOUT, "credential expired (issued "
                      "%.0f s ago, more than %d)", (double)(now - t) / 1e9,
                      AUTH_MAX_AGE_S);
    if (t <= a->floor_ns)
        return seterr(err, errlen, ETIMEDOUT, "credential older than the "
                      "oldest one still remembered");
    return 0;
}

int auth_admit(struct auth *a, const struct auth_cred *cred, uint64_t now_ns,
               char *err, size_t errlen)
{
    size_t slot = 0;

    if (check_time(a, cred->time_ns, now_ns, err, errlen) < 0)
        return -1;
    if (!a->seen && !(a->seen = calloc(AUTH_REPLAY_SLOTS, sizeof(*a->seen))))
        return seterr(err, errlen, ENOMEM, "out of memory");
    /* One pass: look for the nonce, and find the oldest entry, the one to
     * reuse when the cache is full. */
    for (size_t i = 0; i < a->nseen; i++) {
        if (!sodium_memcmp(a->seen[i].nonce, cred->nonce, AUTH_NONCE_LEN))
            return seterr(err, errlen, EALREADY, "replayed request (nonce "
                          "seen before)");
        if (a->seen[i].time_ns < a->seen[slot].time_ns)
            slot = i;
    }
    /* Forgetting a credential: nothing as old may be admitted again
     * (for an expired one the age check already says so). */
    if (a->nseen < AUTH_REPLAY_SLOTS)
        slot = a->nseen++;
    else if (a->seen[slot].time_ns > a->floor_ns)
        a->floor_ns = a->seen[slot].time_ns;
    a->seen[slot].time_ns = cred->time_ns;
    memcpy(a->seen[slot].nonce, cred->nonce, AUTH_NONCE_LEN);
    return 0;
}
