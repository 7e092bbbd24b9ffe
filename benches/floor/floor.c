/*
 * floor: the physical floor for channel-bench. A trivial channel server that
 * does only the unavoidable work -- read a line or an HTTP request, write a
 * *prepared* frame -- so the driver can tell how close a real server gets to
 * what the kernel, the pipes and the loopback TCP stack cost by themselves.
 *
 * Same outside contract as channel-plugin http and reference-ts/server.mjs:
 *   - discovery file $OPZERO_CHANNEL_DIR/$CLAUDE_CODE_SESSION_ID.json = {port, secret, pid, ...}
 *   - stdin/stdout: initialize, tools/list, tools/call (reply) answered with
 *     prepared frames (only the request id is spliced in);
 *   - POST /inject -> one prepared notifications/claude/channel line on stdout, 202;
 *   - GET /sse     -> `event: reply` for every tools/call.
 * No JSON parsing, no validation, no auth beyond a substring check: it is a
 * floor, not a server anyone should run. One thread, poll(2), no allocation
 * on the hot path. SIGINT keeps its default action (immediate exit).
 *
 * Build: gcc -O2 -o floor floor.c   (the driver does this itself)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 256
#define BUF_SZ (256 * 1024)

static const char SECRET[] = "floor-secret-0123456789abcdef";

static const char NOTE[] =
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/claude/channel\",\"params\":"
    "{\"content\":\"floor\",\"meta\":{\"chat_id\":\"inject\"}}}\n";
static const char HTTP_202[] =
    "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{\"id\":\"1\"}";
static const char HTTP_SSE[] =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n";
static const char HTTP_404[] =
    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
static const char HTTP_401[] =
    "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n";
static const char SSE_REPLY[] =
    "id: 1\nevent: reply\ndata: {\"text\":\"floor\",\"final\":true}\n\n";

static const char INIT_A[] = "{\"jsonrpc\":\"2.0\",\"id\":";
static const char INIT_B[] =
    ",\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{\"experimental\":"
    "{\"claude/channel\":{}},\"tools\":{}},\"serverInfo\":{\"name\":\"floor\",\"version\":\"0\"},"
    "\"instructions\":\"Events arrive as <channel source=...>. Answer with the reply tool.\"}}\n";
static const char LIST_B[] =
    ",\"result\":{\"tools\":[{\"name\":\"reply\",\"description\":\"Send a reply\",\"inputSchema\":"
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}}]}}\n";
static const char CALL_B[] =
    ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"sent\"}]}}\n";
static const char ERR_B[] =
    ",\"error\":{\"code\":-32601,\"message\":\"method not found\"}}\n";

struct conn {
  int fd;
  int sse;
  size_t len;
  char *buf;
};

static struct conn conns[MAX_CONN];
static int nconns;

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pf = {fd, POLLOUT, 0};
        poll(&pf, 1, 1000);
        continue;
      }
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Copy the JSON-RPC id token (number or string) after "id": into out. */
static size_t find_id(const char *line, size_t len, char *out, size_t cap) {
  const char *p = memmem(line, len, "\"id\":", 5);
  if (!p) return 0;
  p += 5;
  const char *end = line + len;
  while (p < end && *p == ' ') p++;
  const char *s = p;
  if (p < end && *p == '"') {
    p++;
    while (p < end && *p != '"') p++;
    p++;
  } else {
    while (p < end && *p != ',' && *p != '}') p++;
  }
  size_t n = (size_t)(p - s);
  if (n >= cap) return 0;
  memcpy(out, s, n);
  return n;
}

static void answer(const char *id, size_t idn, const char *tail) {
  char out[2048];
  size_t a = sizeof INIT_A - 1, t = strlen(tail);
  memcpy(out, INIT_A, a);
  memcpy(out + a, id, idn);
  memcpy(out + a + idn, tail, t);
  write_all(1, out, a + idn + t);
}

static void on_line(const char *line, size_t len) {
  char id[128];
  size_t idn = find_id(line, len, id, sizeof id);
  const char *m = memmem(line, len, "\"method\":\"", 10);
  if (!m || !idn) return; /* notification or response: nothing to say */
  m += 10;
  size_t rest = (size_t)(line + len - m);
  if (rest >= 11 && !memcmp(m, "initialize\"", 11)) {
    answer(id, idn, INIT_B);
  } else if (rest >= 11 && !memcmp(m, "tools/list\"", 11)) {
    answer(id, idn, LIST_B);
  } else if (rest >= 11 && !memcmp(m, "tools/call\"", 11)) {
    for (int i = 0; i < nconns; i++)
      if (conns[i].sse) write_all(conns[i].fd, SSE_REPLY, sizeof SSE_REPLY - 1);
    answer(id, idn, CALL_B);
  } else {
    answer(id, idn, ERR_B);
  }
}

