/* netaddr.c - tcp endpoint names (netaddr.h). */
#include "common/err.h"
#include "fanout/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int netaddr_is_tcp(const char *name)
{
    return name && strchr(name, ':') != NULL;
}

/* "7400" -> 7400; -1 unless it is 1-5 digits and at most 65535. */
static long parse_port(const char *s)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9' || strlen(s) > 5)
        return -1;
    v = strtol(s, &end, 10);
    return *end || v > 65535 ? -1 : v;
}

int netaddr_parse(const char *name, struct sockaddr_in *sa, char *err,
                  size_t errlen)
{
    const char *colon = name ? strrchr(name, ':') : NULL;
    char ip[INET_ADDRSTRLEN];
    long port;

    if (!colon || (size_t)(colon - name) >= sizeof(ip))
        return seterr(err, errlen, EINVAL, "'%s' is not IP:PORT",
                      name ? name : "(null)");
    memcpy(ip, name, (size_t)(colon - name));
    ip[colon - name] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
        return seterr(err, errlen, EINVAL, "'%s': '%s' is not an IPv4 "
                      "address", name, ip);
    if ((port = parse_port(colon + 1)) < 0)
        return seterr(err, errlen, EINVAL, "'%s': '%s' is not a port",
                      name, colon + 1);
    sa->sin_port = htons((uint16_t)port);
    return 0;
}

char *netaddr_format(const struct sockaddr_in *sa, char *buf, size_t size)
{
    char ip[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
    snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
    return buf;
}

int netaddr_connect(const char *name)
{
    struct sockaddr_in sa;
    int s;

    if (netaddr_parse(name, &sa, NULL, 0) < 0)
        return -1;
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0
        || errno == EINPROGRESS)
        return s;
    close(s);
    return -1;
}

int netaddr_connect_result(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int e = 0;
    socklen_t len = sizeof(e);

    if (poll(&p, 1, 0) == 0)
        return EINPROGRESS;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        return errno;
    return e;
}

void netaddr_close_reset(int fd)
{
    struct linger now = { .l_onoff = 1, .l_linger = 0 };

    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    close(fd);
}
