/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * http_hello: a small HTTP/1.1 server on Mustang. GET / (or HEAD /) answers
 * "Hello from Mustang\n"; other paths get 404, other methods 405, malformed
 * requests 400 (and the connection is closed). Keep-alive as RFC 9112 says:
 * HTTP/1.1 keeps the connection unless "Connection: close", HTTP/1.0 closes
 * it unless "Connection: keep-alive". Pipelined requests are answered in
 * order. One thread, one level-triggered mst_epoll loop.
 *
 *   http_hello [-p PORT] [--ctl PATH]
 *
 * Call order: main() -> serve(): the listener readable -> accept_all();
 * a connection ready -> conn_run(): flush pending output -> recv ->
 * answer_all() -> parse_request() per complete request head, appending each
 * response to the connection's output buffer.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mustang/mustang.h>

#include "ex_util.h"

#define IN_SIZE 8192           /* largest request head we accept */
#define OUT_SIZE 16384
#define RESP_MAX 512           /* room one response needs in out[] */
#define MAX_BODY (1 << 20)     /* request bodies are read and discarded */
#define MAX_EVENTS 256

static const char hello[] = "Hello from Mustang\n";

struct conn {
	int fd;
	uint32_t interest;     /* EPOLLIN or EPOLLOUT, as registered */
	bool close_after;      /* close once out[] is sent */
	size_t in_len;         /* request bytes buffered in in[] */
	size_t body_left;      /* body bytes of the last request still to skip */
	size_t out_off, out_len; /* response bytes not sent yet: out[off, len) */
	char in[IN_SIZE];
	char out[OUT_SIZE];
};

/* What one request head says. */
struct request {
	const char *method, *target;
	size_t method_len, target_len;
	int minor;             /* HTTP/1.minor */
	bool conn_close, conn_keep_alive, has_host, chunked;
	size_t content_length;
};

static volatile sig_atomic_t stop;
static uint64_t n_requests;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: http_hello [-p PORT] [--ctl PATH]\n"
		"HTTP/1.1 keep-alive server on Mustang: GET / answers \"%.*s\\n\".\n\n"
		"  -p, --port PORT   port to listen on (default 8080)\n"
		"  -c, --ctl PATH    mustangd control socket (default $MUSTANG_CTL,\n"
		"                    else the daemon's default path)\n"
		"  -h, --help        this help\n",
		(int)sizeof(hello) - 2, hello);
}

/* ---- HTTP ---------------------------------------------------------------- */

static bool token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static bool is_tchar(int ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Connection: a comma-separated list of options. */
static void parse_connection(struct request *r, const char *v, const char *end)
{
	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (token_is(v, (size_t)(e - v), "close"))
			r->conn_close = true;
		else if (token_is(v, (size_t)(e - v), "keep-alive"))
			r->conn_keep_alive = true;
		v = comma ? comma + 1 : end;
	}
}

/* One header line [p, end) (without CRLF). false if malformed. */
static bool parse_header(struct request *r, const char *p, const char *end)
{
	const char *colon = memchr(p, ':', (size_t)(end - p));
	const char *v;
	size_t nlen;

	if (!colon || colon == p)
		return false;
	for (const char *q = p; q < colon; q++)
		if (!is_tchar((unsigned char)*q))
			return false; /* includes "Name :" (RFC 9112 5.1: reject) */
	nlen = (size_t)(colon - p);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (token_is(p, nlen, "Host")) {
		if (r->has_host)
			return false; /* RFC 9112 3.2: more than one Host */
		r->has_host = true;
	} else if (token_is(p, nlen, "Connection")) {
		parse_connection(r, v, end);
	} else if (token_is(p, nlen, "Transfer-Encoding")) {
		r->chunked = true;
	} else if (token_is(p, nlen, "Content-Length")) {
		size_t n = 0;

		if (v == end)
			return false;
		for (; v < end; v++) {
			if (*v < '0' || *v > '9' || n > MAX_BODY)
				return false;
			n = n * 10 + (size_t)(*v - '0');
		}
		if (n > MAX_BODY)
			return false;
		r->content_length = n;
	}
	return true;
}