static void drop_conn(int i) {
  close(conns[i].fd);
  free(conns[i].buf);
  conns[i] = conns[--nconns];
}

/* The value after a header name (given lower-case, with its leading CRLF),
 * matched case-insensitively; NULL if absent. */
static const char *find_header(const char *p, size_t n, const char *name) {
  size_t k = strlen(name);
  for (size_t i = 0; i + k <= n; i++)
    if (!strncasecmp(p + i, name, k)) return p + i + k;
  return NULL;
}

/* Handle every complete request in the buffer; returns 0 to keep the conn. */
static int on_http(struct conn *c) {
  size_t off = 0;
  for (;;) {
    char *start = c->buf + off;
    size_t avail = c->len - off;
    char *hdr_end = memmem(start, avail, "\r\n\r\n", 4);
    if (!hdr_end) break;
    size_t hlen = (size_t)(hdr_end - start) + 4;
    size_t body = 0;
    const char *cl = find_header(start, hlen, "\r\ncontent-length:");
    if (cl) body = strtoul(cl, NULL, 10);
    if (avail < hlen + body) break;
    if (!memmem(start, hlen, SECRET, sizeof SECRET - 1)) {
      write_all(c->fd, HTTP_401, sizeof HTTP_401 - 1);
    } else if (avail >= 12 && !memcmp(start, "POST /inject", 12)) {
      write_all(1, NOTE, sizeof NOTE - 1);
      write_all(c->fd, HTTP_202, sizeof HTTP_202 - 1);
    } else if (avail >= 8 && !memcmp(start, "GET /sse", 8)) {
      write_all(c->fd, HTTP_SSE, sizeof HTTP_SSE - 1);
      c->sse = 1;
    } else {
      write_all(c->fd, HTTP_404, sizeof HTTP_404 - 1);
    }
    off += hlen + body;
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
  return c->len == BUF_SZ; /* a request larger than the buffer: give up */
}

int main(void) {
  const char *dir = getenv("OPZERO_CHANNEL_DIR");
  const char *sid = getenv("CLAUDE_CODE_SESSION_ID");
  if (!dir || !sid) {
    fprintf(stderr, "floor: set OPZERO_CHANNEL_DIR and CLAUDE_CODE_SESSION_ID\n");
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 128)) {
    perror("floor: listen");
    return 1;
  }
  socklen_t alen = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &alen);

  char path[4096], tmp[4200], json[512];
  snprintf(path, sizeof path, "%s/%s.json", dir, sid);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int n = snprintf(json, sizeof json,
                   "{\"port\":%d,\"secret\":\"%s\",\"pid\":%d,\"sessionId\":\"%s\","
                   "\"version\":\"floor\",\"createdAt\":\"%ld\"}\n",
                   ntohs(addr.sin_port), SECRET, getpid(), sid, (long)time(NULL));
  int f = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  write_all(f, json, (size_t)n);
  close(f);
  rename(tmp, path);

  static char inbuf[BUF_SZ];
  size_t inlen = 0;
  struct pollfd pfds[MAX_CONN + 2];
  for (;;) {
    pfds[0] = (struct pollfd){0, POLLIN, 0};
    pfds[1] = (struct pollfd){lfd, POLLIN, 0};
    for (int i = 0; i < nconns; i++) pfds[i + 2] = (struct pollfd){conns[i].fd, POLLIN, 0};
    int live = nconns;
    if (poll(pfds, (nfds_t)(live + 2), -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (pfds[0].revents) {
      ssize_t r = read(0, inbuf + inlen, sizeof inbuf - inlen);
      if (r <= 0) break; /* stdin closed: the client is gone */
      inlen += (size_t)r;
      size_t off = 0;
      char *nl;
      while ((nl = memchr(inbuf + off, '\n', inlen - off))) {
        on_line(inbuf + off, (size_t)(nl - (inbuf + off)));
        off = (size_t)(nl - inbuf) + 1;
      }
      memmove(inbuf, inbuf + off, inlen - off);
      inlen -= off;
      if (inlen == sizeof inbuf) inlen = 0; /* runaway line: drop it */
    }
    /* Walk backwards so drop_conn's swap-with-last never skips one. */
    for (int i = live - 1; i >= 0; i--) {
      if (!pfds[i + 2].revents) continue;
      struct conn *c = &conns[i];
      ssize_t r = read(c->fd, c->buf + c->len, BUF_SZ - c->len);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        drop_conn(i);
        continue;
      }
      c->len += (size_t)r;
      if (on_http(c)) drop_conn(i);
    }
    if (pfds[1].revents) {
      int cfd;
      while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        if (nconns == MAX_CONN) {
          close(cfd);
          continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[nconns++] = (struct conn){cfd, 0, 0, malloc(BUF_SZ)};
      }
    }
  }
  unlink(path);
  return 0;
}
