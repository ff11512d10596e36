/* The guest channel: a single-port virtio console served by an ioloop. */
#include "kvm/virtio_console.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define RXQ VIRTIO_CONSOLE_RXQ
#define TXQ VIRTIO_CONSOLE_TXQ

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static int notify_fd(const struct virtio_console *con, unsigned index)
{
	return con->mmio.queues[index].notify_fd;
}

/* Copy staged host bytes into one receive chain; returns bytes copied. */
static uint32_t fill_chain(struct virtio_console *con,
			   const struct virtq_chain *c)
{
	uint32_t done = 0;
	unsigned i;

	for (i = 0; i < c->n && con->rx_off < con->rx_len; i++) {
		uint32_t n = MIN(c->bufs[i].len, con->rx_len - con->rx_off);
		void *dst = guest_mem_ptr(con->p.mem, c->bufs[i].gpa, n);

		memcpy(dst, con->rx_buf + con->rx_off, n);
		con->rx_off += n;
		done += n;
	}
	return done;
}

/* With the lock held: hand staged bytes to the guest's receive buffers
 * for as long as both last. */
static int deliver(struct virtio_console *con, struct virtq *q)
{
	struct virtq_chain *c = &con->chain;
	bool pushed = false;
	int ret = 0;

	while (con->rx_off < con->rx_len) {
		ret = virtq_pop(q, c);
		if (ret <= 0)
			break;
		if (c->n_read) {
			ret = virtq_fail(q, "receive buffer is read-only");
			break;
		}
		ret = virtq_push(q, c->head, fill_chain(con, c));
		if (ret < 0)
			break;
		pushed = true;
	}

	if (ret < 0)
		virtio_mmio_fail(&con->mmio, q->error);
	if (pushed && virtq_wants_interrupt(q))
		virtio_mmio_interrupt(&con->mmio);
	return ret;
}

/* Read from the host only when the guest has room waiting, so a guest
 * that stops reading stops the host side too. */
static bool want_host_data(struct virtio_console *con, struct virtq *q)
{
	int room;

	if (con->rx_off < con->rx_len || con->host_read.busy || con->host_eof ||
	    con->host_error)
		return false;

	room = virtq_avail_count(q);
	if (room < 0)
		virtio_mmio_fail(&con->mmio, q->error);
	return room > 0;
}

static void rx_service(struct virtio_console *con)
{
	struct virtq *q;
	int ret;

	virtio_mmio_lock(&con->mmio);
	q = virtio_mmio_queue(&con->mmio, RXQ);
	if (q && deliver(con, q) >= 0 && want_host_data(con, q)) {
		ret = ioloop_read(con->p.loop, &con->host_read, con->p.host_fd,
				  con->rx_buf, sizeof(con->rx_buf));
		if (ret < 0)
			con->host_error = ret;
	}
	virtio_mmio_unlock(&con->mmio);
}

static void on_host_read(struct ioloop_op *op, int res, unsigned flags)
{
	struct virtio_console *con = op->opaque;

	if (res == 0)
		con->host_eof = true;
	else if (res < 0 && res != -EINTR && res != -EAGAIN)
		con->host_error = res;

	if (res > 0) {
		con->rx_len = res;
		con->rx_off = 0;
		stat_add(&con->rx_bytes, res);
	}
	rx_service(con);
}

/* With the lock held: take transmit chains while their buffers fit. */
static int gather(struct virtio_console *con, struct virtq *q)
{
	struct virtq_chain *c = &con->chain;
	unsigned i;
	int ret;

	while (con->tx_niov + VIRTQ_MAX_SIZE <= VIRTIO_CONSOLE_TX_IOV) {
		ret = virtq_pop(q, c);
		if (ret <= 0)
			return ret;
		if (c->n_read != c->n)
			return virtq_fail(q, "transmit buffer is write-only");

		for (i = 0; i < c->n; i++)
			con->tx_iov[con->tx_niov++] = (struct iovec){
			    guest_mem_ptr(con->p.mem, c->bufs[i].gpa,
					  c->bufs[i].len),
			    c->bufs[i].len,
			};
		con->tx_heads[con->tx_nheads++] = c->head;
	}
	return 0;
}

