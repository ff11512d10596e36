/* Tests for split virtqueues: good chains work, malformed rings are refused. */
#include <criterion/criterion.h>
#include <errno.h>

#include "kvm/virtqueue.h"
#include "tests/virtio_guest.h"

#define QSIZE	 8
#define RING_GPA 0x1000
#define BUF_GPA	 0x10000

static struct guest_mem mem;
static struct fake_ring ring;
static struct virtq vq;
static struct virtq_chain chain;

static void setup(void)
{
	fake_mem_init(&mem);
	fake_ring_init(&ring, &mem, QSIZE, RING_GPA);
	cr_assert_eq(virtq_start(&vq, &mem, QSIZE, QSIZE, ring.desc, ring.avail,
				 ring.used),
		     0);
}

static void teardown(void)
{
	fake_mem_free(&mem);
}

TestSuite(virtqueue, .init = setup, .fini = teardown);

static int start(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	return virtq_start(&vq, &mem, size, 256, desc, avail, used);
}

Test(virtqueue, start_refuses_size_not_power_of_two)
{
	cr_assert_eq(start(6, 0x1000, 0x2000, 0x3000), -EINVAL);
	cr_assert_str_eq(vq.error, "queue size is not a power of two");
}

Test(virtqueue, start_refuses_size_zero_or_above_max)
{
	cr_assert_eq(start(0, 0x1000, 0x2000, 0x3000), -EINVAL);
	cr_assert_eq(virtq_start(&vq, &mem, 16, 8, 0x1000, 0x2000, 0x3000),
		     -EINVAL);
	cr_assert_str_eq(vq.error, "queue size out of range");
}

Test(virtqueue, start_refuses_rings_outside_ram)
{
	cr_assert_eq(start(8, FAKE_RAM_SIZE, 0x2000, 0x3000), -EINVAL);
	cr_assert_eq(start(8, 0x1000, FAKE_RAM_SIZE - 4, 0x3000), -EINVAL);
	/* The used ring starts inside RAM but its last element would not. */
	cr_assert_eq(start(8, 0x1000, 0x2000, FAKE_RAM_SIZE - 64), -EINVAL);
	cr_assert_eq(start(8, 0x1000, 0x2000, UINT64_MAX - 3), -EINVAL);
	cr_assert_str_eq(vq.error, "ring outside guest RAM");
}

Test(virtqueue, start_refuses_misaligned_rings)
{
	cr_assert_eq(start(8, 0x1008, 0x2000, 0x3000), -EINVAL);
	cr_assert_eq(start(8, 0x1000, 0x2001, 0x3000), -EINVAL);
	cr_assert_eq(start(8, 0x1000, 0x2000, 0x3002), -EINVAL);
	cr_assert_str_eq(vq.error, "ring address misaligned");
}

Test(virtqueue, pop_on_empty_ring_returns_zero)
{
	cr_assert_eq(virtq_pop(&vq, &chain), 0);
	cr_assert_null(vq.error);
}

