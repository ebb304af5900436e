/* hosts.c - host lists and files, name resolution, reachability
 * (hosts.h). */
#include "common/clock.h"
#include "common/err.h"
#include "fanout/netaddr.h"
#include "launcher/hostlist.h"
#include "launcher/hosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections a probe opens at once: well under the usual 1024-fd limit. */
#define PROBE_BATCH 256

/* Resolve host to its first IPv4 address. */
static int resolve_ip(const char *host, struct in_addr *ip, char *err,
                      size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_INET,
                              .ai_socktype = SOCK_STREAM }, *ai;
    int ret = getaddrinfo(host, NULL, &hints, &ai);

    if (ret)
        return seterr(err, errlen, ENOENT, "host '%s': %s", host,
                      gai_strerror(ret));
    *ip = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    freeaddrinfo(ai);
    return 0;
}

/* "name:N" -> name (cut in place) and N; "name" -> 1. */
static int split_count(char *item, int *count, char *err, size_t errlen)
{
    char *colon = strrchr(item, ':'), *end;
    long v;

    *count = 1;
    if (!colon)
        return 0;
    errno = 0;
    v = strtol(colon + 1, &end, 10);
    if (colon == item || colon[1] < '0' || colon[1] > '9' || *end || errno)
        return seterr(err, errlen, EINVAL, "'%s': not HOST or HOST:N",
                      item);
    if (v < 1 || v > HOSTS_PER_HOST_MAX)
        return seterr(err, errlen, EINVAL, "'%s': N is the number of "
                      "daemons on the host, 1 to %d (their ports start at "
                      "--port)", item, HOSTS_PER_HOST_MAX);
    *colon = '\0';
    *count = (int)v;
    return 0;
}

static int grow(struct hosts *h, int more)
{
    char **ep = realloc(h->endpoint, sizeof(*ep) * (size_t)(h->n + more));
    char **lb;

    if (ep)
        h->endpoint = ep;
    lb = ep ? realloc(h->label, sizeof(*lb) * (size_t)(h->n + more)) : NULL;
    if (lb)
        h->label = lb;
    return ep && lb ? 0 : -1;
}

/* Append count daemons of host at ip, ports base.. */
static int add_daemons(struct hosts *h, const char *host, struct in_addr ip,
                       int count, int base, char *err, size_t errlen)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = ip };
    char name[NETADDR_STRLEN];

    if (base + count - 1 > 65535)
        return seterr(err, errlen, EINVAL, "%s: %d daemons from port %d "
                      "pass port 65535", host, count, base);
    if (grow(h, count) < 0)
        return seterr(err, errlen, ENOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
        sa.sin_port = htons((uint16_t)(base + i));
        h->endpoint[h->n] = strdup(netaddr_format(&sa, name, sizeof(name)));
        if (asprintf(&h->label[h->n], "%s:%d", host, base + i) < 0)
            h->label[h->n] = NULL;
        if (!h->endpoint[h->n] || !h->label[h->n]) {
            free(h->endpoint[h->n]);
            free(h->label[h->n]);
            return seterr(err, errlen, ENOMEM, "out of memory");
        }
        h->n++;
    }
    return 0;
}

/* Drop the daemons past keep (a failed call's partial additions). */
static void truncate_hosts(struct hosts *h, int keep)
{
    while (h->n > keep) {
        h->n--;
        free(h->endpoint[h->n]);
        free(h->label[h->n]);
    }
}

int hosts_add_list(struct hosts *h, const char *list, int base, char *err,
                   size_t errlen)
{
    struct hostlist *l = hostlist_create(list, err, errlen);
    int before = h->n;

    if (!l)
        return -1;
    for (int i = 0; i < hostlist_count(l); i++) {
        char item[HOSTLIST_MAX_NAME + 1];
        struct in_addr ip;
        int count;

        snprintf(item, sizeof(item), "%s", hostlist_nth(l, i));
        if (split_count(item, &count, err, errlen) < 0
            || resolve_ip(item, &ip, err, errlen) < 0
            || add_daemons(h, item, ip, count, base, err, errlen) < 0) {
            truncate_hosts(h, before);
            hostlist_destroy(l);
            return -1;
        }
    }
    hostlist_destroy(l);
    return 0;
}

