/* cluster.c - read and write the emulated cluster's record (cluster.h). */
#include "common/err.h"
#include "fanout/bell.h"
#include "fanout/fabric.h"
#include "launcher/cluster.h"
#include "launcher/gateway.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cluster_dir(const char *dir)
{
    static char buf[4096];
    const char *env = getenv("VEXEC_CLUSTER");
    const char *run = getenv("XDG_RUNTIME_DIR");

    if (dir && *dir)
        return dir;
    if (env && *env)
        return env;
    snprintf(buf, sizeof(buf), "%s/vexec-%u", run && *run ? run : "/tmp",
             (unsigned)getuid());
    return buf;
}

static int path(char *buf, size_t size, const char *dir, const char *file)
{
    return snprintf(buf, size, "%s/%s", dir, file) >= (int)size ? -1 : 0;
}

static int read_name(struct cluster *c, char *err, size_t errlen)
{
    char p[4200], line[128];
    FILE *f;

    if (path(p, sizeof(p), c->dir, "name") < 0)
        return seterr(err, errlen, ENAMETOOLONG, "cluster directory name "
                      "too long");
    if (!(f = fopen(p, "r")))
        return seterr(err, errlen, errno, "no cluster in %s (%s)", c->dir,
                      strerror(errno));
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return seterr(err, errlen, EINVAL, "%s is empty", p);
    }
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    if (!*line || strlen(line) > CLUSTER_NAME_MAX)
        return seterr(err, errlen, EINVAL, "%s: bad cluster name", p);
    strcpy(c->name, line);
    return 0;
}

static int add_node(struct cluster *c, const char *node, long pid)
{
    char **nodes = realloc(c->nodes, sizeof(*nodes) * (size_t)(c->n + 1));
    pid_t *pids;

    if (!nodes)
        return -1;
    c->nodes = nodes;
    if (!(pids = realloc(c->pids, sizeof(*pids) * (size_t)(c->n + 1))))
        return -1;
    c->pids = pids;
    if (!(c->nodes[c->n] = strdup(node)))
        return -1;
    c->pids[c->n++] = (pid_t)pid;
    return 0;
}

static int read_pids(struct cluster *c, char *err, size_t errlen)
{
    char p[4200], line[256], node[128];
    int lineno = 0;
    long pid;
    FILE *f;

    path(p, sizeof(p), c->dir, "pids");
    if (!(f = fopen(p, "r")))
        return seterr(err, errlen, errno, "no cluster in %s (%s)", c->dir,
                      strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (sscanf(line, "%127s %ld", node, &pid) != 2 || pid <= 0) {
            fclose(f);
            return seterr(err, errlen, EINVAL, "%s:%d: not 'NODE PID'", p,
                          lineno);
        }
        if (add_node(c, node, pid) < 0) {
            fclose(f);
            return seterr(err, errlen, ENOMEM, "out of memory");
        }
    }
    fclose(f);
    if (c->n == 0)
        return seterr(err, errlen, EINVAL, "%s lists no nodes", p);
    return 0;
}

/* The gateway's pid and endpoint; without a record of them, none and
 * NAME.gw, the first gateway's. */
static void read_gateway(struct cluster *c)
{
    char p[4200], ep[CLUSTER_GW_ENDPOINT_MAX + 1];
    long pid = 0;
    FILE *f;

    snprintf(c->gw_endpoint, sizeof(c->gw_endpoint), "%s.%s", c->name,
             GATEWAY_KIND);
    path(p, sizeof(p), c->dir, "gateway");
    if (!(f = fopen(p, "r")))
        return;
    _Static_assert(CLUSTER_GW_ENDPOINT_MAX == 48, "the %48s below");
    switch (fscanf(f, "%ld %48s", &pid, ep)) {
    case 2:
        if (!strncmp(ep, c->name, strlen(c->name))
            && ep[strlen(c->name)] == '.')
            snprintf(c->gw_endpoint, sizeof(c->gw_endpoint), "%s", ep);
        /* fall through */
    case 1:
        if (pid > 0)
            c->gateway = (pid_t)pid;
    }
    fclose(f);
}

