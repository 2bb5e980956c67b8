/*
 * tallyd bench load generator: sends a fixed number of UDP datagrams to
 * 127.0.0.1:<port> at a paced rate with sendmmsg, looping over a corpus file.
 *
 *   loadgen <corpus> <port> <datagrams-per-second> <count> [--no-gso]
 *
 * The corpus is the datagrams one after another, each ended by a NUL byte
 * (bench/lib/load.ts writes it and knows the exact totals of any prefix). Every
 * run of 7 '#' bytes is a loop stamp: before each pass over the corpus it is
 * overwritten with the pass number, zero-padded, so set members stay distinct
 * across passes and set sizes can be summed like counters.
 *
 * Pacing: datagram k is due at start + k / rate; every millisecond the due
 * ones go out in sendmmsg batches, each batch from the next of SOURCES
 * sockets (source ports), as from several clients: a server whose workers
 * each bind the port with SO_REUSEPORT (tallyd's native reader in a
 * cluster) gets the senders spread over them by the kernel, as it would
 * with many real clients. A single socket reads them all the same. If the sender falls behind it sends as
 * fast as it can and the report shows it (elapsed_s > count / rate).
 *
 * UDP GSO (unless --no-gso, or the kernel refuses it): consecutive datagrams go out as one UDP_SEGMENT message
 * of up to 64 equal-sized segments, each padded with '\n' (empty lines, which statsd and tallyd skip). The
 * kernel splits the message into ordinary datagrams before it queues them on the receiving socket, which has no
 * UDP_GRO: the server reads the same datagrams, one by one, at the same pace. The sender pays the IP stack once
 * per message instead of once per datagram: about half the CPU for the same rate, which on a 2-core machine is
 * CPU left for the server. The report's "gso" says which way it went.
 *
 * Prints one JSON line: {"sent":..,"elapsed_s":..,"errors":..,"loops":..,
 * "cpu_user_s":..,"cpu_sys_s":..,"max_behind_ms":..}
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define MSGS 16
#define GSO_SEGS 64
#define GSO_BYTES 65000
#define SOURCES 16
#define STAMP_LEN 7

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(buf);
    return NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void stamp(char *buf, size_t *at, size_t n_at, unsigned long loop) {
  char digits[16];
  snprintf(digits, sizeof digits, "%0*lu", STAMP_LEN, loop % 10000000UL);
  for (size_t i = 0; i < n_at; i++) memcpy(buf + at[i], digits, STAMP_LEN);
}

int main(int argc, char **argv) {
  if (argc != 5 && !(argc == 6 && strcmp(argv[5], "--no-gso") == 0)) {
    fprintf(stderr, "usage: loadgen <corpus> <port> <datagrams-per-second> <count> [--no-gso]\n");
    return 2;
  }
  size_t len = 0;
  char *buf = read_file(argv[1], &len);
  if (!buf) {
    perror(argv[1]);
    return 1;
  }
  int port = atoi(argv[2]);
  double rate = atof(argv[3]);
  unsigned long long count = strtoull(argv[4], NULL, 10);
  if (port <= 0 || rate <= 0) {
    fprintf(stderr, "loadgen: bad port or rate\n");
    return 2;
  }

  /* Index the datagrams and the loop stamps. */
  size_t n = 0, n_stamps = 0;
  for (size_t i = 0; i < len; i++) if (buf[i] == 0) n++;
  struct iovec *iov = calloc(n ? n : 1, sizeof *iov);
  size_t *stamps = NULL, cap = 0;
  size_t start = 0, d = 0, run = 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] == '#') {
      if (++run == STAMP_LEN) {
        if (n_stamps == cap) {
          cap = cap ? cap * 2 : 1024;
          stamps = realloc(stamps, cap * sizeof *stamps);
        }
        stamps[n_stamps++] = i + 1 - STAMP_LEN;
        run = 0;
      }
      continue;
    }
    run = 0;
    if (buf[i] == 0) {
      iov[d].iov_base = buf + start;
      iov[d].iov_len = i - start;
      d++;
      start = i + 1;
    }
  }
  if (n == 0) {
    fprintf(stderr, "loadgen: empty corpus\n");
    return 1;
  }

  int fds[SOURCES];
  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_port = htons((uint16_t)port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int s = 0; s < SOURCES; s++) {
    fds[s] = socket(AF_INET, SOCK_DGRAM, 0);
    int sndbuf = 4 << 20;
    setsockopt(fds[s], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (connect(fds[s], (struct sockaddr *)&to, sizeof to) != 0) {
      perror("connect");
      return 1;
    }
  }
  unsigned int source = 0;

  /* GSO: a run of datagrams goes out as one UDP_SEGMENT message of equal-sized segments (each padded with '\n',
   * an empty line both servers skip); the kernel splits it into ordinary datagrams before it queues them on the
   * receiving socket, so the server reads the same datagrams, and the sender pays the IP stack once per message. */
  static struct mmsghdr msgs[BATCH];
  static struct iovec gso_iov[MSGS];
  static char gso_buf[MSGS][GSO_BYTES];
  static union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[MSGS];
  unsigned int segs[BATCH];
  int use_gso = argc == 5;
  memset(msgs, 0, sizeof msgs);
  unsigned long long sent = 0, errors = 0;
  unsigned long loop = 0;
  size_t pos = 0;
  stamp(buf, stamps, n_stamps, loop);
  double t0 = now_s(), max_behind = 0;
  const double give_up = t0 + (double)count / rate * 3 + 10;

  while (sent < count) {
    double t = now_s();
    if (t > give_up) break;
    unsigned long long due = (unsigned long long)((t - t0) * rate) + 1;
    if (due > count) due = count;
    if (due <= sent) {
      double next = t0 + (double)(sent) / rate;
      double wait = next - t;
      if (wait > 0.001) wait = 0.001;
      struct timespec ts = {0, (long)(wait * 1e9)};
      if (wait > 0) nanosleep(&ts, NULL);
      continue;
    }
    double behind = (t - (t0 + (double)sent / rate)) * 1000;
    if (behind > max_behind) max_behind = behind;
    while (sent < due) {
      unsigned int k = 0;
      int r;
      if (use_gso) {
        /* Up to MSGS messages of up to GSO_SEGS segments, never past the corpus end (the stamps change there). */
        size_t p = pos;
        unsigned long long left = due - sent;
        while (k < MSGS && left > 0 && p < n) {
          size_t width = 0;
          unsigned int m = 0;
          while (m < GSO_SEGS && m < left && p + m < n) {
            size_t l = iov[p + m].iov_len;
            size_t w = l > width ? l : width;
            if (w * (m + 1) > GSO_BYTES) break;
            width = w;
            m++;
          }
          if (m == 0) break; /* a datagram larger than GSO_BYTES: cannot happen (max 65507) */
          char *out = gso_buf[k];
          for (unsigned int j = 0; j < m; j++) {
            size_t l = iov[p + j].iov_len;
            memcpy(out, iov[p + j].iov_base, l);
            memset(out + l, '\n', width - l);
            out += width;
          }
          gso_iov[k].iov_base = gso_buf[k];
          gso_iov[k].iov_len = width * m;
          msgs[k].msg_hdr.msg_iov = &gso_iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
          if (m > 1) {
            struct cmsghdr *c = (struct cmsghdr *)ctl[k].buf;
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t gso = (uint16_t)width;
            memcpy(CMSG_DATA(c), &gso, sizeof gso);
            msgs[k].msg_hdr.msg_control = ctl[k].buf;
            msgs[k].msg_hdr.msg_controllen = sizeof ctl[k].buf;
          } else {
            msgs[k].msg_hdr.msg_control = NULL;
            msgs[k].msg_hdr.msg_controllen = 0;
          }
          segs[k] = m;
          p += m;
          left -= m;
          k++;
        }
      } else {
        while (k < BATCH && sent + k < due && pos + k < n) {
          msgs[k].msg_hdr.msg_iov = &iov[pos + k];
          msgs[k].msg_hdr.msg_iovlen = 1;
          msgs[k].msg_hdr.msg_control = NULL;
          msgs[k].msg_hdr.msg_controllen = 0;
          segs[k] = 1;
          k++;
        }
      }
      r = sendmmsg(fds[source++ % SOURCES], msgs, k, 0);
      if (r < 0) {
        if (use_gso && (errno == EINVAL || errno == EIO || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
          use_gso = 0; /* no UDP GSO here: plain datagrams from now on */
          continue;
        }
        errors++;
        if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
          perror("sendmmsg");
          goto done;
        }
        continue;
      }
      unsigned long long d_sent = 0;
      for (int i = 0; i < r; i++) d_sent += segs[i];
      sent += d_sent;
      pos += (size_t)d_sent;
      if (pos == n) {
        pos = 0;
        stamp(buf, stamps, n_stamps, ++loop);
      }
    }
  }
done:;
  double elapsed = now_s() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"sent\":%llu,\"elapsed_s\":%.6f,\"errors\":%llu,\"loops\":%lu,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,"
         "\"max_behind_ms\":%.3f,\"gso\":%s}\n",
         sent, elapsed, errors, loop, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
         ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, max_behind, use_gso ? "true" : "false");
  for (int s = 0; s < SOURCES; s++) close(fds[s]);
  return sent == count ? 0 : 1;
}
