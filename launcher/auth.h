/* auth.h - credentials on the requests that travel down the tree.
 *
 * Every down message (LAUNCH, SIGNAL, STDIN) is signed by its originator,
 * vexec, with the cluster key and carries the credential as a trailer:
 *
 *   signed bytes (proto header + body) | magic "VXAU" u32 | version u16 |
 *   0 u16 | issue time u64 (CLOCK_REALTIME, ns) | nonce 16 bytes |
 *   HMAC-SHA256 32 bytes
 *
 * The MAC covers every byte before it: the proto header (type, job,
 * length), the body, the version, the time and the nonce.  The gateway
 * and every daemon pass the whole message on unchanged; each daemon checks
 * it itself (auth_verify, then auth_admit) before it acts on it or
 * forwards it, so no node takes a request on its parent's word.
 *
 * The key is 32 bytes (libsodium's crypto_auth_hmacsha256 key), in a file
 * of exactly 32 raw bytes or 64 hex digits, owned by the caller, a regular
 * file, and neither readable nor writable by group or others.
 *
 * Errors: -1 with errno set and a one-line message in err (may be NULL).
 */
#ifndef VEXEC_AUTH_H
#define VEXEC_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_LEN 32
#define AUTH_NONCE_LEN 16
#define AUTH_MAC_LEN 32

/* The trailer: magic, version, padding, time, nonce, MAC. */
#define AUTH_CRED_LEN (4 + 2 + 2 + 8 + AUTH_NONCE_LEN + AUTH_MAC_LEN)

#define AUTH_VERSION 1

/* How old a credential may be: a request is signed just before it is
 * sent and crosses a 1023-node tree in seconds, so a minute leaves room
 * for a loaded machine and small clock differences between hosts; a
 * recorded request can be replayed only within it (and then the nonce
 * cache refuses it). */
#define AUTH_MAX_AGE_S 60

/* How far in the future an issue time may be: clocks of real hosts
 * differ a little; more than this is a forged or broken clock. */
#define AUTH_MAX_AHEAD_S 10

/* Nonces remembered per daemon.  A daemon sees one LAUNCH per job, a few
 * signals, and (node 0) one STDIN message per piece of input; when the
 * cache is full the oldest entry is dropped and nothing older than it is
 * accepted any more, so a replay can never slip through an eviction. */
#define AUTH_REPLAY_SLOTS 1024

/* What a credential says about its request. */
struct auth_cred {
    uint16_t version;
    uint64_t time_ns;
    unsigned char nonce[AUTH_NONCE_LEN];
};

struct auth;

/* A signer and checker holding the key in keyfile (see above).  Returns
 * it, or NULL: err names the file and what is wrong with it (missing, not
 * a regular file, not ours, readable or writable by others, wrong size). */
struct auth *auth_create(const char *keyfile, char *err, size_t errlen);

/* The same with the key given as AUTH_KEY_LEN bytes (tests, fuzzing). */
struct auth *auth_create_key(const unsigned char *key, char *err,
                             size_t errlen);

/* Free a; accepts NULL, keeps errno.  The key is wiped. */
void auth_destroy(struct auth *a);

/* Write a new key file at path: AUTH_KEY_LEN random bytes, mode 0600,
 * refused if the file exists.  Returns 0 or -1. */
int auth_key_create(const char *path, char *err, size_t errlen);

/* Append a credential (now, a fresh random nonce) to the len bytes of msg,
 * whose buffer holds size bytes.  Returns the new length, or -1
 * (EMSGSIZE: no room). */
int auth_sign(const struct auth *a, void *msg, size_t len, size_t size,
              char *err, size_t errlen);

/* Where the credential of a len-byte message starts, i.e. the length of
 * the signed part, if it has a credential trailer of our version; the MAC
 * is not checked (the gateway, which holds no key, uses this to read the
 * request it relays).  Returns it, or -1 (EBADMSG). */
int auth_payload_len(const void *msg, size_t len, char *err, size_t errlen);

/* Check the credential of a len-byte message: present, our version, MAC
 * right for our key.  Stateless.  Returns the length of the signed part
 * and fills *cred, or -1 with errno EBADMSG (no or malformed credential)
 * or EPERM (the MAC does not match: wrong key or changed bytes). */
int auth_verify(const struct auth *a, const void *msg, size_t len,
                struct auth_cred *cred, char *err, size_t errlen);

/* Admit a verified credential at time now_ns (auth_now()): refused if it
 * was issued more than AUTH_MAX_AGE_S before or AUTH_MAX_AHEAD_S after
 * now, or is older than the oldest nonce the cache had to forget, or its
 * nonce was admitted before.  Remembers it.  Call only after auth_verify
 * succeeded, so forged credentials cannot fill the cache.  Returns 0, or
 * -1 with errno ETIMEDOUT (too old or too new) or EALREADY (a replay). */
int auth_admit(struct auth *a, const struct auth_cred *cred, uint64_t now_ns,
               char *err, size_t errlen);

/* CLOCK_REALTIME in nanoseconds: the clock credentials are issued by. */
uint64_t auth_now(void);

#endif
