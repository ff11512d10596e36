/* vmpool-bench virtio: console echo round trips, next to a plain socket. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/virtio_console.h"
#include "tools/bench.h"

#define RAM_SIZE  (4u << 20)
#define QSIZE	  64
#define BUF_SIZE  4096
#define RX_BUFS	  0x100000 /* QSIZE receive buffers, then transmit ones */
#define TX_BUFS	  (RX_BUFS + QSIZE * BUF_SIZE)
#define RING_BASE 0x10000

/* The driver side of one split ring, as a guest kernel keeps it. */
struct ring {
	uint64_t desc, avail, used;
	uint16_t avail_idx, used_seen;
};

/* A guest that echoes what it receives, driven by its interrupts. */
struct guest {
	struct guest_mem mem;
	struct ioloop loop;
	struct virtio_console con;
	struct mmio_region win;
	struct ring rx, tx;
	unsigned tx_free;
	uint16_t tx_next;
	bool stop;
};

static uint8_t *at(struct guest *g, uint64_t gpa)
{
	return g->mem.host + gpa;
}

static void ring_init(struct ring *r, uint64_t base)
{
	memset(r, 0, sizeof(*r));
	r->desc = base;
	r->avail = base + 16 * QSIZE;
	r->used = base + 8192;
}

static void ring_post(struct guest *g, struct ring *r, uint16_t i, uint64_t gpa,
		      uint32_t len, uint16_t flags)
{
	uint8_t *d = at(g, r->desc + 16ull * i);
	uint16_t zero = 0;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &zero, 2);
	memcpy(at(g, r->avail + 4 + 2 * (r->avail_idx % QSIZE)), &i, 2);
	r->avail_idx++;
	__atomic_store_n((uint16_t *)at(g, r->avail + 2), r->avail_idx,
			 __ATOMIC_RELEASE);
}

static bool ring_used(struct guest *g, struct ring *r, uint32_t elem[2])
{
	uint16_t idx =
	    __atomic_load_n((uint16_t *)at(g, r->used + 2), __ATOMIC_ACQUIRE);

	if (idx == r->used_seen)
		return false;
	memcpy(elem, at(g, r->used + 4 + 8 * (r->used_seen % QSIZE)), 8);
	r->used_seen++;
	return true;
}

static uint32_t rd(struct guest *g, uint64_t off)
{
	uint32_t v = 0;

	g->win.ops->read(g->win.opaque, off, &v, 4);
	return v;
}

static void wr(struct guest *g, uint64_t off, uint32_t v)
{
	g->win.ops->write(g->win.opaque, off, &v, 4);
}

