/* The guest channel: a single-port virtio console served by an ioloop. */
#ifndef VMPOOL_VIRTIO_CONSOLE_H
#define VMPOOL_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/ioloop.h"
#include "kvm/virtio_mmio.h"

#define VIRTIO_ID_CONSOLE 3

#define VIRTIO_CONSOLE_RXQ 0 /* host to guest: the guest's hvc0 input */
#define VIRTIO_CONSOLE_TXQ 1 /* guest to host */

#define VIRTIO_CONSOLE_QUEUE_MAX 256
/* Bytes read from the host fd and not yet taken by the guest: the most
 * the device buffers before the guest must post receive buffers. */
#define VIRTIO_CONSOLE_RX_BUF 65536
#define VIRTIO_CONSOLE_TX_IOV 1024

struct virtio_console_params {
	uint64_t base; /* guest physical base of the MMIO window */
	unsigned gsi;
	const struct guest_mem *mem;
	struct ioloop *loop;
	/* What the guest writes goes here and what is read here goes to the
	 * guest; a socketpair end, left open by virtio_console_exit. */
	int host_fd;
	/* The guest broke a virtio rule and the device stopped. Runs with
	 * the device lock held on the vCPU or io thread: keep it short (set
	 * a flag, write an eventfd). May be NULL. */
	void (*failed)(void *opaque, const char *why);
	void *opaque;
};

struct virtio_console_stats {
	struct virtio_mmio_stats mmio;
	uint64_t rx_bytes; /* host fd to guest */
	uint64_t tx_bytes; /* guest to host fd */
	int host_error;	   /* -errno that ended host fd I/O, 0 while fine */
	bool host_eof;	   /* the host fd reported end of file */
};

struct virtio_console {
	struct virtio_mmio mmio;
	struct virtio_console_params p;
	/* cols, rows, max_nr_ports, emerg_wr: all unused without features. */
	uint8_t config[12];
	bool host_is_socket;

	/* Everything below belongs to the io thread. */
	struct ioloop_op rx_kick, tx_kick;

	struct ioloop_op host_read;
	uint8_t rx_buf[VIRTIO_CONSOLE_RX_BUF];
	uint32_t rx_len, rx_off;
	bool host_eof;
	int host_error;

	struct ioloop_op host_write;
	struct iovec tx_iov[VIRTIO_CONSOLE_TX_IOV];
	unsigned tx_niov, tx_pos;
	uint16_t tx_heads[VIRTQ_MAX_SIZE];
	unsigned tx_nheads;
	uint32_t tx_generation;
	struct msghdr tx_msg;
	struct virtq_chain chain;

	uint64_t rx_bytes, tx_bytes;
};

/* Set the device up and start watching its queues on p->loop. Call it
 * before the loop runs, or on the loop's thread. 0 or -errno. */
int virtio_console_init(struct virtio_console *con,
			const struct virtio_console_params *p);

/* Release the device. The loop must have stopped serving it (stopped, or
 * about to be torn down with ioloop_exit). */
void virtio_console_exit(struct virtio_console *con);

/* The register window to hand to vm_add_mmio. */
void virtio_console_region(struct virtio_console *con, struct mmio_region *r);

/* Route kicks and interrupts through KVM (see virtio_mmio_attach_kvm). */
int virtio_console_attach_kvm(struct virtio_console *con, int vm_fd);

/* The "virtio_mmio.device=..." kernel argument for this device. */
int virtio_console_cmdline(const struct virtio_console *con, char *buf,
			   size_t size);

/* Counters, from any thread; host_error/host_eof are exact only on the
 * io thread or after the loop stopped. */
void virtio_console_get_stats(struct virtio_console *con,
			      struct virtio_console_stats *out);

/* The first virtio rule the guest broke, or NULL. */
const char *virtio_console_error(struct virtio_console *con);

#endif