Test(virtqueue, pop_returns_readable_then_writable_buffers)
{
	fake_ring_desc(&ring, 3, BUF_GPA, 100, VIRTQ_DESC_F_NEXT, 5);
	fake_ring_desc(&ring, 5, BUF_GPA + 100, 20,
		       VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	fake_ring_desc(&ring, 1, BUF_GPA + 200, 30, VIRTQ_DESC_F_WRITE, 0);
	fake_ring_add(&ring, 3);

	cr_assert_eq(virtq_pop(&vq, &chain), 1);
	cr_assert_eq(chain.head, 3);
	cr_assert_eq(chain.n, 3);
	cr_assert_eq(chain.n_read, 1);
	cr_assert_eq(chain.read_len, 100);
	cr_assert_eq(chain.write_len, 50);
	cr_assert_eq(chain.bufs[2].gpa, BUF_GPA + 200);
	cr_assert(chain.bufs[2].write);
	cr_assert_eq(virtq_pop(&vq, &chain), 0);
}

Test(virtqueue, push_fills_used_ring_and_index)
{
	uint32_t id, len;

	fake_ring_desc(&ring, 2, BUF_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
	fake_ring_add(&ring, 2);
	cr_assert_eq(virtq_pop(&vq, &chain), 1);

	cr_assert_eq(virtq_push(&vq, chain.head, 17), 0);
	cr_assert(fake_ring_used(&ring, &id, &len));
	cr_assert_eq(id, 2);
	cr_assert_eq(len, 17);
	cr_assert_eq(fake_ring_used_idx(&ring), 1);
}

/* Each malformed case: the pop is refused, the reason is kept, and the
 * queue refuses all later work too. */
static void assert_refused(const char *why)
{
	cr_assert_eq(virtq_pop(&vq, &chain), -EINVAL);
	cr_assert_str_eq(vq.error, why);
	cr_assert_eq(virtq_pop(&vq, &chain), -EINVAL);
	cr_assert_eq(virtq_push(&vq, 0, 0), -EINVAL);
	cr_assert_eq(fake_ring_used_idx(&ring), 0);
}

Test(virtqueue, pop_refuses_head_index_out_of_range)
{
	fake_ring_add(&ring, QSIZE);
	assert_refused("descriptor index out of range");
}

Test(virtqueue, pop_refuses_next_index_out_of_range)
{
	fake_ring_desc(&ring, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0xffff);
	fake_ring_add(&ring, 0);
	assert_refused("descriptor index out of range");
}

Test(virtqueue, pop_refuses_buffer_outside_ram)
{
	fake_ring_desc(&ring, 0, FAKE_RAM_SIZE - 4, 8, 0, 0);
	fake_ring_add(&ring, 0);
	assert_refused("buffer outside guest RAM");
}

Test(virtqueue, pop_refuses_address_plus_length_overflow)
{
	fake_ring_desc(&ring, 0, UINT64_MAX - 15, 64, 0, 0);
	fake_ring_add(&ring, 0);
	assert_refused("buffer outside guest RAM");
}

Test(virtqueue, pop_refuses_descriptor_loop)
{
	fake_ring_desc(&ring, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	fake_ring_desc(&ring, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	fake_ring_add(&ring, 0);
	assert_refused("descriptor chain longer than the queue");
}

Test(virtqueue, pop_refuses_descriptor_pointing_at_itself)
{
	fake_ring_desc(&ring, 4, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 4);
	fake_ring_add(&ring, 4);
	assert_refused("descriptor chain longer than the queue");
}

Test(virtqueue, pop_accepts_chain_using_every_descriptor_but_no_more)
{
	uint16_t i;

	for (i = 0; i < QSIZE; i++)
		fake_ring_desc(&ring, i, BUF_GPA, 8,
			       i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	fake_ring_add(&ring, 0);
	cr_assert_eq(virtq_pop(&vq, &chain), 1);
	cr_assert_eq(chain.n, QSIZE);

	/* The same chain closed into a ring is one longer than the queue. */
	fake_ring_desc(&ring, QSIZE - 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	fake_ring_add(&ring, 0);
	assert_refused("descriptor chain longer than the queue");
}

Test(virtqueue, pop_refuses_readable_after_writable)
{
	fake_ring_desc(&ring, 0, BUF_GPA, 8,
		       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	fake_ring_desc(&ring, 1, BUF_GPA, 8, 0, 0);
	fake_ring_add(&ring, 0);
	assert_refused("readable descriptor after a writable one");
}

Test(virtqueue, pop_refuses_indirect_descriptors)
{
	fake_ring_desc(&ring, 0, BUF_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_ring_add(&ring, 0);
	assert_refused("indirect descriptor, not offered");
}

Test(virtqueue, pop_refuses_avail_index_jumping_past_queue_size)
{
	fake_ring_set_avail_idx(&ring, QSIZE + 1);
	assert_refused("avail index moved by more than the queue size");
}

Test(virtqueue, avail_index_may_wrap_around)
{
	uint16_t i;

	fake_ring_desc(&ring, 0, BUF_GPA, 8, 0, 0);
	vq.last_avail = 0xfffe;
	ring.avail_idx = 0xfffe;
	for (i = 0; i < 4; i++)
		fake_ring_add(&ring, 0);

	cr_assert_eq(virtq_avail_count(&vq), 4);
	for (i = 0; i < 4; i++)
		cr_assert_eq(virtq_pop(&vq, &chain), 1);
	cr_assert_eq(virtq_pop(&vq, &chain), 0);
}

Test(virtqueue, device_rule_stops_the_queue)
{
	cr_assert_eq(virtq_fail(&vq, "wrong direction"), -EINVAL);
	cr_assert_eq(virtq_pop(&vq, &chain), -EINVAL);
	cr_assert_str_eq(vq.error, "wrong direction");
}

Test(virtqueue, push_refused_on_stopped_queue)
{
	virtq_stop(&vq);
	cr_assert_eq(virtq_push(&vq, 0, 0), -EINVAL);
	cr_assert_eq(virtq_pop(&vq, &chain), -EINVAL);
	cr_assert_eq(fake_ring_used_idx(&ring), 0);
}

Test(virtqueue, interrupt_suppressed_when_guest_asks)
{
	uint16_t *flags = (uint16_t *)(mem.host + ring.avail);

	cr_assert(virtq_wants_interrupt(&vq));
	*flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	cr_assert_not(virtq_wants_interrupt(&vq));
}
