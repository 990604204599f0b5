/*
 * wire_delay.c - a stand-in for tc netem on kernels built without sch_netem: holds every packet
 * that an nftables "queue" rule hands it for a fixed delay, and drops a given share of them.
 *
 *   wire_delay -q QUEUE -d DELAY_MS -l LOSS_PERCENT     (run in the netns whose rule queues)
 *
 * Prints "ready" on stdout once bound to the queue; exits 0 on SIGTERM/SIGINT, after accepting
 * every packet it still holds. Packets keep their order: the delay is the same for all.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Up to this many packets held at once: more than a 20 ms window of a veth at full speed with
 * GSO (64 KiB packets), and the kernel queue's length is set to the same. */
#define HELD_MAX 65536u

struct held {
    uint32_t id;
    double due;
};

static struct held ring[HELD_MAX];
static unsigned head, count;
static double delay_s, loss;
static unsigned long n_seen, n_dropped;
static volatile sig_atomic_t stop;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double uniform(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint32_t)rand();
    return (double)r / 4294967296.0;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *arg)
{
    (void)msg;
    (void)arg;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    n_seen++;
    if (uniform() < loss || count == HELD_MAX) {
        n_dropped++;
        return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
    }
    ring[(head + count) % HELD_MAX] = (struct held){id, now_s() + delay_s};
    count++;
    return 0;
}

static void release_due(struct nfq_q_handle *qh, double t, int all)
{
    while (count && (all || ring[head].due <= t)) {
        nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
        head = (head + 1) % HELD_MAX;
        count--;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: wire_delay -q QUEUE -d DELAY_MS -l LOSS_PERCENT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int qnum = 0, opt;
    double delay_ms = 0, loss_pct = 0;
    while ((opt = getopt(argc, argv, "q:d:l:")) != -1) {
        switch (opt) {
        case 'q': qnum = atoi(optarg); break;
        case 'd': delay_ms = strtod(optarg, NULL); break;
        case 'l': loss_pct = strtod(optarg, NULL); break;
        default: usage();
        }
    }
    if (optind != argc || delay_ms < 0 || loss_pct < 0 || loss_pct > 100)
        usage();
    delay_s = delay_ms / 1000.0;
    loss = loss_pct / 100.0;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct nfq_handle *h = nfq_open();
    if (!h) {
        perror("wire_delay: nfq_open");
        return 1;
    }
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)qnum, on_packet, NULL);
    if (!qh) {
        fprintf(stderr, "wire_delay: cannot bind queue %d: %s\n", qnum, strerror(errno));
        return 1;
    }
    /* Metadata only: the verdict needs the id, not the bytes. GSO packets stay whole. */
    if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0 || nfq_set_queue_maxlen(qh, HELD_MAX) < 0) {
        fprintf(stderr, "wire_delay: queue %d setup: %s\n", qnum, strerror(errno));
        return 1;
    }
    nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);
    int fd = nfq_fd(h);
    /* A lost notification would leave its packet in the kernel's queue for ever. */
    nfnl_rcvbufsiz(nfq_nfnlh(h), 32u << 20);
    int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    printf("ready\n");
    fflush(stdout);

    static char buf[1 << 16];
    while (!stop) {
        double t = now_s();
        release_due(qh, t, 0);
        int wait_ms = 1000;
        if (count) {
            double left = ring[head].due - t;
            wait_ms = left <= 0 ? 0 : (int)(left * 1000.0) + 1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, wait_ms);
        if (n < 0 && errno != EINTR) {
            perror("wire_delay: poll");
            break;
        }
        if (n <= 0)
            continue;
        for (;;) {
            ssize_t len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (len < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ENOBUFS)
                    perror("wire_delay: recv");
                break;
            }
            nfq_handle_packet(h, buf, (int)len);
        }
    }
    release_due(qh, 0, 1);
    fprintf(stderr, "wire_delay: queue %d: %lu packets, %lu dropped, delay %.1f ms\n", qnum,
            n_seen, n_dropped, delay_ms);
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