/* With the lock held: the batch is out; give its chains back, unless the
 * driver reset the queue meanwhile and they are no longer its own. */
static void finish_tx(struct virtio_console *con)
{
	struct virtq *q = virtio_mmio_queue(&con->mmio, TXQ);
	unsigned i;

	if (q && con->mmio.queues[TXQ].generation == con->tx_generation) {
		for (i = 0; i < con->tx_nheads; i++)
			if (virtq_push(q, con->tx_heads[i], 0) < 0)
				break;
		if (con->tx_nheads && virtq_wants_interrupt(q))
			virtio_mmio_interrupt(&con->mmio);
	}
	con->tx_niov = con->tx_pos = con->tx_nheads = 0;
}

static int send_batch(struct virtio_console *con)
{
	struct iovec *iov = con->tx_iov + con->tx_pos;
	unsigned n = con->tx_niov - con->tx_pos;

	if (!con->host_is_socket)
		return ioloop_writev(con->p.loop, &con->host_write,
				     con->p.host_fd, iov, n);

	memset(&con->tx_msg, 0, sizeof(con->tx_msg));
	con->tx_msg.msg_iov = iov;
	con->tx_msg.msg_iovlen = n;
	return ioloop_sendmsg(con->p.loop, &con->host_write, con->p.host_fd,
			      &con->tx_msg);
}

/* Drop empty buffers at the front of the batch; true when none is left. */
static bool skip_empty(struct virtio_console *con)
{
	while (con->tx_pos < con->tx_niov && !con->tx_iov[con->tx_pos].iov_len)
		con->tx_pos++;
	return con->tx_pos == con->tx_niov;
}

/* Send what is left of the batch; false when nothing was sent because
 * nothing is left or the host side has failed. Once it failed, what the
 * guest sends is dropped: a guest waiting for its transmit buffers must
 * not wait forever. */
static bool send_rest(struct virtio_console *con)
{
	int ret;

	if (skip_empty(con) || con->host_error)
		return false;

	ret = send_batch(con);
	if (ret < 0)
		con->host_error = ret;
	return ret == 0;
}

static void tx_service(struct virtio_console *con)
{
	struct virtq *q;
	bool again = true;

	virtio_mmio_lock(&con->mmio);
	while (again && !con->host_write.busy) {
		q = virtio_mmio_queue(&con->mmio, TXQ);
		if (!q)
			break;

		con->tx_generation = con->mmio.queues[TXQ].generation;
		if (gather(con, q) < 0)
			virtio_mmio_fail(&con->mmio, q->error);

		again = con->tx_nheads > 0;
		if (send_rest(con))
			break;
		finish_tx(con);
	}
	virtio_mmio_unlock(&con->mmio);
}

/* Step past `n` written bytes of the batch. */
static void advance(struct virtio_console *con, size_t n)
{
	while (n && con->tx_pos < con->tx_niov) {
		struct iovec *v = &con->tx_iov[con->tx_pos];
		size_t step = MIN(n, v->iov_len);

		v->iov_base = (uint8_t *)v->iov_base + step;
		v->iov_len -= step;
		n -= step;
		if (!v->iov_len)
			con->tx_pos++;
	}
}

static void on_host_write(struct ioloop_op *op, int res, unsigned flags)
{
	struct virtio_console *con = op->opaque;

	if (res > 0) {
		stat_add(&con->tx_bytes, res);
		advance(con, res);
	} else if (res != -EINTR && res != -EAGAIN) {
		con->host_error = res ? res : -EPIPE;
	}

	if (send_rest(con))
		return;

	virtio_mmio_lock(&con->mmio);
	finish_tx(con);
	virtio_mmio_unlock(&con->mmio);
	tx_service(con);
}

/* A kick: drain the eventfd (its count is the number of notifications)
 * and serve the queue. */
static uint64_t take_kicks(struct virtio_console *con, unsigned index)
{
	uint64_t n = 0;

	if (read(notify_fd(con, index), &n, sizeof(n)) < 0)
		return 0;
	virtio_mmio_count_notify(&con->mmio, n);
	return n;
}

