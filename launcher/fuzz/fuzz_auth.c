/* fuzz_auth.c - libFuzzer target over the credential decoder: what a
 * daemon does with a down message before it trusts it (auth_verify, then
 * auth_admit, then proto_decode_down of the signed part), with the key
 * scripts/proto-seeds --sign uses, so signed seeds reach the decoder.
 * Two properties are checked on every input: the input signed verifies
 * back to its own length, and with any one byte changed it does not. */
#include "launcher/auth.h"
#include "launcher/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 32 bytes of 'k': the seeds' key (scripts/proto-seeds). */
static struct auth *fuzz_auth(void)
{
    static struct auth *a;
    unsigned char key[AUTH_KEY_LEN];

    if (!a) {
        memset(key, 'k', sizeof(key));
        if (!(a = auth_create_key(key, NULL, 0)))
            abort();
    }
    return a;
}

/* As a daemon: check, admit, decode. */
static void check_received(struct auth *a, const uint8_t *data, size_t size)
{
    struct auth_cred c;
    struct proto_down d;
    int n = auth_verify(a, data, size, &c, NULL, 0);

    if (n < 0) {
        auth_payload_len(data, size, NULL, 0);
        return;
    }
    auth_admit(a, &c, c.time_ns, NULL, 0);
    proto_decode_down(data, (size_t)n, &d, NULL, 0);
}

/* Sign the input as a payload; it must verify, and a change must not. */
static void check_signed(struct auth *a, const uint8_t *data, size_t size)
{
    static unsigned char msg[PROTO_MSG_MAX];
    struct auth_cred c;
    size_t at;
    int n;

    if (size > PROTO_MSG_MAX - AUTH_CRED_LEN)
        return;
    memcpy(msg, data, size);
    n = auth_sign(a, msg, size, sizeof(msg), NULL, 0);
    if (n != (int)(size + AUTH_CRED_LEN)
        || auth_verify(a, msg, (size_t)n, &c, NULL, 0) != (int)size)
        abort();
    at = size ? data[0] % (size_t)n : 0;
    msg[at] ^= 0x80;
    if (auth_verify(a, msg, (size_t)n, &c, NULL, 0) >= 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct auth *a = fuzz_auth();

    if (size > PROTO_MSG_MAX)
        return 0;
    check_received(a, data, size);
    check_signed(a, data, size);
    return 0;
}
