/* Virtio over MMIO (version 2): registers, features, queues, interrupts. */
#include "kvm/virtio_mmio.h"

#include <endian.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define STATUS_BITS                                                            \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                    \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |                 \
	 VIRTIO_STATUS_FAILED)

static uint64_t device_features(const struct virtio_mmio *dev)
{
	return dev->p.features | 1ull << VIRTIO_F_VERSION_1;
}

static struct virtio_mmio_queue *selected(struct virtio_mmio *dev)
{
	if (dev->queue_sel >= dev->p.nqueues)
		return NULL;
	return &dev->queues[dev->queue_sel];
}

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static void raise_irq(struct virtio_mmio *dev, uint32_t why)
{
	uint64_t one = 1;

	/* A bit the guest has not acknowledged yet will be seen by the
	 * handler already pending: one interrupt covers both. */
	if ((dev->interrupt_status & why) == why)
		return;
	dev->interrupt_status |= why;

	if (write(dev->irq_fd, &one, sizeof(one)) == sizeof(one))
		stat_add(&dev->stats.interrupts, 1);
}

void virtio_mmio_interrupt(struct virtio_mmio *dev)
{
	raise_irq(dev, VIRTIO_INT_USED);
}

void virtio_mmio_fail(struct virtio_mmio *dev, const char *why)
{
	if (!dev->error)
		dev->error = why;
	if (dev->status & VIRTIO_STATUS_NEEDS_RESET)
		return;

	dev->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (dev->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(dev, VIRTIO_INT_CONFIG);
	if (dev->p.ops && dev->p.ops->failed)
		dev->p.ops->failed(dev->p.opaque, why);
}

static void reset_queue(struct virtio_mmio_queue *q)
{
	virtq_stop(&q->vq);
	q->num = 0;
	q->desc = q->avail = q->used = 0;
	q->ready = false;
	q->generation++;
}

static void reset(struct virtio_mmio *dev)
{
	unsigned i;

	dev->status = 0;
	dev->driver_features = 0;
	dev->device_features_sel = dev->driver_features_sel = 0;
	dev->queue_sel = 0;
	dev->interrupt_status = 0;
	for (i = 0; i < dev->p.nqueues; i++)
		reset_queue(&dev->queues[i]);

	if (dev->p.ops && dev->p.ops->reset)
		dev->p.ops->reset(dev->p.opaque);
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *dev, unsigned index)
{
	struct virtio_mmio_queue *q;

	if (index >= dev->p.nqueues)
		return NULL;
	q = &dev->queues[index];

	if (!(dev->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (dev->status & VIRTIO_STATUS_NEEDS_RESET) || !q->ready ||
	    q->vq.error)
		return NULL;
	return &q->vq;
}

static bool features_ok(const struct virtio_mmio *dev)
{
	uint64_t f = dev->driver_features;

	return (f & ~device_features(dev)) == 0 &&
	       (f & 1ull << VIRTIO_F_VERSION_1);
}

/* The driver only adds bits, in the spec's order; zero resets. A feature
 * set the device cannot honour leaves FEATURES_OK clear, which is how the
 * driver learns of it. */
static void set_status(struct virtio_mmio *dev, uint32_t v)
{
	uint32_t old = dev->status & STATUS_BITS;
	uint32_t add;

	if (v == 0)
		return reset(dev);

	v &= STATUS_BITS;
	if ((v & old) != old)
		return virtio_mmio_fail(dev, "driver cleared a status bit");
	add = v & ~old;

	if ((add & VIRTIO_STATUS_FEATURES_OK) && !features_ok(dev))
		add &= ~VIRTIO_STATUS_FEATURES_OK;
	if ((add & VIRTIO_STATUS_DRIVER_OK) &&
	    !((old | add) & VIRTIO_STATUS_FEATURES_OK))
		return virtio_mmio_fail(dev, "DRIVER_OK before FEATURES_OK");

	dev->status |= add;
	if ((add & VIRTIO_STATUS_DRIVER_OK) && dev->p.ops &&
	    dev->p.ops->driver_ok)
		dev->p.ops->driver_ok(dev->p.opaque);
}

static void set_queue_ready(struct virtio_mmio *dev,
			    struct virtio_mmio_queue *q, uint32_t v)
{
	int ret;

	if (!v) {
		reset_queue(q);
		return;
	}
	if (q->ready)
		return;
	if (!(dev->status & VIRTIO_STATUS_FEATURES_OK))
		return virtio_mmio_fail(dev,
					"queue enabled before FEATURES_OK");

	if (q->num > UINT16_MAX)
		return virtio_mmio_fail(dev, "queue size out of range");
	ret = virtq_start(&q->vq, dev->p.mem, q->num, dev->p.queue_max, q->desc,
			  q->avail, q->used);
	if (ret < 0)
		return virtio_mmio_fail(dev, q->vq.error);
	q->ready = true;
	q->generation++;
}

static void set_features(struct virtio_mmio *dev, uint32_t v)
{
	unsigned shift;

	if (dev->status & VIRTIO_STATUS_FEATURES_OK)
		return;
	if (dev->driver_features_sel > 1)
		return;

	shift = 32 * dev->driver_features_sel;
	dev->driver_features &= ~(0xffffffffull << shift);
	dev->driver_features |= (uint64_t)v << shift;
}

static void set_addr_half(uint64_t *addr, bool high, uint32_t v)
{
	if (high)
		*addr = (*addr & 0xffffffffull) | (uint64_t)v << 32;
	else
		*addr = (*addr & ~0xffffffffull) | v;
}

/* Queue layout registers; ignored while the queue runs, as the spec has
 * the driver write them only before enabling it. */
static void write_queue_reg(struct virtio_mmio *dev, uint64_t off, uint32_t v)
{
	struct virtio_mmio_queue *q = selected(dev);

	if (!q)
		return;
	if (off == VIRTIO_MMIO_QUEUE_READY)
		return set_queue_ready(dev, q, v);
	if (q->ready)
		return;

	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		q->num = v;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_addr_half(&q->desc, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_addr_half(&q->avail, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		set_addr_half(&q->used, off & 4, v);
		break;
	}
}

/* Without ioeventfd (tests, or a VMM that did not attach) a notify still
 * reaches the io thread through the same eventfd. */
static void notify(struct virtio_mmio *dev, uint32_t index)
{
	uint64_t one = 1;

	if (index >= dev->p.nqueues)
		return;
	if (write(dev->queues[index].notify_fd, &one, sizeof(one)) < 0)
		return;
}

static void write_reg(struct virtio_mmio *dev, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		dev->device_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		set_features(dev, v);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		dev->driver_features_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		dev->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		notify(dev, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		dev->interrupt_status &= ~v;
		break;
	case VIRTIO_MMIO_STATUS:
		set_status(dev, v);
		break;
	default:
		write_queue_reg(dev, off, v);
		break;
	}
}

static uint32_t read_features(const struct virtio_mmio *dev)
{
	if (dev->device_features_sel > 1)
		return 0;
	return device_features(dev) >> (32 * dev->device_features_sel);
}

static uint32_t read_reg(struct virtio_mmio *dev, uint64_t off)
{
	struct virtio_mmio_queue *q = selected(dev);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return dev->p.device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return read_features(dev);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? dev->p.queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return dev->interrupt_status;
	case VIRTIO_MMIO_STATUS:
		return dev->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return dev->config_generation;
	default:
		return 0;
	}
}

/* Config space may be read in 1, 2 or 4 byte pieces; bytes past its end
 * read as zero and writes are ignored (no field here is writable). */
static void read_config(struct virtio_mmio *dev, uint64_t off, void *data,
			unsigned len)
{
	memset(data, 0, len);
	if (off < dev->p.config_len && len <= dev->p.config_len - off)
		memcpy(data, (const uint8_t *)dev->p.config + off, len);
}

/* Registers below the config space are 32 bits wide and aligned. */
static bool reg_access_ok(uint64_t off, unsigned len)
{
	return len == 4 && off % 4 == 0;
}

static int mmio_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_mmio *dev = opaque;
	uint32_t v;
	int ret = 0;

	stat_add(&dev->stats.mmio_exits, 1);
	virtio_mmio_lock(dev);
	if (off >= VIRTIO_MMIO_CONFIG) {
		read_config(dev, off - VIRTIO_MMIO_CONFIG, data, len);
	} else if (reg_access_ok(off, len)) {
		v = htole32(read_reg(dev, off));
		memcpy(data, &v, sizeof(v));
	} else {
		memset(data, 0, len);
		dev->error = dev->error ? dev->error : "bad register access";
		ret = -EINVAL;
	}
	virtio_mmio_unlock(dev);
	return ret;
}

static int mmio_write(void *opaque, uint64_t off, const void *data,
		      unsigned len)
{
	struct virtio_mmio *dev = opaque;
	uint32_t v;
	int ret = 0;

	stat_add(&dev->stats.mmio_exits, 1);
	virtio_mmio_lock(dev);
	if (off >= VIRTIO_MMIO_CONFIG) {
		/* Nothing to do: the config space is read-only. */
	} else if (reg_access_ok(off, len)) {
		memcpy(&v, data, sizeof(v));
		write_reg(dev, off, le32toh(v));
	} else {
		dev->error = dev->error ? dev->error : "bad register access";
		ret = -EINVAL;
	}
	virtio_mmio_unlock(dev);
	return ret;
}

static const struct mmio_ops virtio_mmio_ops = {
    .read = mmio_read,
    .write = mmio_write,
};

void virtio_mmio_region(struct virtio_mmio *dev, struct mmio_region *r)
{
	r->base = dev->p.base;
	r->len = VIRTIO_MMIO_SIZE;
	r->ops = &virtio_mmio_ops;
	r->opaque = dev;
}

static void close_fds(struct virtio_mmio *dev, unsigned nqueues)
{
	while (nqueues--)
		close(dev->queues[nqueues].notify_fd);
	close(dev->irq_fd);
}

int virtio_mmio_init(struct virtio_mmio *dev,
		     const struct virtio_mmio_params *p)
{
	unsigned i;
	int ret;

	if (!p->nqueues || p->nqueues > VIRTIO_MMIO_MAX_QUEUES ||
	    !p->queue_max || p->queue_max > VIRTQ_MAX_SIZE || !p->mem)
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	dev->p = *p;
	dev->vm_fd = -1;

	dev->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->irq_fd < 0)
		return -errno;

	for (i = 0; i < p->nqueues; i++) {
		dev->queues[i].notify_fd =
		    eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (dev->queues[i].notify_fd < 0) {
			ret = -errno;
			close_fds(dev, i);
			return ret;
		}
	}

	ret = pthread_mutex_init(&dev->lock, NULL);
	if (ret) {
		close_fds(dev, p->nqueues);
		return -ret;
	}
	return 0;
}

