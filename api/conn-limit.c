/* SPDX-License-Identifier: MIT */
/*
 * conn-limit: the API server's own accept loop. libmicrohttpd counts connections only
 * globally and knows nothing of who holds them, so one client with 256 idle sockets
 * locked out everyone, the operator included. Here every accepted socket is tied to a
 * client (the peer uid from SO_PEERCRED on the Unix socket, socket(7); the address on
 * TCP) and admitted only within that client's share; operators keep reserved slots; a
 * client that does not finish its headers in time is cut off (shutdown(2) from this
 * thread: MHD's connection thread then reads end-of-file and closes the socket). A
 * refused client gets an HTTP answer written here and its socket closed at once. A
 * stream's client that hangs up is seen here too, so its place is free at once and its
 * stream ends at its next read rather than at its next write (a keep-alive 15 s later).
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>

#include "api/api.h"
#include "api/conn-limit.h"

#define SWEEP_MSEC 250

struct conn_slot {
        bool used;
        bool privileged; /* uid 0 or the daemon's uid: not counted per client */
        bool operator;
        bool authorized;      /* TCP: a request showed the token */
        bool headers_pending; /* waiting for a request's headers */
        bool stream;
        bool gone; /* a stream whose client hung up: counted no more */
        int fd;
        uint8_t key[16]; /* the client: uid, IPv4 address or IPv6 /64 */
        uint64_t deadline_usec;
};

struct iov_conn_limit {
        pthread_mutex_t lock;
        int listen_fd;
        int stop_pipe[2];
        bool tcp;
        gid_t gid;
        bool running;
        pthread_t thread;
        int (*add)(void *userdata, int fd);
        void *userdata;
        struct conn_slot slots[IOV_CONN_MAX];
};

struct conn_peer {
        uint8_t key[16];
        bool privileged;
        bool operator;
};

