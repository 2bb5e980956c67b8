/*
 * tallyd's native UDP reader (Linux): one bound UDP socket read with
 * recvmmsg(2), many datagrams per system call, handed to JavaScript as one
 * call per batch: count n, the datagrams in fixed slots of one shared Buffer,
 * their lengths in a shared Int32Array. node:dgram instead allocates a
 * Buffer and an address object and enters JavaScript once per datagram
 * (the CPU each takes is measured in bench/README.md).
 *
 *   open(family 4|6, address, port, rcvbuf, reuseport, buffer, slotSize, lengths, callback)
 *     -> { handle, port, rcvbuf }   (throws an Error with .code, e.g. EADDRINUSE)
 *   start(handle, holdMs?)          poll the socket on the event loop; holdMs > 0: after a wakeup that
 *                                   read datagrams and emptied the queue, wait holdMs on a timer before
 *                                   reading again instead of waking for the next datagram (see on_readable)
 *   close(handle)                   stop taking new datagrams, read those already queued (callback), then stop
 *                                   polling and close the socket
 *
 * callback(n, kind): kind 0 (READ): n > 0 datagrams are in buffer[i * slotSize ...], lengths[i]
 * bytes each (the datagram's real length, also when it was longer than its
 * slot: MSG_TRUNC; only slotSize bytes of it are there); n < 0 is -errno of
 * a failed read. kind 1 (POLL_ERROR): the socket reported an error (POLLERR: an
 * ICMP error, e.g. ECONNREFUSED), n = -errno of it; the reader cleared it and
 * polls again (a POLLERR that finds nothing pending, or only the second copy of
 * an error already reported, is cleared silently: recverr_on). One error, one
 * callback, also when a read meets it first. kind 2 (STOPPED): the same, but the
 * reader could not poll again and has stopped; only close() is left. The
 * buffer is reused right after the callback returns. Everything runs on the
 * event loop thread.
 *
 * TALLYD_NATIVE_FAULT (tests only; read at open(), no effect unset) makes one
 * step fail as if the system had refused it, so the error paths run for real:
 * open-after-poll-init, open-after-timer-init, open-after-refs, open-after-external
 * (open() throws EINTERNAL having released all it took), poll-restart (after a
 * poll error the poll does not start again: kind 2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/errqueue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "tallyd.h"

/* Batches read per readable event before the loop gets a turn (timers, other sockets). */
#define MAX_ROUNDS 16
/* Error-queue entries read per poll error (a socket with IP_RECVERR set by another holder of the fd); the poll fires again for more. */
#define MAX_ERRQUEUE 256

/* callback(n, kind): see the comment at the top. */
enum { KIND_READ = 0, KIND_POLL_ERROR = 1, KIND_STOPPED = 2 };

/* Test-only failure injection (TALLYD_NATIVE_FAULT). */
enum { FAULT_NONE, FAULT_AFTER_POLL_INIT, FAULT_AFTER_TIMER_INIT, FAULT_AFTER_REFS, FAULT_AFTER_EXTERNAL, FAULT_POLL_RESTART };

typedef struct {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;
  int polling;
  int holding;       /* the timer runs instead of the poll */
  int open_handles;  /* libuv handles not yet closed (poll, timer) */
  uint64_t hold_ms;
  int closed;        /* close() asked for (or the handle was collected) */
  int handle_closed; /* libuv closed the poll handle and the socket */
  int finalized;     /* JavaScript's handle object was collected (or never made: open() failed) */
  int async_ok;      /* r->async was initialised */
  int hooked;        /* env_teardown is registered (cleanup) as an async environment cleanup hook */
  napi_async_cleanup_hook_handle cleanup;
  int env_gone;      /* Node is tearing the environment down: no more N-API calls (see env_teardown) */
  int fault;         /* FAULT_*: what TALLYD_NATIVE_FAULT asked for at open() */
  napi_env env;
  napi_ref callback;
  napi_ref buffer;
  napi_ref lengths;
  napi_async_context async;
  char *data;
  size_t slot;
  uint32_t slots;
  int32_t *lens;
  struct mmsghdr *msgs;
  struct iovec *iovs;
} reader_t;