void virtio_mmio_exit(struct virtio_mmio *dev)
{
	virtio_mmio_detach_kvm(dev);
	close_fds(dev, dev->p.nqueues);
	pthread_mutex_destroy(&dev->lock);
}

static int set_ioeventfd(struct virtio_mmio *dev, int vm_fd, unsigned i,
			 bool assign)
{
	struct kvm_ioeventfd io = {
	    .datamatch = i,
	    .addr = dev->p.base + VIRTIO_MMIO_QUEUE_NOTIFY,
	    .len = 4,
	    .fd = dev->queues[i].notify_fd,
	    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};

	if (!assign)
		io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	if (ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	return 0;
}

static int set_irqfd(struct virtio_mmio *dev, int vm_fd, bool assign)
{
	struct kvm_irqfd irq = {
	    .fd = dev->irq_fd,
	    .gsi = dev->p.gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm_fd, KVM_IRQFD, &irq) < 0)
		return -errno;
	return 0;
}

int virtio_mmio_attach_kvm(struct virtio_mmio *dev, int vm_fd)
{
	unsigned i;
	int ret;

	for (i = 0; i < dev->p.nqueues; i++) {
		ret = set_ioeventfd(dev, vm_fd, i, true);
		if (ret < 0)
			goto err_unset_ioeventfds;
	}

	ret = set_irqfd(dev, vm_fd, true);
	if (ret < 0)
		goto err_unset_ioeventfds;

	dev->vm_fd = vm_fd;
	return 0;

err_unset_ioeventfds:
	while (i--)
		set_ioeventfd(dev, vm_fd, i, false);
	return ret;
}

