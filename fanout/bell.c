/* bell.c - abstract socket names and liveness checks (bell.h). */
#include "fanout/bell.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

socklen_t bell_sockaddr(const char *kind, const char *name,
                        struct sockaddr_un *sa)
{
    int n;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "vexec-%s.%s",
                 kind, name);
    if (n > (int)sizeof(sa->sun_path) - 2)
        n = (int)sizeof(sa->sun_path) - 2;
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int bell_bound(const char *kind, const char *name, int type)
{
    struct sockaddr_un sa;
    socklen_t len = bell_sockaddr(kind, name, &sa);
    int s, ret;

    if ((s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) < 0)
        return 1;       /* cannot tell: do not call a live peer dead */
    /* Connecting sends nothing a datagram receiver would see; it fails
     * when no one is bound to the address.  A listening seqpacket socket
     * sees a connection that closes at once. */
    ret = connect(s, (struct sockaddr *)&sa, len);
    close(s);
    return ret == 0 || errno != ECONNREFUSED;
}

int bell_alive(const char *name)
{
    return bell_bound("bell", name, SOCK_DGRAM);
}