static void on_rx_kick(struct ioloop_op *op, int res, unsigned flags)
{
	struct virtio_console *con = op->opaque;

	take_kicks(con, RXQ);
	rx_service(con);
}

static void on_tx_kick(struct ioloop_op *op, int res, unsigned flags)
{
	struct virtio_console *con = op->opaque;

	take_kicks(con, TXQ);
	tx_service(con);
}

static void on_failed(void *opaque, const char *why)
{
	struct virtio_console *con = opaque;

	if (con->p.failed)
		con->p.failed(con->p.opaque, why);
}

/* The queues just started: bytes staged before a reset can go now. The
 * io thread learns of it through the rx eventfd, like a kick. */
static void on_driver_ok(void *opaque)
{
	struct virtio_console *con = opaque;
	uint64_t one = 1;

	if (write(notify_fd(con, RXQ), &one, sizeof(one)) < 0)
		return;
}

static const struct virtio_mmio_ops console_ops = {
    .driver_ok = on_driver_ok,
    .failed = on_failed,
};

static void init_ops(struct virtio_console *con)
{
	con->rx_kick = (struct ioloop_op){.done = on_rx_kick, .opaque = con};
	con->tx_kick = (struct ioloop_op){.done = on_tx_kick, .opaque = con};
	con->host_read =
	    (struct ioloop_op){.done = on_host_read, .opaque = con};
	con->host_write =
	    (struct ioloop_op){.done = on_host_write, .opaque = con};
}

static bool is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int virtio_console_init(struct virtio_console *con,
			const struct virtio_console_params *p)
{
	struct virtio_mmio_params mp = {
	    .base = p->base,
	    .gsi = p->gsi,
	    .device_id = VIRTIO_ID_CONSOLE,
	    .nqueues = 2,
	    .queue_max = VIRTIO_CONSOLE_QUEUE_MAX,
	    .config = con->config,
	    .config_len = sizeof(con->config),
	    .mem = p->mem,
	    .ops = &console_ops,
	    .opaque = con,
	};
	int ret;

	memset(con, 0, sizeof(*con));
	con->p = *p;
	con->host_is_socket = is_socket(p->host_fd);
	init_ops(con);

	ret = virtio_mmio_init(&con->mmio, &mp);
	if (ret < 0)
		return ret;

	ret = ioloop_poll(p->loop, &con->rx_kick, notify_fd(con, RXQ), POLLIN);
	if (ret < 0)
		goto err_exit_mmio;
	ret = ioloop_poll(p->loop, &con->tx_kick, notify_fd(con, TXQ), POLLIN);
	if (ret < 0)
		goto err_cancel_rx_kick;
	return 0;

err_cancel_rx_kick:
	ioloop_cancel(p->loop, &con->rx_kick);
err_exit_mmio:
	virtio_mmio_exit(&con->mmio);
	return ret;
}

void virtio_console_exit(struct virtio_console *con)
{
	virtio_mmio_exit(&con->mmio);
}

void virtio_console_region(struct virtio_console *con, struct mmio_region *r)
{
	virtio_mmio_region(&con->mmio, r);
}

int virtio_console_attach_kvm(struct virtio_console *con, int vm_fd)
{
	return virtio_mmio_attach_kvm(&con->mmio, vm_fd);
}

int virtio_console_cmdline(const struct virtio_console *con, char *buf,
			   size_t size)
{
	return virtio_mmio_cmdline(&con->mmio, buf, size);
}

void virtio_console_get_stats(struct virtio_console *con,
			      struct virtio_console_stats *out)
{
	virtio_mmio_get_stats(&con->mmio, &out->mmio);
	out->rx_bytes = __atomic_load_n(&con->rx_bytes, __ATOMIC_RELAXED);
	out->tx_bytes = __atomic_load_n(&con->tx_bytes, __ATOMIC_RELAXED);
	out->host_error = con->host_error;
	out->host_eof = con->host_eof;
}

const char *virtio_console_error(struct virtio_console *con)
{
	const char *why;

	virtio_mmio_lock(&con->mmio);
	why = con->mmio.error;
	virtio_mmio_unlock(&con->mmio);
	return why;
}
