/* SPDX-License-Identifier: BSD-3-Clause */
/* The wrappers define libc's own names: no large-file renaming (LP64). */
#undef _FILE_OFFSET_BITS
/*
 * libmustang-preload: the descriptor table and process-wide state.
 *
 * pl_init() (constructor, or the first wrapper called before it) resolves
 * the libc functions behind the wrappers and maps a table with one slot
 * per possible kernel descriptor number. A Mustang socket is a slot of
 * kind PL_MST whose number is held by a kernel socket the app never does
 * I/O on, so the kernel can never hand that number out for something
 * else. pl_attach() attaches to mustangd on the first AF_INET socket;
 * pl_excluded() applies MUSTANG_PRELOAD_EXCLUDE; pl_atfork_child() is the
 * fork rule (docs/preload.md).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <mustang/mustang.h>
#include <mustang/ctl.h>
#include <mustang/shm_abi.h>

#include "preload.h"

struct pl_real real;
struct pl_fd *pl_tab;
int pl_tab_size;

static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int hiwater = -1;                 /* highest slot ever set */
static uint16_t refs[MST_SHM_MAX_SOCKS]; /* placeholders per Mustang socket */

/* Attachment: 0 not tried, 1 attached, 2 kernel fallback, <0 -errno. */
static int attach_state;
static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

#define MAX_EXCL 32
struct excl {
	uint32_t net, mask;        /* host order; mask 0: any address */
	uint16_t port;             /* 0: any port */
};
static struct excl excl[MAX_EXCL];
static int n_excl;

void pl_lock(void) { pthread_mutex_lock(&tab_lock); }
void pl_unlock(void) { pthread_mutex_unlock(&tab_lock); }
int pl_hiwater(void) { return __atomic_load_n(&hiwater, __ATOMIC_ACQUIRE); }

#define RESOLVE(name) (real.name = (__typeof__(real.name))dlsym(RTLD_NEXT, #name))

static void resolve_all(void)
{
	RESOLVE(socket); RESOLVE(bind); RESOLVE(listen); RESOLVE(accept);
	RESOLVE(accept4); RESOLVE(connect); RESOLVE(read); RESOLVE(write);
	RESOLVE(readv); RESOLVE(writev); RESOLVE(send); RESOLVE(recv);
	RESOLVE(sendto); RESOLVE(recvfrom); RESOLVE(sendmsg); RESOLVE(recvmsg);
	RESOLVE(sendfile); RESOLVE(close); RESOLVE(close_range); RESOLVE(shutdown);
	RESOLVE(fcntl); RESOLVE(ioctl); RESOLVE(getsockopt); RESOLVE(setsockopt);
	RESOLVE(getsockname); RESOLVE(getpeername); RESOLVE(dup); RESOLVE(dup2);
	RESOLVE(dup3); RESOLVE(poll); RESOLVE(ppoll); RESOLVE(select);
	RESOLVE(pselect); RESOLVE(epoll_create); RESOLVE(epoll_create1);
	RESOLVE(epoll_ctl); RESOLVE(epoll_wait); RESOLVE(epoll_pwait);
}

/* One rule: ADDR[/LEN][:PORT] or :PORT. 0, or -1 if malformed. */
static int excl_parse(char *tok, struct excl *e)
{
	char *colon = strrchr(tok, ':'), *slash, *end;
	struct in_addr a;
	long v;

	*e = (struct excl){ 0 };
	if (colon) {
		v = strtol(colon + 1, &end, 10);
		if (*end || v < 1 || v > 65535)
			return -1;
		e->port = (uint16_t)v;
		*colon = '\0';
	}
	if (!*tok)
		return colon ? 0 : -1;
	slash = strchr(tok, '/');
	v = 32;
	if (slash) {
		*slash = '\0';
		v = strtol(slash + 1, &end, 10);
		if (*end || v < 0 || v > 32)
			return -1;
	}
	if (inet_pton(AF_INET, tok, &a) != 1)
		return -1;
	e->mask = v ? ~0u << (32 - v) : 0;
	e->net = ntohl(a.s_addr) & e->mask;
	return 0;
}

static void excl_load(void)
{
	const char *env = getenv("MUSTANG_PRELOAD_EXCLUDE");
	char *dup, *tok, *save = NULL;

	/* Mustang has no loopback interface: 127/8 always stays on the kernel. */
	excl[n_excl++] = (struct excl){ .net = 0x7f000000u, .mask = 0xff000000u };
	if (!env || !*env || !(dup = strdup(env)))
		return;
	for (tok = strtok_r(dup, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char orig[64];

		snprintf(orig, sizeof(orig), "%s", tok); /* excl_parse cuts tok */
		if (n_excl == MAX_EXCL) {
			fprintf(stderr, "mustang-preload: MUSTANG_PRELOAD_EXCLUDE: more than %d rules, "
				"the rest ignored\n", MAX_EXCL - 1);
			break;
		}
		if (excl_parse(tok, &excl[n_excl]) < 0)
			fprintf(stderr, "mustang-preload: MUSTANG_PRELOAD_EXCLUDE: ignoring '%s' "
				"(expected ADDR[/LEN][:PORT] or :PORT)\n", orig);
		else
			n_excl++;
	}
	free(dup);
}

bool pl_excluded(const struct sockaddr *a, socklen_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)a;
	uint32_t ip;
	uint16_t port;

	if (!a || len < (socklen_t)sizeof(*sin) || sin->sin_family != AF_INET)
		return false; /* let Mustang report the bad argument */
	ip = ntohl(sin->sin_addr.s_addr);
	port = ntohs(sin->sin_port);
	for (int i = 0; i < n_excl; i++)
		if ((ip & excl[i].mask) == excl[i].net && (!excl[i].port || excl[i].port == port))
			return true;
	return false;
}