int conn_limit_new(int listen_fd, bool tcp, gid_t gid, struct iov_conn_limit **ret)
{
        struct iov_conn_limit *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        if (pipe2(l->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        pthread_mutex_init(&l->lock, NULL);
        l->listen_fd = listen_fd;
        l->tcp = tcp;
        l->gid = gid;
        *ret = l;
        return 0;
}

/* Whether the Unix socket's peer had group gid among its groups at connect(2): SO_PEERCRED
 * gives its primary group, SO_PEERGROUPS (socket(7), Linux 4.13) the supplementary ones,
 * which is how `adduser NAME iovd` makes NAME a member. */
static bool peer_in_group(int fd, gid_t primary, gid_t gid)
{
        gid_t some[64];
        _cleanup_free_ gid_t *all = NULL;
        gid_t *groups = some;
        socklen_t len = sizeof(some);
        if (primary == gid)
                return true;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                /* ERANGE: len now says how much room the list needs. */
                if (errno != ERANGE || !(all = malloc(len)))
                        return false;
                groups = all;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                        return false;
        }
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

/* Operators: root, the daemon's own user, members of the socket's group, whom the 0660
 * socket lets in on purpose. Only the first two are not counted per client: a member of
 * the group is still one client, so one hostile member cannot take every slot. */
static int peer_identify(const struct iov_conn_limit *l, int fd, struct conn_peer *ret)
{
        struct conn_peer p = {0};
        if (!l->tcp) {
                struct ucred cred;
                socklen_t len = sizeof(cred);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                        return -errno;
                memcpy(p.key, &cred.uid, sizeof(cred.uid));
                p.privileged = cred.uid == 0 || cred.uid == geteuid();
                p.operator= p.privileged || peer_in_group(fd, cred.gid, l->gid);
                *ret = p;
                return 0;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
                return -errno;
        if (ss.ss_family == AF_INET)
                memcpy(p.key, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        else if (ss.ss_family == AF_INET6) /* one host usually owns a whole /64 */
                memcpy(p.key, &((struct sockaddr_in6 *)&ss)->sin6_addr, 8);
        *ret = p;
        return 0;
}

struct conn_counts {
        unsigned total, shared, client, unauthenticated, client_unauthenticated;
        unsigned streams, client_streams;
};

static void slots_count(const struct iov_conn_limit *l, const uint8_t *key, struct conn_counts *c)
{
        *c = (struct conn_counts){0};
        for (size_t i = 0; i < IOV_CONN_MAX; i++) {
                const struct conn_slot *s = &l->slots[i];
                if (!s->used)
                        continue;
                bool mine = memcmp(s->key, key, sizeof(s->key)) == 0;
                bool unauthenticated = l->tcp && !s->authorized;
                c->total++;
                c->shared += !s->operator;
                c->client += mine;
                c->unauthenticated += unauthenticated;
                c->client_unauthenticated += mine && unauthenticated;
                c->streams += s->stream && !s->gone;
                c->client_streams += mine && s->stream && !s->gone;
        }
}

/* A free slot index, or -EUSERS (the client's share is used up), -EBUSY (the server's). */
static int slots_admit(const struct iov_conn_limit *l, const struct conn_peer *p)
{
        struct conn_counts c;
        slots_count(l, p->key, &c);
        if (!p->privileged && (c.client >= IOV_CONN_PER_CLIENT ||
                               c.client_unauthenticated >= IOV_CONN_UNAUTHENTICATED_PER_CLIENT))
                return -EUSERS;
        if (p->operator&& c.total >= IOV_CONN_MAX)
                return -EBUSY;
        if (!p->operator&&(c.shared >= IOV_CONN_SHARED ||
                           c.unauthenticated >= IOV_CONN_UNAUTHENTICATED))
                return -EBUSY;
        for (size_t i = 0; i < IOV_CONN_MAX; i++)
                if (!l->slots[i].used)
                        return (int)i;
        return -EBUSY;
}

static struct conn_slot *slot_find(struct iov_conn_limit *l, int fd)
{
        for (size_t i = 0; i < IOV_CONN_MAX; i++)
                if (l->slots[i].used && l->slots[i].fd == fd)
                        return &l->slots[i];
        return NULL;
}

/* The answer is written before the request is read: a client that sent its request
 * first still reads it, as the unread bytes are drained before close (closing with
 * unread data would send a reset that may destroy the answer in flight). */
static void conn_refuse(int fd, int reason)
{
        struct iov_api_response resp = {0};
        if (reason == -EUSERS)
                api_error(&resp, 429, "too_many_connections",
                          "this client holds %d connections already", IOV_CONN_PER_CLIENT);
        else
                api_error(&resp, 503, "server_busy", "every connection slot is taken");
        const char *body =
                resp.json ? json_object_to_json_string_ext(resp.json, JSON_C_TO_STRING_PLAIN)
                          : "{}";
        _cleanup_free_ char *text = util_strdup_printf(
                "HTTP/1.1 %u %s\r\nContent-Type: " IOV_API_JSON_TYPE
                "\r\nContent-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s\n",
                resp.status, resp.status == 429 ? "Too Many Requests" : "Service Unavailable",
                strlen(body) + 1, body);
        if (text)
                (void)!send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
        api_response_clear(&resp);
        shutdown(fd, SHUT_WR);
        char drain[4096];
        while (recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
                ;
        close(fd);
}

static void conn_accept_one(struct iov_conn_limit *l)
{
        int fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return; /* EAGAIN, a peer gone before accept, EMFILE: poll again */
        struct conn_peer p;
        if (peer_identify(l, fd, &p) < 0) {
                close(fd);
                return;
        }
        pthread_mutex_lock(&l->lock);
        int i = slots_admit(l, &p);
        if (i >= 0)
                l->slots[i] = (struct conn_slot){
                        .used = true,
                        .privileged = p.privileged,
                        .operator= p.operator,
                        .authorized = !l->tcp,
                        .headers_pending = true,
                        .fd = fd,
                        .deadline_usec = util_now_usec() + IOV_CONN_HEADER_TIMEOUT_SEC * 1000000ull,
                };
        if (i >= 0)
                memcpy(l->slots[i].key, p.key, sizeof(p.key));
        pthread_mutex_unlock(&l->lock);
        if (i < 0) {
                conn_refuse(fd, i);
                return;
        }
        /* The slot exists before MHD sees the socket: its thread may finish the
         * connection before add() returns. On failure MHD has closed the socket. */
        if (l->add(l->userdata, fd) < 0)
                conn_limit_release(l, fd);
}

/* Cut off clients whose headers are late. The socket stays MHD's to close. */
static void conn_sweep(struct iov_conn_limit *l)
{
        uint64_t now = util_now_usec();
        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < IOV_CONN_MAX; i++) {
                struct conn_slot *s = &l->slots[i];
                if (s->used && s->headers_pending && s->deadline_usec && now > s->deadline_usec) {
                        shutdown(s->fd, SHUT_RDWR);
                        s->deadline_usec = 0; /* once */
                }
        }
        pthread_mutex_unlock(&l->lock);
}

/* A stream's client sends nothing after its request, so a hang-up or error on its socket
 * means it went away (poll(2): POLLRDHUP, the peer closed or shut down its writing; a
 * peer that half-closes and still reads is taken as gone too, as it said it is done).
 * The socket stays MHD's: shut down here, it ends at the stream's next read. */
static void conn_sweep_streams(struct iov_conn_limit *l)
{
        struct pollfd p[IOV_CONN_MAX];
        size_t slot[IOV_CONN_MAX], n = 0;
        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < IOV_CONN_MAX; i++)
                if (l->slots[i].used && l->slots[i].stream && !l->slots[i].gone) {
                        p[n] = (struct pollfd){.fd = l->slots[i].fd, .events = POLLRDHUP};
                        slot[n++] = i;
                }
        if (n > 0 && poll(p, n, 0) > 0)
                for (size_t k = 0; k < n; k++)
                        if (p[k].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
                                l->slots[slot[k]].gone = true;
                                shutdown(p[k].fd, SHUT_RDWR);
                        }
        pthread_mutex_unlock(&l->lock);
}

static void *conn_thread(void *userdata)
{
        struct iov_conn_limit *l = userdata;
        for (;;) {
                struct pollfd pfd[2] = {{.fd = l->listen_fd, .events = POLLIN},
                                        {.fd = l->stop_pipe[0], .events = POLLIN}};
                int n = poll(pfd, 2, SWEEP_MSEC);
                if (n > 0 && pfd[1].revents)
                        return NULL;
                if (n > 0 && pfd[0].revents & POLLIN)
                        conn_accept_one(l);
                conn_sweep(l);
                conn_sweep_streams(l);
        }
}

int conn_limit_start(struct iov_conn_limit *l, int (*add)(void *userdata, int fd), void *userdata)
{
        l->add = add;
        l->userdata = userdata;
        int r = -pthread_create(&l->thread, NULL, conn_thread, l);
        if (r < 0)
                return r;
        l->running = true;
        return 0;
}

void conn_limit_stop(struct iov_conn_limit *l)
{
        if (!l || !l->running)
                return;
        (void)!write(l->stop_pipe[1], "x", 1);
        pthread_join(l->thread, NULL);
        l->running = false;
}

void conn_limit_free(struct iov_conn_limit *l)
{
        if (!l)
                return;
        conn_limit_stop(l);
        close(l->listen_fd);
        close(l->stop_pipe[0]);
        close(l->stop_pipe[1]);
        pthread_mutex_destroy(&l->lock);
        free(l);
}

void conn_limit_headers_done(struct iov_conn_limit *l, int fd, bool authorized)
{
        pthread_mutex_lock(&l->lock);
        struct conn_slot *s = slot_find(l, fd);
        if (s) {
                s->headers_pending = false;
                s->authorized = s->authorized || authorized;
        }
        pthread_mutex_unlock(&l->lock);
}

void conn_limit_request_done(struct iov_conn_limit *l, int fd)
{
        pthread_mutex_lock(&l->lock);
        struct conn_slot *s = slot_find(l, fd);
        if (s && !s->stream) {
                s->headers_pending = true;
                s->deadline_usec = util_now_usec() + IOV_CONN_HEADER_TIMEOUT_SEC * 1000000ull;
        }
        pthread_mutex_unlock(&l->lock);
}

int conn_limit_stream_begin(struct iov_conn_limit *l, int fd)
{
        struct conn_counts c;
        int r = 0;
        pthread_mutex_lock(&l->lock);
        struct conn_slot *s = slot_find(l, fd);
        if (s) {
                slots_count(l, s->key, &c);
                if (!s->privileged && c.client_streams >= IOV_CONN_STREAMS_PER_CLIENT)
                        r = -EUSERS;
                else if (c.streams >=
                         IOV_CONN_STREAMS + (s->operator? IOV_CONN_STREAMS_RESERVED : 0))
                        r = -EBUSY;
                else
                        s->stream = true;
        }
        pthread_mutex_unlock(&l->lock);
        return r;
}

bool conn_limit_peer_gone(struct iov_conn_limit *l, int fd)
{
        pthread_mutex_lock(&l->lock);
        struct conn_slot *s = slot_find(l, fd);
        bool gone = s && s->gone;
        pthread_mutex_unlock(&l->lock);
        return gone;
}

void conn_limit_release(struct iov_conn_limit *l, int fd)
{
        pthread_mutex_lock(&l->lock);
        struct conn_slot *s = slot_find(l, fd);
        if (s)
                *s = (struct conn_slot){0};
        pthread_mutex_unlock(&l->lock);
}