int cluster_load(const char *dir, struct cluster *c, char *err,
                 size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (strlen(dir) >= sizeof(c->dir))
        return seterr(err, errlen, ENAMETOOLONG, "cluster directory name "
                      "too long");
    strcpy(c->dir, dir);
    if (read_name(c, err, errlen) < 0 || read_pids(c, err, errlen) < 0) {
        cluster_free(c);
        return -1;
    }
    read_gateway(c);
    return 0;
}

/* Write text to dir/file through a temporary file and a rename. */
static int write_file(const char *dir, const char *file, const char *text,
                      size_t len, char *err, size_t errlen)
{
    char p[4200], tmp[4300];
    FILE *f;

    path(p, sizeof(p), dir, file);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    if (!(f = fopen(tmp, "w")))
        return seterr(err, errlen, errno, "%s: %s", tmp, strerror(errno));
    if (fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        unlink(tmp);
        return seterr(err, errlen, EIO, "writing %s failed", tmp);
    }
    if (rename(tmp, p) < 0)
        return seterr(err, errlen, errno, "%s: %s", p, strerror(errno));
    return 0;
}

int cluster_save(const struct cluster *c, char *err, size_t errlen)
{
    size_t size = (size_t)c->n * 160 + 1, len = 0;
    char *text, line[CLUSTER_NAME_MAX + 2];
    int ret;

    if (mkdir(c->dir, 0700) < 0 && errno != EEXIST)
        return seterr(err, errlen, errno, "%s: %s", c->dir, strerror(errno));
    if (!(text = malloc(size)))
        return seterr(err, errlen, ENOMEM, "out of memory");
    for (int i = 0; i < c->n; i++)
        len += (size_t)snprintf(text + len, size - len, "%s %ld\n",
                                c->nodes[i], (long)c->pids[i]);
    /* pids before name: a reader that finds the name finds the nodes. */
    ret = write_file(c->dir, "pids", text, len, err, errlen);
    len = (size_t)snprintf(text, size, "%ld %s\n", (long)c->gateway,
                           c->gw_endpoint);
    if (ret == 0)
        ret = write_file(c->dir, "gateway", text, len, err, errlen);
    free(text);
    snprintf(line, sizeof(line), "%s\n", c->name);
    if (ret == 0)
        ret = write_file(c->dir, "name", line, strlen(line), err, errlen);
    return ret;
}

int cluster_remove(const struct cluster *c, char *err, size_t errlen)
{
    static const char *const files[] = { "name", "pids", "gateway",
                                         CLUSTER_KEY_FILE };
    char p[4200];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        path(p, sizeof(p), c->dir, files[i]);
        if (unlink(p) < 0 && errno != ENOENT)
            return seterr(err, errlen, errno, "%s: %s", p, strerror(errno));
    }
    return 0;
}

char *cluster_endpoint(const struct cluster *c, int i, char *buf,
                       size_t size)
{
    snprintf(buf, size, "%s.%s", c->name, c->nodes[i]);
    return buf;
}

int cluster_find(const struct cluster *c, const char *node)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->nodes[i], node))
            return i;
    return -1;
}

int cluster_node_up(const struct cluster *c, int i)
{
    char ep[FAB_NAME_MAX + 1];

    if (kill(c->pids[i], 0) < 0 && errno == ESRCH)
        return 0;
    return bell_alive(cluster_endpoint(c, i, ep, sizeof(ep)));
}

int cluster_gateway_up(const struct cluster *c)
{
    return bell_bound(GATEWAY_KIND, c->name, SOCK_SEQPACKET);
}

void cluster_free(struct cluster *c)
{
    int saved = errno;

    for (int i = 0; i < c->n; i++)
        free(c->nodes[i]);
    free(c->nodes);
    free(c->pids);
    c->nodes = NULL;
    c->pids = NULL;
    c->n = 0;
    errno = saved;
}
