/* Tests for the virtio console data path with a fake guest and a socketpair. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/virtio_console.h"
#include "tests/virtio_guest.h"

#define QSIZE  16
#define RX_GPA 0x40000 /* receive buffers, 4 KiB apart */
#define TX_GPA 0x80000

static struct guest_mem mem;
static struct ioloop loop;
static struct virtio_console con;
static struct mmio_region win;
static struct fake_ring rings[2];
static int sv[2]; /* sv[0]: the worker's end; sv[1]: the device's */
static const char *failed_why;

static void on_failed(void *opaque, const char *why)
{
	failed_why = why;
}

static void setup(void)
{
	struct virtio_console_params p = {
	    .base = 0xd0000000,
	    .gsi = 5,
	    .mem = &mem,
	    .loop = &loop,
	    .failed = on_failed,
	};

	fake_mem_init(&mem);
	cr_assert_eq(ioloop_init(&loop, 64), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p.host_fd = sv[1];
	cr_assert_eq(virtio_console_init(&con, &p), 0);
	virtio_console_region(&con, &win);
	fake_ring_init(&rings[0], &mem, QSIZE, 0x1000);
	fake_ring_init(&rings[1], &mem, QSIZE, 0x2000);
	failed_why = NULL;
}

static void teardown(void)
{
	ioloop_exit(&loop);
	virtio_console_exit(&con);
	close(sv[0]);
	close(sv[1]);
	fake_mem_free(&mem);
}

TestSuite(virtio_console, .init = setup, .fini = teardown, .timeout = 30);

static void start_driver(void)
{
	cr_assert_eq(fake_driver_start(&win, rings, 2),
		     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static bool irq_pending(void)
{
	struct pollfd p = {.fd = con.mmio.irq_fd, .events = POLLIN};
	uint64_t n;

	if (poll(&p, 1, 0) != 1)
		return false;
	cr_assert_eq(read(con.mmio.irq_fd, &n, sizeof(n)), sizeof(n));
	/* What the guest's interrupt handler does. */
	fake_wr(&win, VIRTIO_MMIO_INTERRUPT_ACK,
		fake_rd(&win, VIRTIO_MMIO_INTERRUPT_STATUS));
	return true;
}

/* Serve the device until it interrupts the guest. */
static void run_until_irq(void)
{
	while (!irq_pending())
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
}

/* Serve whatever is ready without waiting. */
static void run_ready(void)
{
	while (ioloop_run_once(&loop, false) > 0)
		;
}

static void post_rx(uint16_t i, uint32_t len)
{
	fake_ring_desc(&rings[0], i, RX_GPA + 4096ull * i, len,
		       VIRTQ_DESC_F_WRITE, 0);
	fake_ring_add(&rings[0], i);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_RXQ);
}

static int bytes_waiting(int fd)
{
	int n = 0;

	cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

Test(virtio_console, host_bytes_fill_posted_receive_buffers)
{
	uint32_t id, len;

	start_driver();
	post_rx(0, 64);
	post_rx(1, 64);
	run_ready();
	cr_assert_eq(write(sv[0], "hello", 5), 5);
	run_until_irq();

	cr_assert(fake_ring_used(&rings[0], &id, &len));
	cr_assert_eq(id, 0);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(mem.host + RX_GPA, "hello", 5), 0);
	cr_assert_not(fake_ring_used(&rings[0], &id, &len));
}

Test(virtio_console, host_bytes_wait_until_guest_posts_buffers)
{
	struct virtio_console_stats st;
	uint32_t id, len;

	start_driver();
	cr_assert_eq(write(sv[0], "early", 5), 5);
	run_ready();
	cr_assert_eq(bytes_waiting(sv[1]), 5);
	virtio_console_get_stats(&con, &st);
	cr_assert_eq(st.rx_bytes, 0);

	post_rx(3, 4096);
	run_until_irq();
	cr_assert(fake_ring_used(&rings[0], &id, &len));
	cr_assert_eq(id, 3);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(mem.host + RX_GPA + 3 * 4096, "early", 5), 0);
}

Test(virtio_console, host_bytes_split_across_small_buffers_in_order)
{
	uint32_t id, len;

	start_driver();
	post_rx(0, 4);
	run_ready();
	cr_assert_eq(write(sv[0], "abcdefghij", 10), 10);
	run_until_irq();
	cr_assert(fake_ring_used(&rings[0], &id, &len));
	cr_assert_eq(len, 4);

	/* The rest stays staged until more buffers come. */
	post_rx(1, 4);
	post_rx(2, 4);
	run_until_irq();
	cr_assert(fake_ring_used(&rings[0], &id, &len));
	cr_assert_eq(len, 4);
	cr_assert(fake_ring_used(&rings[0], &id, &len));
	cr_assert_eq(len, 2);
	cr_assert_eq(memcmp(mem.host + RX_GPA, "abcd", 4), 0);
	cr_assert_eq(memcmp(mem.host + RX_GPA + 4096, "efgh", 4), 0);
	cr_assert_eq(memcmp(mem.host + RX_GPA + 8192, "ij", 2), 0);
}

static void post_tx(uint16_t i, const char *s, uint16_t flags, uint16_t next)
{
	uint64_t gpa = TX_GPA + 256ull * i;

	memcpy(mem.host + gpa, s, strlen(s));
	fake_ring_desc(&rings[1], i, gpa, strlen(s), flags, next);
}

Test(virtio_console, guest_transmit_chain_reaches_host_fd)
{
	char buf[16] = "";
	uint32_t id, len;

	start_driver();
	post_tx(4, "abc", VIRTQ_DESC_F_NEXT, 7);
	post_tx(7, "def", 0, 0);
	post_tx(8, "gh", 0, 0);
	fake_ring_add(&rings[1], 4);
	fake_ring_add(&rings[1], 8);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TXQ);
	run_until_irq();

	cr_assert_eq(read_full(sv[0], buf, 8), 0);
	cr_assert_eq(memcmp(buf, "abcdefgh", 8), 0);
	cr_assert(fake_ring_used(&rings[1], &id, &len));
	cr_assert_eq(id, 4);
	cr_assert(fake_ring_used(&rings[1], &id, &len));
	cr_assert_eq(id, 8);
}