#define CHECK(env, call)                                              \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error((env), "EINTERNAL", "napi call failed: " #call); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = "EUDP";
  switch (err) {
    case EADDRINUSE: code = "EADDRINUSE"; break;
    case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
    case EACCES: code = "EACCES"; break;
    case EAFNOSUPPORT: code = "EAFNOSUPPORT"; break;
    case EINVAL: code = "EINVAL"; break;
    default: break;
  }
  napi_throw_error(env, code, msg);
  return NULL;
}

static void call_js(reader_t *r, int n, int kind) {
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, args[2], result;
  /* napi_make_callback wants an object as `this`: the global one, as for a plain function call. */
  if (napi_get_reference_value(env, r->callback, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, n, &args[0]) == napi_ok && napi_create_int32(env, kind, &args[1]) == napi_ok) {
    if (napi_make_callback(env, r->async, recv, cb, 2, args, &result) != napi_ok) {
      /* A throw in the callback: report it like any asynchronous callback's ('uncaughtException'). */
      bool pending = false;
      napi_value err;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending && napi_get_and_clear_last_exception(env, &err) == napi_ok) {
        napi_fatal_exception(env, err);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

/*
 * Reads up to MAX_ROUNDS full batches. Returns how many datagrams it read; *more is set when the rounds ran out
 * with the last batch full (more are likely waiting), clear when the queue was emptied (or a read failed).
 */
static int clear_socket_error(reader_t *r, int *queued);
static int recverr_on(reader_t *r);

static int drain(reader_t *r, int *more) {
  int got = 0;
  *more = 0;
  for (int round = 0; round < MAX_ROUNDS && !r->closed; round++) {
    /* The headers were set up in open(): recvmmsg only writes msg_len and msg_flags (no name, no control). */
    int n = recvmmsg(r->fd, r->msgs, r->slots, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        /* The read returned the socket's pending error (and cleared it). With IP_RECVERR on, the same error also
         * sits in the error queue and would raise POLLERR next, to be counted a second time: it is cleared with
         * this one. When the queue held nothing though IP_RECVERR is on, its entry was taken (and reported) by
         * an earlier clear: this is the second copy (see clear_socket_error). One error, one count. */
        int e = errno, queued = 0;
        (void)clear_socket_error(r, &queued);
        if (queued > 0 || !recverr_on(r)) call_js(r, -e, KIND_READ);
      }
      return got;
    }
    if (n == 0) return got;
    for (int i = 0; i < n; i++) r->lens[i] = (int32_t)r->msgs[i].msg_len;
    got += n;
    call_js(r, n, KIND_READ);
    if ((uint32_t)n < r->slots) return got; /* the queue is empty */
  }
  *more = !r->closed;
  return got;
}

static void on_readable(uv_poll_t *handle, int status, int events);
static void on_hold_over(uv_timer_t *timer);

static void poll_again(reader_t *r) {
  r->holding = 0;
  if (!r->polling && !r->closed && uv_poll_start(&r->poll, UV_READABLE, on_readable) == 0) r->polling = 1;
}

/*
 * Holding: under a steady stream each wakeup finds only the few datagrams that arrived since the last one, and
 * pays an epoll round, a recvmmsg and a call into JavaScript for them. After a wakeup that read datagrams and
 * emptied the queue, the reader stops polling and reads again hold_ms later, when the kernel has queued a
 * fuller batch (at 300,000 datagrams/s, 300 in 1 ms: ~5 calls of 64 instead of ~100 of 3). The receive buffer
 * holds them meanwhile (UdpServer holds only when it is large); a wakeup that finds nothing goes back to polling,
 * so an idle or slow socket costs no timer at all.
 */
static void hold(reader_t *r) {
  if (r->polling) {
    uv_poll_stop(&r->poll);
    r->polling = 0;
  }
  r->holding = 1;
  uv_timer_start(&r->timer, on_hold_over, r->hold_ms, 0);
}

/*
 * Whether another holder of the socket turned IP_RECVERR (IPV6_RECVERR) on. Then the kernel reports each ICMP error
 * twice: an error-queue entry (which raises POLLERR at once) and, a moment later in the same softirq, SO_ERROR. A
 * reader woken between the two takes the entry, and finds SO_ERROR set on its next look: the same error, not
 * counted again. (Should the queue be too full to take the entry, the kernel sets SO_ERROR alone and that error
 * goes uncounted; tallyd itself never sets IP_RECVERR, and without it an unconnected UDP socket gets no ICMP
 * errors at all.)
 */
static int recverr_on(reader_t *r) {
  int domain = 0, on = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(r->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return 0;
  len = sizeof on;
  if (getsockopt(r->fd, domain == AF_INET6 ? SOL_IPV6 : SOL_IP, domain == AF_INET6 ? IPV6_RECVERR : IP_RECVERR, &on, &len) != 0) return 0;
  return on != 0;
}

/*
 * The socket's pending error, cleared: SO_ERROR (reading it resets it) and the entries of its error queue (only
 * there when someone set IP_RECVERR on the socket). Either keeps EPOLLERR raised until cleared. Returns the errno
 * (0 when the kernel kept none), or -1 when the fd is no usable socket any more; *queued is the number of
 * error-queue entries taken.
 */
static int clear_socket_error(reader_t *r, int *queued) {
  *queued = 0;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -1;
  for (int i = 0; i < MAX_ERRQUEUE; i++) {
    char byte, control[512];
    struct iovec iov = {&byte, 1};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    if (recvmsg(r->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    (*queued)++;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); err == 0 && c != NULL; c = CMSG_NXTHDR(&mh, c)) {
      if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) || (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
        struct sock_extended_err ee;
        memcpy(&ee, CMSG_DATA(c), sizeof ee);
        err = (int)ee.ee_errno;
      }
    }
  }
  return err;
}

/*
 * A poll error: on POLLERR libuv stops the poll handle and calls back with a status (UV_EBADF, whatever the
 * socket's error). The socket's error is read and cleared and the poll started again, so ingest goes on; JavaScript
 * hears of it (kind 1) to count and log it. When that cannot be done the reader has stopped, and says so (kind 2).
 */
static void on_poll_error(reader_t *r, int status) {
  r->polling = 0; /* libuv stopped the handle */
  uv_poll_stop(&r->poll);
  int queued = 0;
  int err = clear_socket_error(r, &queued);
  /* Nothing pending (a read took the error and reported it), or SO_ERROR alone while IP_RECVERR is on (the second
   * copy of an error whose queue entry was taken and reported: recverr_on): cleared, not counted again. */
  int again = err == 0 || (err > 0 && queued == 0 && recverr_on(r));
  int rc = err < 0 ? status : r->fault == FAULT_POLL_RESTART ? UV_EBADF : uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (rc == 0) {
    r->polling = 1;
    if (!again) call_js(r, -err, KIND_POLL_ERROR);
  } else {
    call_js(r, err > 0 ? -err : rc, KIND_STOPPED);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  reader_t *r = (reader_t *)handle->data;
  if (r->closed) return;
  if (status < 0) {
    on_poll_error(r, status);
    return;
  }
  int more;
  int got = drain(r, &more);
  if (!r->closed && r->hold_ms > 0 && got > 0 && !more) hold(r);
}

static void on_hold_over(uv_timer_t *timer) {
  reader_t *r = (reader_t *)timer->data;
  if (r->closed) return;
  int more;
  int got = drain(r, &more);
  if (r->closed) return;
  if (got > 0 && !more) hold(r); /* still streaming: hold again */
  else poll_again(r);             /* idle (wake on the next datagram), or a backlog (the poll fires at once) */
}

static void env_teardown(napi_async_cleanup_hook_handle handle, void *arg);

/*
 * Everything but libuv's handles and the struct itself: the socket, the references, the async context, the arrays.
 * While Node tears the environment down the N-API objects are its to free (the context is gone: a call would crash).
 */
static void release(reader_t *r) {
  napi_env env = r->env;
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  if (!r->env_gone) {
    if (r->callback != NULL) napi_delete_reference(env, r->callback);
    if (r->buffer != NULL) napi_delete_reference(env, r->buffer);
    if (r->lengths != NULL) napi_delete_reference(env, r->lengths);
    if (r->async_ok) napi_async_destroy(env, r->async);
  }
  /* Before the hook ran: unregisters it. After: tells Node this reader's teardown is done (it waited for it). */
  if (r->hooked) napi_remove_async_cleanup_hook(r->cleanup);
  r->callback = r->buffer = r->lengths = NULL;
  r->async_ok = 0;
  r->hooked = 0;
  free(r->msgs);
  free(r->iovs);
  r->msgs = NULL;
  r->iovs = NULL;
}

static void on_close(uv_handle_t *handle) {
  reader_t *r = (reader_t *)handle->data;
  if (--r->open_handles > 0) return; /* the other handle is still closing */
  release(r);
  r->handle_closed = 1;
  if (r->finalized) free(r); /* else the handle object's finalizer frees it */
}

static void close_reader(reader_t *r) {
  if (r->closed) return;
  r->closed = 1;
  if (r->polling) {
    uv_poll_stop(&r->poll);
    r->polling = 0;
  }
  r->holding = 0;
  /* open() may have failed before initialising both handles: close those it did (open_handles of them). */
  int timer = r->open_handles > 1;
  if (timer) uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->poll, on_close);
  if (timer) uv_close((uv_handle_t *)&r->timer, on_close);
}

/*
 * The environment is being torn down (the process exits, or a worker thread ends) with this reader not yet
 * released. An async cleanup hook, so Node waits until release() says it is done: a worker's loop runs the
 * close callbacks (on_close) before the addon is unloaded, not after. From here on the reader makes no N-API call
 * (N-API's own teardown, which runs the handle objects' finalizers, comes in the same pass: the context is gone).
 */
static void env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  reader_t *r = (reader_t *)arg;
  r->env_gone = 1;
  close_reader(r);
}

/* The handle object was collected: close if still open; free once libuv is done with the struct. */
static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  reader_t *r = (reader_t *)data;
  r->finalized = 1;
  if (!r->closed) close_reader(r);
  else if (r->handle_closed) free(r);
}