void virtio_mmio_detach_kvm(struct virtio_mmio *dev)
{
	unsigned i;

	if (dev->vm_fd < 0)
		return;

	set_irqfd(dev, dev->vm_fd, false);
	for (i = 0; i < dev->p.nqueues; i++)
		set_ioeventfd(dev, dev->vm_fd, i, false);
	dev->vm_fd = -1;
}

int virtio_mmio_cmdline(const struct virtio_mmio *dev, char *buf, size_t size)
{
	int n = snprintf(buf, size, "virtio_mmio.device=4K@0x%llx:%u",
			 (unsigned long long)dev->p.base, dev->p.gsi);

	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

void virtio_mmio_lock(struct virtio_mmio *dev)
{
	pthread_mutex_lock(&dev->lock);
}

void virtio_mmio_unlock(struct virtio_mmio *dev)
{
	pthread_mutex_unlock(&dev->lock);
}

void virtio_mmio_count_notify(struct virtio_mmio *dev, uint64_t n)
{
	stat_add(&dev->stats.notifications, n);
}

void virtio_mmio_get_stats(struct virtio_mmio *dev,
			   struct virtio_mmio_stats *out)
{
	out->notifications =
	    __atomic_load_n(&dev->stats.notifications, __ATOMIC_RELAXED);
	out->interrupts =
	    __atomic_load_n(&dev->stats.interrupts, __ATOMIC_RELAXED);
	out->mmio_exits =
	    __atomic_load_n(&dev->stats.mmio_exits, __ATOMIC_RELAXED);
}