static void start_queue(struct guest *g, unsigned i, const struct ring *r)
{
	wr(g, VIRTIO_MMIO_QUEUE_SEL, i);
	wr(g, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(g, VIRTIO_MMIO_QUEUE_DESC_LOW, r->desc);
	wr(g, VIRTIO_MMIO_QUEUE_AVAIL_LOW, r->avail);
	wr(g, VIRTIO_MMIO_QUEUE_USED_LOW, r->used);
	wr(g, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* The order a Linux driver follows; returns the final status. */
static uint32_t driver_start(struct guest *g)
{
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint16_t i;

	wr(g, VIRTIO_MMIO_STATUS, 0);
	wr(g, VIRTIO_MMIO_STATUS, st);
	wr(g, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(g, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	st |= VIRTIO_STATUS_FEATURES_OK;
	wr(g, VIRTIO_MMIO_STATUS, st);
	start_queue(g, VIRTIO_CONSOLE_RXQ, &g->rx);
	start_queue(g, VIRTIO_CONSOLE_TXQ, &g->tx);
	wr(g, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);

	for (i = 0; i < QSIZE; i++)
		ring_post(g, &g->rx, i, RX_BUFS + i * BUF_SIZE, BUF_SIZE,
			  VIRTQ_DESC_F_WRITE);
	wr(g, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_RXQ);
	g->tx_free = QSIZE;
	return rd(g, VIRTIO_MMIO_STATUS);
}

static void reap_tx(struct guest *g)
{
	uint32_t elem[2];

	while (ring_used(g, &g->tx, elem))
		g->tx_free++;
}

/* Send one received buffer back out; waits for a free transmit slot the
 * way Linux's hvc driver spins on its queue. */
static void echo(struct guest *g, uint16_t id, uint32_t len)
{
	uint16_t slot = g->tx_next++ % QSIZE;
	uint64_t gpa = TX_BUFS + (uint64_t)slot * BUF_SIZE;

	while (!g->tx_free)
		reap_tx(g);
	g->tx_free--;
	memcpy(at(g, gpa), at(g, RX_BUFS + (uint64_t)id * BUF_SIZE), len);
	ring_post(g, &g->tx, slot, gpa, len, 0);
	ring_post(g, &g->rx, id, RX_BUFS + (uint64_t)id * BUF_SIZE, BUF_SIZE,
		  VIRTQ_DESC_F_WRITE);
}

/* One interrupt: acknowledge it as the driver's handler does, echo what
 * arrived, then kick both queues once. */
static void on_interrupt(struct guest *g)
{
	uint32_t elem[2];
	bool any = false;

	wr(g, VIRTIO_MMIO_INTERRUPT_ACK, rd(g, VIRTIO_MMIO_INTERRUPT_STATUS));
	while (ring_used(g, &g->rx, elem)) {
		if (elem[0] >= QSIZE || elem[1] > BUF_SIZE)
			continue;
		echo(g, elem[0], elem[1]);
		any = true;
	}
	reap_tx(g);
	if (!any)
		return;
	wr(g, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TXQ);
	wr(g, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_RXQ);
}

static void *guest_main(void *arg)
{
	struct guest *g = arg;
	struct pollfd p = {.fd = g->con.mmio.irq_fd, .events = POLLIN};
	uint64_t n;

	while (!__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE)) {
		if (poll(&p, 1, 100) != 1)
			continue;
		if (read(p.fd, &n, sizeof(n)) == sizeof(n))
			on_interrupt(g);
	}
	return NULL;
}

static void *loop_main(void *arg)
{
	return (void *)(intptr_t)ioloop_run(arg);
}

/* Plain socketpair echo: the same work without a device in between. */
static void *peer_main(void *arg)
{
	int fd = *(int *)arg;
	char buf[BUF_SIZE];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write_full(fd, buf, n) < 0)
			break;
	return NULL;
}

/* Write a message and read its echo back, `rounds` times; ns per round. */
static int ping(int fd, size_t size, unsigned rounds, double *ns_per)
{
	char out[BUF_SIZE], in[BUF_SIZE];
	uint64_t t0 = now_ns();
	unsigned i;
	int ret;

	memset(out, 'v', size);
	for (i = 0; i < rounds; i++) {
		out[0] = (char)i;
		ret = write_full(fd, out, size);
		if (!ret)
			ret = read_full(fd, in, size);
		if (ret)
			return ret;
		if (memcmp(in, out, size))
			return -EIO;
	}
	*ns_per = (double)(now_ns() - t0) / rounds;
	return 0;
}

static int guest_init(struct guest *g, int host_fd)
{
	struct virtio_console_params p = {
	    .base = 0xd0000000,
	    .gsi = 5,
	    .mem = &g->mem,
	    .loop = &g->loop,
	    .host_fd = host_fd,
	};
	int ret;

	memset(g, 0, sizeof(*g));
	g->mem.size = RAM_SIZE;
	g->mem.host = aligned_alloc(4096, RAM_SIZE);
	if (!g->mem.host)
		return -ENOMEM;
	memset(g->mem.host, 0, RAM_SIZE);

	ret = ioloop_init(&g->loop, 64);
	if (ret < 0)
		goto err_free_mem;
	ret = virtio_console_init(&g->con, &p);
	if (ret < 0)
		goto err_exit_loop;
	virtio_console_region(&g->con, &g->win);
	ring_init(&g->rx, RING_BASE);
	ring_init(&g->tx, RING_BASE + 0x4000);
	return 0;

err_exit_loop:
	ioloop_exit(&g->loop);
err_free_mem:
	free(g->mem.host);
	return ret;
}

static void guest_exit(struct guest *g)
{
	ioloop_exit(&g->loop);
	virtio_console_exit(&g->con);
	free(g->mem.host);
}

/* Run the io thread and the guest while this thread plays the host. */
static int serve(struct guest *g, int fd, size_t size, unsigned rounds,
		 double *ns_per)
{
	pthread_t io, guest;
	int ret;

	ret = -pthread_create(&io, NULL, loop_main, &g->loop);
	if (ret < 0)
		return ret;
	ret = -pthread_create(&guest, NULL, guest_main, g);
	if (ret < 0)
		goto stop_io;

	ret = ping(fd, size, rounds, ns_per);

	__atomic_store_n(&g->stop, true, __ATOMIC_RELEASE);
	pthread_join(guest, NULL);
stop_io:
	ioloop_stop(&g->loop);
	pthread_join(io, NULL);
	return ret;
}

/* The device path: io thread, fake guest thread, this thread as host. */
static int run_device(size_t size, unsigned rounds, double *ns_per,
		      struct virtio_console_stats *st)
{
	static struct guest g;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	ret = guest_init(&g, sv[1]);
	if (ret < 0)
		goto out_close;

	if (driver_start(&g) & VIRTIO_STATUS_NEEDS_RESET)
		ret = -EPROTO;
	else
		ret = serve(&g, sv[0], size, rounds, ns_per);
	virtio_console_get_stats(&g.con, st);

	guest_exit(&g);
out_close:
	close(sv[0]);
	close(sv[1]);
	return ret;
}

static int run_peer(size_t size, unsigned rounds, double *ns_per)
{
	pthread_t t;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	ret = -pthread_create(&t, NULL, peer_main, &sv[1]);
	if (ret < 0)
		goto out_close;

	ret = ping(sv[0], size, rounds, ns_per);
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
out_close:
	close(sv[0]);
	close(sv[1]);
	return ret;
}

static void report(size_t size, unsigned rounds, double dev_ns, double peer_ns,
		   const struct virtio_console_stats *st)
{
	printf("virtio console echo, %zu-byte messages, %u rounds\n", size,
	       rounds);
	printf("  device path   %8.1f us/round trip\n", dev_ns / 1000);
	printf("  socketpair    %8.1f us/round trip\n", peer_ns / 1000);
	printf("  ratio         %8.2f x\n", dev_ns / peer_ns);
	printf("  per round trip: %.2f interrupts, %.2f kicks, "
	       "%.2f register accesses\n",
	       (double)st->mmio.interrupts / rounds,
	       (double)st->mmio.notifications / rounds,
	       (double)st->mmio.mmio_exits / rounds);
	printf("  bytes: %llu to guest, %llu from guest\n",
	       (unsigned long long)st->rx_bytes,
	       (unsigned long long)st->tx_bytes);
}

static int usage(void)
{
	fprintf(stderr, "usage: vmpool-bench virtio [-n ROUNDS] [-s BYTES]\n");
	return 2;
}

int bench_virtio(int argc, char **argv)
{
	struct virtio_console_stats st;
	uint64_t rounds = 20000, size = 64;
	double dev_ns, peer_ns;
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n' && !parse_u64(optarg, 1, 10000000, &rounds))
			continue;
		if (opt == 's' && !parse_u64(optarg, 1, BUF_SIZE, &size))
			continue;
		return usage();
	}

	ret = run_device(size, rounds, &dev_ns, &st);
	if (ret < 0) {
		pr_err("virtio console echo: %s", strerror(-ret));
		return 1;
	}
	ret = run_peer(size, rounds, &peer_ns);
	if (ret < 0) {
		pr_err("socketpair echo: %s", strerror(-ret));
		return 1;
	}
	report(size, rounds, dev_ns, peer_ns, &st);
	return 0;
}
