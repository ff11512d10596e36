/* Tests for the virtio-mmio transport: identity, features, status, queues. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm/virtio_mmio.h"
#include "tests/virtio_guest.h"

#define BASE 0xd0000000ull

static struct guest_mem mem;
static struct virtio_mmio dev;
static struct mmio_region win;
static struct fake_ring rings[2];
static const uint8_t config[6] = {1, 2, 3, 4, 5, 6};
static const char *failed_why;
static int resets;

static void on_reset(void *opaque)
{
	resets++;
}

static void on_failed(void *opaque, const char *why)
{
	failed_why = why;
}

static const struct virtio_mmio_ops ops = {
    .reset = on_reset,
    .failed = on_failed,
};

static void setup(void)
{
	struct virtio_mmio_params p = {
	    .base = BASE,
	    .gsi = 5,
	    .device_id = 3,
	    .nqueues = 2,
	    .queue_max = 16,
	    .config = config,
	    .config_len = sizeof(config),
	    .mem = &mem,
	    .ops = &ops,
	};

	fake_mem_init(&mem);
	fake_ring_init(&rings[0], &mem, 16, 0x1000);
	fake_ring_init(&rings[1], &mem, 16, 0x2000);
	cr_assert_eq(virtio_mmio_init(&dev, &p), 0);
	virtio_mmio_region(&dev, &win);
	failed_why = NULL;
	resets = 0;
}

static void teardown(void)
{
	virtio_mmio_exit(&dev);
	fake_mem_free(&mem);
}

TestSuite(virtio_mmio, .init = setup, .fini = teardown);

static uint32_t status(void)
{
	return fake_rd(&win, VIRTIO_MMIO_STATUS);
}

static void set_status(uint32_t v)
{
	fake_wr(&win, VIRTIO_MMIO_STATUS, v);
}

static bool eventfd_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

#define ACK_DRIVER (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER)

Test(virtio_mmio, identifies_as_modern_virtio_device)
{
	cr_assert_eq(win.base, BASE);
	cr_assert_eq(win.len, 0x1000);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_VERSION), 2);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_DEVICE_ID), 3);
	cr_assert_neq(fake_rd(&win, VIRTIO_MMIO_VENDOR_ID), 0);
}

Test(virtio_mmio, offers_version_1_and_nothing_else)
{
	fake_wr(&win, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	fake_wr(&win, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_DEVICE_FEATURES), 1);
	fake_wr(&win, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

Test(virtio_mmio, features_ok_refused_without_version_1)
{
	set_status(ACK_DRIVER);
	set_status(ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	cr_assert_eq(status(), ACK_DRIVER);
}

Test(virtio_mmio, features_ok_refused_for_feature_not_offered)
{
	set_status(ACK_DRIVER);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 28); /* INDIRECT */
	set_status(ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	cr_assert_eq(status(), ACK_DRIVER);
}

Test(virtio_mmio, driver_start_reaches_driver_ok)
{
	uint32_t st = fake_driver_start(&win, rings, 2);

	cr_assert_eq(st, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			     VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(dev.driver_features, 1ull << VIRTIO_F_VERSION_1);
	cr_assert_not_null(virtio_mmio_queue(&dev, 0));
	cr_assert_not_null(virtio_mmio_queue(&dev, 1));
	cr_assert_null(virtio_mmio_queue(&dev, 2));
}

Test(virtio_mmio, features_frozen_after_features_ok)
{
	fake_driver_start(&win, rings, 2);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
	cr_assert_eq(dev.driver_features, 1ull << VIRTIO_F_VERSION_1);
}

Test(virtio_mmio, driver_ok_before_features_ok_needs_reset)
{
	set_status(ACK_DRIVER);
	set_status(ACK_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	cr_assert(status() & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_not(status() & VIRTIO_STATUS_DRIVER_OK);
	cr_assert_str_eq(failed_why, "DRIVER_OK before FEATURES_OK");
}

Test(virtio_mmio, clearing_a_status_bit_needs_reset)
{
	fake_driver_start(&win, rings, 2);
	set_status(VIRTIO_STATUS_ACKNOWLEDGE);
	cr_assert(status() & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_null(virtio_mmio_queue(&dev, 0));
	/* The guest hears about it through a config interrupt. */
	cr_assert(fake_rd(&win, VIRTIO_MMIO_INTERRUPT_STATUS) &
		  VIRTIO_INT_CONFIG);
	cr_assert(eventfd_ready(dev.irq_fd));
}

Test(virtio_mmio, queue_num_max_is_zero_for_absent_queue)
{
	fake_wr(&win, VIRTIO_MMIO_QUEUE_SEL, 0);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_SEL, 2);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_READY), 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_READY, 1);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_READY), 0);
}