static void atfork_prepare(void) { pthread_mutex_lock(&tab_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&tab_lock); }

/* The fork rule: the child cannot share its parent's segment (the queue
 * pairs are single-producer), so it forgets the attachment; the parent's
 * Mustang sockets stay as numbers that fail with EBADF until closed, and
 * the child attaches as a new app if it opens AF_INET sockets itself. */
static void atfork_child(void)
{
	pthread_mutex_init(&tab_lock, NULL);
	pthread_mutex_init(&attach_lock, NULL);
	if (attach_state == 1)
		mst_fork_child();
	attach_state = 0;
	memset(refs, 0, sizeof(refs));
	for (int fd = 0; fd <= hiwater; fd++) {
		struct pl_fd *s = &pl_tab[fd];

		if (s->kind == PL_MST)
			s->kind = PL_DEAD;
		if (s->kind == PL_EPOLL) {
			pl_ep_free(s->ep); /* its shadow went with the attachment */
			s->ep = NULL;
			s->kind = PL_NONE;
		}
	}
}

static void init_once_fn(void)
{
	struct rlimit rl;
	size_t n = 1u << 16;
	void *p;

	resolve_all();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		n = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20) ? 1u << 20 :
		    rl.rlim_max < n ? n : rl.rlim_max;
	/* Anonymous pages: only the slots of descriptors in use get memory. */
	p = mmap(NULL, n * sizeof(struct pl_fd), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mustang-preload: no memory for the descriptor table: "
			"every socket stays on the kernel\n");
		return;
	}
	excl_load();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	pl_tab = p;
	__atomic_store_n(&pl_tab_size, (int)n, __ATOMIC_RELEASE);
}

int pl_init(void)
{
	pthread_once(&init_once, init_once_fn);
	return real.socket ? 0 : -1;
}

__attribute__((constructor)) static void pl_ctor(void)
{
	pl_init();
}

int pl_attach(void)
{
	const char *fb = getenv("MUSTANG_PRELOAD_FALLBACK");
	int st;

	pthread_mutex_lock(&attach_lock);
	st = attach_state;
	if (st == 0) {
		int err = ENOMEM;

		if (pl_tab && mst_init(NULL) == 0)
			st = 1;
		else if (pl_tab)
			err = errno;
		if (st != 1)
			st = (fb && !strcmp(fb, "kernel")) || !pl_tab ? 2 : -err;
		if (st != 1) {
			const char *ctl = getenv("MUSTANG_CTL");

			fprintf(stderr, "mustang-preload: cannot attach to mustangd at %s: %s; %s\n",
				ctl && *ctl ? ctl : MST_CTL_DEFAULT_PATH, strerror(err),
				st == 2 ? "AF_INET sockets stay on the kernel (MUSTANG_PRELOAD_FALLBACK=kernel)"
					: "AF_INET sockets fail with ENETDOWN (set "
					  "MUSTANG_PRELOAD_FALLBACK=kernel to use the kernel instead)");
		}
		attach_state = st;
	}
	pthread_mutex_unlock(&attach_lock);
	return st == 1 ? 1 : st == 2 ? 0 : st;
}

void pl_set(int fd, uint32_t kind, int mst, int cloexec, int dgram)
{
	struct pl_fd *s = &pl_tab[fd];

	s->mst = mst;
	s->cloexec = cloexec;
	s->dgram = dgram;
	if (fd > hiwater)
		__atomic_store_n(&hiwater, fd, __ATOMIC_RELEASE);
	/* Release: a thread that sees the kind sees mst (pl_kind's acquire). */
	__atomic_store_n(&s->kind, kind, __ATOMIC_RELEASE);
}

void pl_ref(int mst)
{
	unsigned i = (unsigned)(mst - MST_FD_BASE);

	if (i < MST_SHM_MAX_SOCKS)
		refs[i]++;
}

int pl_unref(int mst)
{
	unsigned i = (unsigned)(mst - MST_FD_BASE);

	if (i < MST_SHM_MAX_SOCKS && refs[i] > 1) {
		refs[i]--;
		return 0;
	}
	if (i < MST_SHM_MAX_SOCKS)
		refs[i] = 0;
	return mst_close(mst);
}

#define MAX_WARN 64
static uint64_t warned[MAX_WARN];
static int n_warned;
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;

/* One line on stderr per distinct `what` (FNV-1a of the text). */
void pl_warn_once(const char *what, int err)
{
	uint64_t h = 1469598103934665603ull;
	bool seen = false;

	for (const char *p = what; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	pthread_mutex_lock(&warn_lock);
	for (int i = 0; i < n_warned && !seen; i++)
		seen = warned[i] == h;
	if (!seen && n_warned < MAX_WARN)
		warned[n_warned++] = h;
	pthread_mutex_unlock(&warn_lock);
	if (!seen)
		fprintf(stderr, "mustang-preload: %s on a Mustang socket: %s (reported once)\n",
			what, strerror(err));
}

int pl_dead_err(void)
{
	pl_warn_once("use of a socket inherited across fork() (the parent's Mustang socket)",
		     EBADF);
	errno = EBADF;
	return -1;
}
