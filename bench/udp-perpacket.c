/*
 * Benchmark anchor only: flannel's UDP data path (docs/flannel-compat.md §13, proxy_amd64.c) re-done in a
 * few lines: one thread, poll() over a plain TUN and a UDP socket, one packet per read/sendto and per
 * recvfrom/write, no batching, no offloads. One static peer. Built by bench/udp.ts with gcc.
 *
 *   udp-perpacket <tun name> <bind ip> <port> <peer ip>
 *
 * Creates TUN <tun name> (IFF_TUN|IFF_NO_PI) in the current network namespace; runs until killed.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s <tun> <bind ip> <port> <peer ip>\n", argv[0]);
    return 2;
  }
  int tun = open("/dev/net/tun", O_RDWR);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[1]);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) {
    perror("tun");
    return 1;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  struct sockaddr_in peer = me;
  inet_pton(AF_INET, argv[2], &me.sin_addr);
  inet_pton(AF_INET, argv[4], &peer.sin_addr);
  if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0) {
    perror("bind");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  static unsigned char buf[65536];
  struct pollfd p[2] = {{.fd = tun, .events = POLLIN}, {.fd = s, .events = POLLIN}};
  for (;;) {
    if (poll(p, 2, -1) < 0) continue;
    if (p[0].revents & POLLIN) {
      ssize_t n = read(tun, buf, sizeof(buf));
      if (n > 20 && buf[8] > 1) {
        buf[8]--; /* TTL − 1 with an incremental checksum update (RFC 1624), like flannel */
        unsigned sum = (unsigned)(buf[10] << 8 | buf[11]) + 0x100;
        sum = (sum & 0xffff) + (sum >> 16);
        buf[10] = (unsigned char)(sum >> 8);
        buf[11] = (unsigned char)sum;
        sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&peer, sizeof(peer));
      }
    }
    if (p[1].revents & POLLIN) {
      ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0 && write(tun, buf, (size_t)n) < 0) continue;
    }
  }
}