Test(virtio_mmio, queue_size_not_power_of_two_needs_reset)
{
	rings[1].size = 12;
	set_status(ACK_DRIVER);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	set_status(ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_SEL, 1);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NUM, 12);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_READY, 1);

	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_READY), 0);
	cr_assert(status() & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_str_eq(failed_why, "queue size is not a power of two");
}

Test(virtio_mmio, queue_size_above_register_width_needs_reset)
{
	set_status(ACK_DRIVER);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	set_status(ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NUM, 0x10010);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_READY, 1);
	cr_assert(status() & VIRTIO_STATUS_NEEDS_RESET);
}

Test(virtio_mmio, ring_outside_ram_needs_reset)
{
	rings[0].used = FAKE_RAM_SIZE + 0x1000ull;
	set_status(ACK_DRIVER);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_wr(&win, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	set_status(ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NUM, 16);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)rings[0].used);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_READY, 1);
	cr_assert(status() & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_str_eq(failed_why, "ring outside guest RAM");
}

Test(virtio_mmio, queue_enabled_before_features_ok_needs_reset)
{
	set_status(ACK_DRIVER);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NUM, 16);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_READY, 1);
	cr_assert(status() & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_READY), 0);
}

Test(virtio_mmio, queue_layout_frozen_while_ready)
{
	fake_driver_start(&win, rings, 2);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_SEL, 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x40000);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NUM, 2);
	cr_assert_eq(dev.queues[0].desc, rings[0].desc);
	cr_assert_eq(dev.queues[0].num, 16);
}

Test(virtio_mmio, reset_clears_queues_features_and_interrupts)
{
	fake_driver_start(&win, rings, 2);
	virtio_mmio_lock(&dev);
	virtio_mmio_interrupt(&dev);
	virtio_mmio_unlock(&dev);

	set_status(0);
	cr_assert_eq(status(), 0);
	cr_assert_eq(resets, 2); /* once at driver start, once here */
	cr_assert_eq(dev.driver_features, 0);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_SEL, 1);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_READY), 0);
	cr_assert_null(virtio_mmio_queue(&dev, 0));
	cr_assert_eq(dev.queues[0].desc, 0);
}

Test(virtio_mmio, reset_after_needs_reset_lets_driver_start_again)
{
	set_status(ACK_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	cr_assert(status() & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_eq(fake_driver_start(&win, rings, 2),
		     ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			 VIRTIO_STATUS_DRIVER_OK);
}

Test(virtio_mmio, queue_ready_zero_stops_the_queue)
{
	fake_driver_start(&win, rings, 2);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_SEL, 1);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_READY, 0);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_QUEUE_READY), 0);
	cr_assert_null(virtio_mmio_queue(&dev, 1));
	cr_assert_not_null(virtio_mmio_queue(&dev, 0));
}

Test(virtio_mmio, unknown_offsets_read_zero_and_ignore_writes)
{
	static const uint64_t offs[] = {0x018, 0x040, 0x0b0, 0x0f0, 0x0f8};
	unsigned i;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		fake_wr(&win, offs[i], 0xdeadbeef);
		cr_assert_eq(fake_rd(&win, offs[i]), 0);
	}
	cr_assert_eq(status(), 0);
}

Test(virtio_mmio, narrow_or_misaligned_register_access_refused)
{
	uint16_t half = 0;
	uint32_t word = 0;

	cr_assert_eq(win.ops->read(win.opaque, VIRTIO_MMIO_STATUS, &half, 2),
		     -EINVAL);
	cr_assert_eq(win.ops->write(win.opaque, 0x71, &word, 4), -EINVAL);
	cr_assert_str_eq(dev.error, "bad register access");
}