/* The request head in[0, head_len) (ending in CRLF CRLF). 0 if well-formed,
 * else the status to answer (400, 501, 505). */
static int parse_request(struct request *r, const char *in, size_t head_len)
{
	const char *end = in + head_len - 2; /* the final CRLF */
	const char *line_end = memmem(in, head_len, "\r\n", 2); /* never NULL */
	const char *sp1, *sp2, *p;

	memset(r, 0, sizeof(*r));
	/* Request line: method SP target SP HTTP/1.x */
	sp1 = memchr(in, ' ', (size_t)(line_end - in));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == in || sp2 == sp1 + 1)
		return 400;
	for (p = in; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return 400;
	r->method = in;
	r->method_len = (size_t)(sp1 - in);
	r->target = sp1 + 1;
	r->target_len = (size_t)(sp2 - sp1 - 1);
	for (p = r->target; p < sp2; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 400;
	if (line_end - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/", 5) != 0 ||
	    !isdigit((unsigned char)sp2[6]) || sp2[7] != '.' || !isdigit((unsigned char)sp2[8]))
		return 400;
	if (sp2[6] != '1')
		return 505;
	r->minor = sp2[8] - '0';
	/* Header fields, one per line, up to the empty line. */
	for (p = line_end + 2; p < end;) {
		const char *e = memmem(p, (size_t)(end + 2 - p), "\r\n", 2); /* never NULL */

		if (*p == ' ' || *p == '\t')
			return 400; /* obsolete line folding: RFC 9112 5.2 allows 400 */
		if (!parse_header(r, p, e))
			return 400;
		p = e + 2;
	}
	if (r->minor >= 1 && !r->has_host)
		return 400; /* RFC 9112 3.2 */
	if (r->chunked)
		return 501; /* no chunked bodies here */
	return 0;
}

static void respond(struct conn *c, int status, bool head_only, bool keep_alive,
		    bool http10)
{
	const char *reason, *body, *extra = "";
	char *out = c->out + c->out_len;
	size_t room = OUT_SIZE - c->out_len, blen;
	int n;

	switch (status) {
	case 200: reason = "OK"; body = hello; break;
	case 404: reason = "Not Found"; body = "Not Found\n"; break;
	case 405: reason = "Method Not Allowed"; body = "Method Not Allowed\n";
		extra = "Allow: GET, HEAD\r\n"; break;
	case 501: reason = "Not Implemented"; body = "Not Implemented\n"; break;
	case 505: reason = "HTTP Version Not Supported"; body = "HTTP Version Not Supported\n"; break;
	default: reason = "Bad Request"; body = "Bad Request\n"; break;
	}
	blen = strlen(body);
	n = snprintf(out, room,
		     "HTTP/1.1 %d %s\r\n"
		     "Server: mustang-http_hello\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n"
		     "%s%s\r\n"
		     "%s",
		     status, reason, blen, extra,
		     !keep_alive ? "Connection: close\r\n" :
		     http10 ? "Connection: keep-alive\r\n" : "",
		     head_only ? "" : body);
	/* RESP_MAX of room is guaranteed by the caller; never overflows. */
	if (n > 0 && (size_t)n < room)
		c->out_len += (size_t)n;
	if (!keep_alive)
		c->close_after = true;
}

/* Answer every complete request in in[] while out[] has room. */
static void answer_all(struct conn *c)
{
	size_t used = 0;

	while (!c->close_after && OUT_SIZE - c->out_len >= RESP_MAX) {
		struct request r;
		const char *eoh;
		size_t head_len;
		int status;
		bool keep, head;

		if (c->body_left) { /* a previous request's body: skip it */
			size_t skip = c->in_len - used < c->body_left ? c->in_len - used : c->body_left;

			used += skip;
			c->body_left -= skip;
			if (c->body_left)
				break;
		}
		eoh = memmem(c->in + used, c->in_len - used, "\r\n\r\n", 4);
		if (!eoh) {
			if (c->in_len == IN_SIZE && used == 0)
				respond(c, 400, false, false, false); /* head too large */
			break;
		}
		head_len = (size_t)(eoh + 4 - (c->in + used));
		status = parse_request(&r, c->in + used, head_len);
		used += head_len;
		n_requests++;
		if (status) {
			respond(c, status, false, false, false);
			break;
		}
		keep = r.minor >= 1 ? !r.conn_close : r.conn_keep_alive && !r.conn_close;
		head = token_is(r.method, r.method_len, "HEAD");
		if (!head && !token_is(r.method, r.method_len, "GET"))
			status = 405;
		else if (!token_is(r.target, r.target_len, "/"))
			status = 404;
		else
			status = 200;
		respond(c, status, head, keep, r.minor == 0);
		c->body_left = r.content_length;
	}
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
}

/* ---- connections --------------------------------------------------------- */

/* Wait for want (EPOLLIN or EPOLLOUT) next. false on error. */
static bool wait_for(int ep, struct conn *c, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.ptr = c };

	if (c->interest == want)
		return true;
	if (mst_epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return false;
	c->interest = want;
	return true;
}

/* Make progress on c. false: the connection is finished (caller closes). */
static bool conn_run(int ep, struct conn *c)
{
	for (;;) {
		ssize_t n;

		while (c->out_off < c->out_len) {
			n = mst_send(c->fd, c->out + c->out_off, c->out_len - c->out_off, 0);
			if (n < 0)
				return errno == EAGAIN && wait_for(ep, c, EPOLLOUT);
			c->out_off += (size_t)n;
		}
		c->out_off = c->out_len = 0;
		if (c->close_after)
			return false;
		/* Requests already buffered first (pipelining): a full in[]
		 * always yields a response or skipped body bytes here, so the
		 * recv below never gets a zero-length buffer. */
		answer_all(c);
		if (c->out_len)
			continue;
		n = mst_recv(c->fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
		if (n <= 0) /* 0: the client is done; errors end the connection too */
			return n < 0 && errno == EAGAIN && wait_for(ep, c, EPOLLIN);
		c->in_len += (size_t)n;
	}
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;
		int fd = mst_accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				perror("http_hello: mst_accept4");
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			fprintf(stderr, "http_hello: out of memory, dropping a connection\n");
			mst_close(fd);
			continue;
		}
		c->fd = fd;
		c->interest = EPOLLIN;
		ev.data.ptr = c;
		if (mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			perror("http_hello: mst_epoll_ctl");
			mst_close(fd);
			free(c);
		}
	}
}