/* A host file line without its comment and surrounding blanks. */
static char *trim_line(char *line)
{
    char *end;

    line[strcspn(line, "#\r\n")] = '\0';
    line += strspn(line, " \t");
    end = line + strlen(line);
    while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    return line;
}

/* One daemon a host file added: its endpoint's "IP" (length), its index
 * in the list, and its number among its host's daemons. */
struct slot {
    const char *endpoint;
    size_t iplen;
    int at, k;
};

static bool same_host(const struct slot *x, const struct slot *y)
{
    return x->iplen == y->iplen
           && !memcmp(x->endpoint, y->endpoint, x->iplen);
}

/* By host, then by place in the list. */
static int cmp_slots(const void *a, const void *b)
{
    const struct slot *x = a, *y = b;
    int c = x->iplen != y->iplen ? (x->iplen < y->iplen ? -1 : 1)
            : memcmp(x->endpoint, y->endpoint, x->iplen);

    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* "NAME:PORT" again with port: *s replaced.  Returns 0 or -1. */
static int set_port(char **s, int port)
{
    char *colon = strrchr(*s, ':'), *again;

    if (!colon || asprintf(&again, "%.*s:%d", (int)(colon - *s), *s,
                           port) < 0)
        return -1;
    free(*s);
    *s = again;
    return 0;
}

/* The daemons a file added, from index from on, numbered per host in the
 * file's order: the k-th listed for a host (by its address, over all of
 * its lines) listens on base+k, as a host listed k times in Hydra's host
 * file has k slots.  PBS_NODEFILE lists a host once per core; "a:2" then
 * "a" is a:BASE..BASE+2.  Returns 0 or -1 with err saying why. */
static int number_per_host(struct hosts *h, int from, int base, char *err,
                           size_t errlen)
{
    int n = h->n - from, ret = 0;
    struct slot *s = malloc(sizeof(*s) * (size_t)(n ? n : 1));

    if (!s)
        return seterr(err, errlen, ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *ep = h->endpoint[from + i];

        s[i] = (struct slot){ .endpoint = ep, .at = from + i,
                              .iplen = (size_t)(strrchr(ep, ':') - ep) };
    }
    qsort(s, (size_t)n, sizeof(*s), cmp_slots);
    for (int i = 0; i < n; i++)
        s[i].k = i && same_host(&s[i], &s[i - 1]) ? s[i - 1].k + 1 : 0;
    /* Only now are the endpoints rewritten (s points into them). */
    for (int i = 0; i < n && !ret; i++) {
        char **ep = &h->endpoint[s[i].at], **label = &h->label[s[i].at];

        if (base + s[i].k > 65535)
            ret = seterr(err, errlen, EINVAL, "%.*s: %d daemons from port "
                         "%d pass port 65535",
                         (int)(strrchr(*label, ':') - *label), *label,
                         s[i].k + 1, base);
        else if (set_port(ep, base + s[i].k) < 0
                 || set_port(label, base + s[i].k) < 0)
            ret = seterr(err, errlen, ENOMEM, "out of memory");
    }
    free(s);
    return ret;
}

int hosts_add_file(struct hosts *h, const char *path, int base, char *err,
                   size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[4096], why[512];
    int before = h->n, lineno = 0;

    if (!f)
        return seterr(err, errlen, errno, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        char *item = trim_line(line);

        lineno++;
        if (!*item)
            continue;
        if (hosts_add_list(h, item, base, why, sizeof(why)) < 0) {
            seterr(err, errlen, errno, "%s line %d: %s", path, lineno, why);
            goto error;
        }
    }
    if (ferror(f)) {
        seterr(err, errlen, EIO, "%s: read error", path);
        goto error;
    }
    fclose(f);
    if (h->n == before)
        return seterr(err, errlen, EINVAL, "%s names no host", path);
    if (number_per_host(h, before, base, why, sizeof(why)) < 0) {
        seterr(err, errlen, errno, "%s: %s", path, why);
        truncate_hosts(h, before);
        return -1;
    }
    return 0;
error:
    fclose(f);
    truncate_hosts(h, before);
    return -1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hosts_check_unique(const struct hosts *h, char *err, size_t errlen)
{
    char **sorted = malloc(sizeof(*sorted) * (size_t)(h->n ? h->n : 1));
    int ret = 0;

    if (!sorted)
        return seterr(err, errlen, ENOMEM, "out of memory");
    memcpy(sorted, h->endpoint, sizeof(*sorted) * (size_t)h->n);
    qsort(sorted, (size_t)h->n, sizeof(*sorted), cmp_names);
    for (int i = 1; i < h->n && !ret; i++)
        if (!strcmp(sorted[i - 1], sorted[i]))
            ret = seterr(err, errlen, EINVAL, "the daemon at %s is listed "
                         "twice", sorted[i]);
    free(sorted);
    return ret;
}

/* The outcome of a finished or timed-out connect: 0 or an errno. */
static int connect_result(const struct pollfd *p)
{
    return p->revents ? netaddr_connect_result(p->fd) : ETIMEDOUT;
}

/* Probe daemons [from, from+count) at once.  Returns -1 when all
 * accepted, else the index of the first that did not, with *e its
 * errno. */
static int probe_batch(const struct hosts *h, int from, int count,
                       double end, int *e)
{
    struct pollfd p[PROBE_BATCH];
    int bad = -1;

    for (int i = 0; i < count; i++) {
        p[i] = (struct pollfd){ .fd = netaddr_connect(h->endpoint[from + i]),
                                .events = POLLOUT };
        if (p[i].fd < 0 && bad < 0) {
            bad = from + i;
            *e = errno;
        }
    }
    for (int i = 0; i < count && bad < 0; i++) {
        double left;

        while (p[i].revents == 0 && (left = end - mono_now()) > 0)
            if (poll(&p[i], 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
                break;
        if ((*e = connect_result(&p[i])) != 0)
            bad = from + i;
    }
    for (int i = 0; i < count; i++)
        netaddr_close_reset(p[i].fd);
    return bad;
}

int hosts_probe(const struct hosts *h, int n, double timeout_s, char *err,
                size_t errlen)
{
    double end = mono_now() + timeout_s;

    for (int from = 0; from < n; from += PROBE_BATCH) {
        int count = n - from < PROBE_BATCH ? n - from : PROBE_BATCH;
        int e = 0, bad = probe_batch(h, from, count, end, &e);

        if (bad >= 0)
            return seterr(err, errlen, e, "no vexecd answers at %s (%s): "
                          "%s", h->label[bad], h->endpoint[bad],
                          strerror(e));
    }
    return 0;
}

int hosts_local_address(const char *endpoint, char *ip, size_t size,
                        char *err, size_t errlen)
{
    struct sockaddr_in sa, me;
    socklen_t len = sizeof(me);
    int s, ret = 0;

    if (netaddr_parse(endpoint, &sa, err, errlen) < 0)
        return -1;
    /* Connecting a datagram socket only picks the route and source. */
    if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return seterr(err, errlen, errno, "socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0
        || getsockname(s, (struct sockaddr *)&me, &len) < 0)
        ret = seterr(err, errlen, errno, "no route to %s: %s", endpoint,
                     strerror(errno));
    else
        inet_ntop(AF_INET, &me.sin_addr, ip, (socklen_t)size);
    close(s);
    return ret;
}

int hosts_resolve(const char *host_port, char *name, size_t size, char *err,
                  size_t errlen)
{
    const char *colon = strrchr(host_port, ':');
    char host[HOSTLIST_MAX_NAME + 1], canon[NETADDR_STRLEN + 8];
    struct sockaddr_in sa;
    struct in_addr ip;

    if (!colon || colon == host_port
        || (size_t)(colon - host_port) >= sizeof(host))
        return seterr(err, errlen, EINVAL, "'%s' is not HOST:PORT",
                      host_port);
    memcpy(host, host_port, (size_t)(colon - host_port));
    host[colon - host_port] = '\0';
    if (resolve_ip(host, &ip, err, errlen) < 0)
        return -1;
    snprintf(canon, sizeof(canon), "%s:%s", inet_ntoa(ip), colon + 1);
    if (netaddr_parse(canon, &sa, err, errlen) < 0)
        return -1;
    netaddr_format(&sa, name, size);
    return 0;
}

void hosts_free(struct hosts *h)
{
    truncate_hosts(h, 0);
    free(h->endpoint);
    free(h->label);
    *h = (struct hosts){ 0 };
}