Test(virtio_console, transmit_to_closed_host_returns_buffers_and_reports)
{
	struct virtio_console_stats st;
	uint32_t id, len;

	start_driver();
	close(sv[0]);
	sv[0] = -1;
	post_tx(0, "lost", 0, 0);
	fake_ring_add(&rings[1], 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TXQ);
	run_until_irq();

	cr_assert(fake_ring_used(&rings[1], &id, &len));
	virtio_console_get_stats(&con, &st);
	cr_assert_eq(st.host_error, -EPIPE);
}

Test(virtio_console, readable_receive_buffer_stops_device)
{
	start_driver();
	fake_ring_desc(&rings[0], 0, RX_GPA, 64, 0, 0);
	fake_ring_add(&rings[0], 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_RXQ);
	cr_assert_eq(write(sv[0], "x", 1), 1);
	run_until_irq();

	cr_assert(fake_rd(&win, VIRTIO_MMIO_STATUS) &
		  VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_str_eq(failed_why, "receive buffer is read-only");
	cr_assert_str_eq(virtio_console_error(&con),
			 "receive buffer is read-only");
	cr_assert_eq(fake_ring_used_idx(&rings[0]), 0);
}

Test(virtio_console, writable_transmit_buffer_stops_device)
{
	start_driver();
	fake_ring_desc(&rings[1], 0, TX_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	fake_ring_add(&rings[1], 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TXQ);
	run_until_irq();

	cr_assert_str_eq(failed_why, "transmit buffer is write-only");
	cr_assert_eq(bytes_waiting(sv[0]), 0);
}

Test(virtio_console, malformed_transmit_ring_stops_device_not_host)
{
	start_driver();
	fake_ring_desc(&rings[1], 0, TX_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	fake_ring_add(&rings[1], 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TXQ);
	run_until_irq();

	cr_assert_str_eq(failed_why, "descriptor chain longer than the queue");
	/* Kicks after the failure are served without touching the rings. */
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TXQ);
	run_ready();
	cr_assert_eq(fake_ring_used_idx(&rings[1]), 0);
}

Test(virtio_console, kicks_before_driver_ok_are_ignored)
{
	post_rx(0, 64);
	cr_assert_eq(write(sv[0], "z", 1), 1);
	run_ready();
	cr_assert_eq(bytes_waiting(sv[1]), 1);
	cr_assert_eq(fake_ring_used_idx(&rings[0]), 0);
}

Test(virtio_console, counts_notifications_and_interrupts)
{
	struct virtio_console_stats st;

	start_driver();
	post_tx(0, "ping", 0, 0);
	fake_ring_add(&rings[1], 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TXQ);
	run_until_irq();

	virtio_console_get_stats(&con, &st);
	cr_assert_eq(st.tx_bytes, 4);
	cr_assert_eq(st.mmio.interrupts, 1);
	/* The kick, plus the wake-up the device gives itself at DRIVER_OK. */
	cr_assert_geq(st.mmio.notifications, 1);
}

static void *io_thread(void *arg)
{
	return (void *)(intptr_t)ioloop_run(arg);
}

/* The vCPU side (this thread) and the io thread run at once: 256 KiB go
 * through 4 KiB receive buffers, reposted as the guest consumes them. */
static void *host_writer(void *arg)
{
	static uint8_t data[256 * 1024];
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	cr_assert_eq(write_full(sv[0], data, sizeof(data)), 0);
	return NULL;
}

Test(virtio_console, stream_through_io_thread_arrives_intact)
{
	pthread_t io, writer;
	size_t got = 0;
	uint32_t id, len, j;
	uint16_t i;

	start_driver();
	for (i = 0; i < QSIZE; i++)
		post_rx(i, 4096);
	cr_assert_eq(pthread_create(&io, NULL, io_thread, &loop), 0);
	cr_assert_eq(pthread_create(&writer, NULL, host_writer, NULL), 0);

	while (got < 256 * 1024) {
		if (!fake_ring_used(&rings[0], &id, &len))
			continue;
		cr_assert_lt(id, QSIZE);
		for (j = 0; j < len; j++)
			cr_assert_eq(mem.host[RX_GPA + 4096ull * id + j],
				     (uint8_t)((got + j) * 7));
		got += len;
		post_rx(id, 4096);
	}

	ioloop_stop(&loop);
	pthread_join(io, NULL);
	pthread_join(writer, NULL);
	cr_assert_eq(got, 256 * 1024);
}

Test(virtio_console, avail_index_jump_on_receive_queue_stops_device)
{
	start_driver();
	fake_ring_set_avail_idx(&rings[0], QSIZE + 5);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_RXQ);
	run_until_irq();

	cr_assert_str_eq(failed_why,
			 "avail index moved by more than the queue size");
	cr_assert_eq(bytes_waiting(sv[1]), 0);
}

Test(virtio_console, staged_bytes_survive_a_driver_reset)
{
	uint32_t id, len;

	start_driver();
	post_rx(0, 4);
	run_ready();
	cr_assert_eq(write(sv[0], "0123456789", 10), 10);
	run_until_irq();

	/* A new driver instance starts over with fresh rings. */
	fake_ring_init(&rings[0], &mem, QSIZE, 0x4000);
	fake_ring_init(&rings[1], &mem, QSIZE, 0x5000);
	start_driver();
	post_rx(5, 64);
	run_until_irq();
	cr_assert(fake_ring_used(&rings[0], &id, &len));
	cr_assert_eq(id, 5);
	cr_assert_eq(len, 6);
	cr_assert_eq(memcmp(mem.host + RX_GPA + 5 * 4096, "456789", 6), 0);
}