Test(virtio_mmio, config_space_reads_bytes_and_zero_past_end)
{
	uint8_t b = 0;
	uint16_t w = 0;
	uint32_t l = 0;

	cr_assert_eq(win.ops->read(win.opaque, 0x101, &b, 1), 0);
	cr_assert_eq(b, 2);
	cr_assert_eq(win.ops->read(win.opaque, 0x104, &w, 2), 0);
	cr_assert_eq(w, 0x0605);
	cr_assert_eq(win.ops->read(win.opaque, 0x104, &l, 4), 0);
	cr_assert_eq(l, 0);
	cr_assert_eq(win.ops->write(win.opaque, 0x100, &l, 4), 0);
	cr_assert_eq(win.ops->read(win.opaque, 0x100, &b, 1), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(win.ops->read(win.opaque, 0xffc, &l, 4), 0);
	cr_assert_eq(l, 0);
}

Test(virtio_mmio, notify_register_signals_the_queue_eventfd)
{
	uint64_t n = 0;

	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	fake_wr(&win, VIRTIO_MMIO_QUEUE_NOTIFY, 9);
	cr_assert_not(eventfd_ready(dev.queues[0].notify_fd));
	cr_assert_eq(read(dev.queues[1].notify_fd, &n, sizeof(n)), sizeof(n));
	cr_assert_eq(n, 2);
}

Test(virtio_mmio, interrupt_fires_once_until_acknowledged)
{
	struct virtio_mmio_stats st;
	uint64_t n = 0;

	virtio_mmio_lock(&dev);
	virtio_mmio_interrupt(&dev);
	virtio_mmio_interrupt(&dev);
	virtio_mmio_unlock(&dev);
	cr_assert_eq(read(dev.irq_fd, &n, sizeof(n)), sizeof(n));
	cr_assert_eq(n, 1);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_INTERRUPT_STATUS),
		     VIRTIO_INT_USED);

	fake_wr(&win, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED);
	cr_assert_eq(fake_rd(&win, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	virtio_mmio_lock(&dev);
	virtio_mmio_interrupt(&dev);
	virtio_mmio_unlock(&dev);
	cr_assert(eventfd_ready(dev.irq_fd));

	virtio_mmio_get_stats(&dev, &st);
	cr_assert_eq(st.interrupts, 2);
}

Test(virtio_mmio, cmdline_names_size_address_and_irq)
{
	char buf[64], small[8];

	cr_assert_eq(virtio_mmio_cmdline(&dev, buf, sizeof(buf)),
		     (int)strlen("virtio_mmio.device=4K@0xd0000000:5"));
	cr_assert_str_eq(buf, "virtio_mmio.device=4K@0xd0000000:5");
	cr_assert_eq(virtio_mmio_cmdline(&dev, small, sizeof(small)), -ENOSPC);
}

Test(virtio_mmio, attach_to_a_non_vm_fd_fails_cleanly)
{
	cr_assert_lt(virtio_mmio_attach_kvm(&dev, dev.irq_fd), 0);
	cr_assert_eq(dev.vm_fd, -1);
}

/* A VM with an in-kernel irqchip, or a skip saying why there is none. */
static int make_vm(int *kvm)
{
	int vm;

	*kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm < 0)
		cr_skip_test("no /dev/kvm here: %s", strerror(errno));
	vm = ioctl(*kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		cr_skip_test("KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		cr_skip_test("KVM_CREATE_IRQCHIP: %s", strerror(errno));
	return vm;
}

Test(virtio_mmio, attach_routes_kicks_and_interrupts_through_kvm)
{
	struct virtio_mmio other;
	struct virtio_mmio_params p = dev.p;
	int kvm, vm = make_vm(&kvm);

	cr_assert_eq(virtio_mmio_attach_kvm(&dev, vm), 0);
	cr_assert_eq(dev.vm_fd, vm);

	/* A second device on the same notify address is refused whole. */
	cr_assert_eq(virtio_mmio_init(&other, &p), 0);
	cr_assert_eq(virtio_mmio_attach_kvm(&other, vm), -EEXIST);
	cr_assert_eq(other.vm_fd, -1);

	/* Once detached, the routes are free for another device. */
	virtio_mmio_detach_kvm(&dev);
	cr_assert_eq(virtio_mmio_attach_kvm(&other, vm), 0);
	virtio_mmio_exit(&other);
	close(vm);
	close(kvm);
}

Test(virtio_mmio, init_refuses_bad_parameters)
{
	struct virtio_mmio other;
	struct virtio_mmio_params p = {
	    .nqueues = 3,
	    .queue_max = 16,
	    .mem = &mem,
	};

	cr_assert_eq(virtio_mmio_init(&other, &p), -EINVAL);
	p.nqueues = 1;
	p.queue_max = 1000;
	cr_assert_eq(virtio_mmio_init(&other, &p), -EINVAL);
}