/* The reader handle passed as the call's first argument, or NULL with a TypeError thrown. */
static reader_t *reader_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok ||
      p == NULL) {
    napi_throw_type_error(env, "EINVAL", "not a udp reader handle");
    return NULL;
  }
  return (reader_t *)p;
}

/* TALLYD_NATIVE_FAULT: see the comment at the top. */
static int fault_asked(void) {
  const char *f = getenv("TALLYD_NATIVE_FAULT");
  if (f == NULL) return FAULT_NONE;
  if (strcmp(f, "open-after-poll-init") == 0) return FAULT_AFTER_POLL_INIT;
  if (strcmp(f, "open-after-timer-init") == 0) return FAULT_AFTER_TIMER_INIT;
  if (strcmp(f, "open-after-refs") == 0) return FAULT_AFTER_REFS;
  if (strcmp(f, "open-after-external") == 0) return FAULT_AFTER_EXTERNAL;
  if (strcmp(f, "poll-restart") == 0) return FAULT_POLL_RESTART;
  return FAULT_NONE;
}

static napi_value internal_error(napi_env env, const char *msg) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) napi_throw_error(env, "EINTERNAL", msg);
  return NULL;
}

/*
 * open() failed after libuv took the poll handle (and maybe the timer): close them through the loop; on_close
 * closes the socket, drops the references and the async context, and frees the struct (or the handle object's
 * finalizer does, when it was made).
 */