static int serve(int lfd)
{
	static struct epoll_event evs[MAX_EVENTS];
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	int ep = mst_epoll_create1(0);

	if (ep < 0 || mst_epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("http_hello: mst_epoll");
		return -1;
	}
	while (!stop) {
		int n = mst_epoll_wait(ep, evs, MAX_EVENTS, 1000);

		if (n < 0 && errno != EINTR) {
			perror("http_hello: mst_epoll_wait");
			mst_close(ep);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) {
				accept_all(ep, lfd);
			} else if (!conn_run(ep, c)) {
				mst_epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				mst_close(c->fd);
				free(c);
			}
		}
	}
	mst_close(ep);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "ctl", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(8080) };
	const char *ctl = NULL;
	int o, one = 1, lfd, rc;
	uint16_t port;

	while ((o = getopt_long(argc, argv, "p:c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			if (ex_parse_port(optarg, &port) < 0) {
				fprintf(stderr, "http_hello: bad port \"%s\" (1-65535)\n", optarg);
				return 2;
			}
			sa.sin_port = htons(port);
			break;
		case 'c': ctl = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "http_hello: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	ex_stop_on_signals(&stop);
	if (ex_attach("http_hello", ctl) < 0)
		return 1;
	lfd = mst_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || mst_setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    mst_bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || mst_listen(lfd, 1024) < 0) {
		fprintf(stderr, "http_hello: cannot listen on port %u: %s\n", ntohs(sa.sin_port),
			strerror(errno));
		mst_fini();
		return 1;
	}
	printf("http_hello: listening on port %u\n", ntohs(sa.sin_port));
	fflush(stdout);
	rc = serve(lfd);
	printf("http_hello: %llu requests\n", (unsigned long long)n_requests);
	mst_close(lfd);
	mst_fini();
	return rc < 0 ? 1 : 0;
}