static napi_value open_failed(napi_env env, reader_t *r) {
  close_reader(r);
  return internal_error(env, "could not set up the udp reader");
}

/* open(family, address, port, rcvbuf, reuseport, buffer, slotSize, lengths, callback) */
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 9) {
    napi_throw_type_error(env, "EINVAL", "open() takes 9 arguments");
    return NULL;
  }
  int32_t family, port, rcvbuf, slot;
  bool reuseport;
  char address[INET6_ADDRSTRLEN + 1];
  size_t alen;
  CHECK(env, napi_get_value_int32(env, argv[0], &family));
  CHECK(env, napi_get_value_string_utf8(env, argv[1], address, sizeof address, &alen));
  CHECK(env, napi_get_value_int32(env, argv[2], &port));
  CHECK(env, napi_get_value_int32(env, argv[3], &rcvbuf));
  CHECK(env, napi_get_value_bool(env, argv[4], &reuseport));
  void *data;
  size_t data_len;
  CHECK(env, napi_get_buffer_info(env, argv[5], &data, &data_len));
  CHECK(env, napi_get_value_int32(env, argv[6], &slot));
  napi_typedarray_type ltype;
  size_t lcount;
  void *ldata;
  CHECK(env, napi_get_typedarray_info(env, argv[7], &ltype, &lcount, &ldata, NULL, NULL));
  napi_valuetype cbtype;
  CHECK(env, napi_typeof(env, argv[8], &cbtype));
  if (slot <= 0 || data_len < (size_t)slot || ltype != napi_int32_array || cbtype != napi_function || port < 0 || port > 65535) {
    napi_throw_type_error(env, "EINVAL", "open(): bad arguments");
    return NULL;
  }
  uint32_t slots = (uint32_t)(data_len / (size_t)slot);
  if (slots > lcount) slots = (uint32_t)lcount;
  if (slots == 0) {
    napi_throw_type_error(env, "EINVAL", "open(): no room for a datagram");
    return NULL;
  }

  struct sockaddr_storage sa;
  socklen_t salen;
  memset(&sa, 0, sizeof sa);
  if (family == 6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, address, &s6->sin6_addr) != 1) return throw_errno(env, "not an IPv6 address", EINVAL);
    salen = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &s4->sin_addr) != 1) return throw_errno(env, "not an IPv4 address", EINVAL);
    salen = sizeof *s4;
  }
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1, zero = 0;
  if (family == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* dual stack, like node:dgram */
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "SO_REUSEPORT", e);
  }
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* capped by net.core.rmem_max; read back below */
  if (bind(fd, (struct sockaddr *)&sa, salen) != 0) {
    int e = errno;
    close(fd);
    char what[INET6_ADDRSTRLEN + 32];
    snprintf(what, sizeof what, "bind %s:%d", address, port);
    return throw_errno(env, what, e);
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  int bound_port = port;
  if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0) {
    bound_port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port) : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  }
  int granted = 0;
  socklen_t glen = sizeof granted;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &glen);
  reader_t *r = (reader_t *)calloc(1, sizeof *r);
  if (r == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  r->fd = fd;
  r->env = env;
  r->fault = fault_asked();
  r->data = (char *)data;
  r->slot = (size_t)slot;
  r->slots = slots;
  r->lens = (int32_t *)ldata;
  r->msgs = (struct mmsghdr *)calloc(slots, sizeof *r->msgs);
  r->iovs = (struct iovec *)calloc(slots, sizeof *r->iovs);
  uv_loop_t *loop = NULL;
  napi_value name;
  /* Until libuv has a handle, a failure releases by hand; after, only through uv_close (close_reader). */
  if (r->msgs == NULL || r->iovs == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_string_utf8(env, "tallyd:udp", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      !(r->async_ok = napi_async_init(env, NULL, name, &r->async) == napi_ok) || uv_poll_init(loop, &r->poll, fd) != 0) {
    release(r);
    free(r);
    return internal_error(env, "could not set up the udp reader");
  }
  r->poll.data = r;
  r->timer.data = r;
  r->open_handles = 1;
  r->finalized = 1; /* no handle object yet: on_close frees the struct */
  r->hooked = napi_add_async_cleanup_hook(env, env_teardown, r, &r->cleanup) == napi_ok;
  if (!r->hooked || r->fault == FAULT_AFTER_POLL_INIT || uv_timer_init(loop, &r->timer) != 0) return open_failed(env, r);
  r->open_handles = 2;
  if (r->fault == FAULT_AFTER_TIMER_INIT) return open_failed(env, r);
  for (uint32_t i = 0; i < slots; i++) {
    r->iovs[i].iov_base = r->data + (size_t)i * r->slot;
    r->iovs[i].iov_len = r->slot;
    r->msgs[i].msg_hdr.msg_iov = &r->iovs[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  if (napi_create_reference(env, argv[8], 1, &r->callback) != napi_ok || napi_create_reference(env, argv[5], 1, &r->buffer) != napi_ok ||
      napi_create_reference(env, argv[7], 1, &r->lengths) != napi_ok || r->fault == FAULT_AFTER_REFS) {
    return open_failed(env, r);
  }
  napi_value out, handle, v;
  if (napi_create_external(env, r, finalize_handle, NULL, &handle) != napi_ok) return open_failed(env, r);
  /* From here the handle object owns the struct: its finalizer frees it once libuv is done with it. */
  r->finalized = 0;
  if (r->fault == FAULT_AFTER_EXTERNAL || napi_create_object(env, &out) != napi_ok || napi_set_named_property(env, out, "handle", handle) != napi_ok ||
      napi_create_int32(env, bound_port, &v) != napi_ok || napi_set_named_property(env, out, "port", v) != napi_ok ||
      napi_create_int32(env, granted, &v) != napi_ok || napi_set_named_property(env, out, "rcvbuf", v) != napi_ok ||
      napi_create_uint32(env, slots, &v) != napi_ok || napi_set_named_property(env, out, "slots", v) != napi_ok) {
    return open_failed(env, r);
  }
  return out;
}

static napi_value Start(napi_env env, napi_callback_info info) {
  reader_t *r = reader_arg(env, info);
  if (r == NULL || r->closed || r->polling || r->holding) return NULL;
  size_t argc = 2;
  napi_value argv[2];
  int32_t hold_ms = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 2) {
    napi_valuetype t;
    if (napi_typeof(env, argv[1], &t) == napi_ok && t == napi_number) napi_get_value_int32(env, argv[1], &hold_ms);
  }
  r->hold_ms = hold_ms > 0 ? (uint64_t)hold_ms : 0;
  int rc = uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (rc != 0) return throw_errno(env, "uv_poll_start", -rc);
  r->polling = 1;
  return NULL;
}

/*
 * A clean stop must not lose what the kernel already queued for tallyd. Connected to a peer that never sends (the
 * discard port on loopback), the socket takes no new datagrams: the kernel only delivers to a connected UDP socket
 * what comes from its peer. What was queued before stays, and is read to the end before the close.
 */
static void quiesce(reader_t *r) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(r->fd, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_port = htons(9);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)connect(r->fd, (struct sockaddr *)&peer, sizeof peer);
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 peer;
    memset(&peer, 0, sizeof peer);
    peer.sin6_family = AF_INET6;
    peer.sin6_port = htons(9);
    peer.sin6_addr = in6addr_loopback;
    (void)connect(r->fd, (struct sockaddr *)&peer, sizeof peer);
  }
}

static napi_value Close(napi_env env, napi_callback_info info) {
  reader_t *r = reader_arg(env, info);
  if (r == NULL || r->closed) return NULL;
  quiesce(r);
  int more = 1;
  while (more && !r->closed) drain(r, &more);
  close_reader(r);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
    {"start", NULL, Start, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  if (!tallyd_zmq_scan_init(env, exports)) return NULL;
  if (!tallyd_zmq_inflate_init(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
