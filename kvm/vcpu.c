/* vCPU creation and the register state for a direct 64-bit kernel entry. */
#include "kvm/vcpu.h"

#include <asm/kvm_para.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CPUID_MAX_ENTRIES 256
#define CPUID_KVM_SIG	  0x40000000
#define CPUID_KVM_FEAT	  0x40000001
#define CPUID_HYPERVISOR  (1u << 31) /* leaf 1, ecx */

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE    0x2ff
#define MISC_FAST_STRINGS    0x1ull
#define MTRR_ENABLE_WB	     ((1ull << 11) | 6) /* MTRRs on, write-back */

#define CR0_PE	 0x1ull
#define CR0_MP	 0x2ull
#define CR0_ET	 0x10ull
#define CR0_NE	 0x20ull
#define CR0_WP	 0x10000ull
#define CR0_PG	 0x80000000ull
#define CR4_PAE	 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define APIC_LVT0	 0x350
#define APIC_LVT1	 0x360
#define APIC_MODE_NMI	 0x4
#define APIC_MODE_EXTINT 0x7

int vcpu_create(struct vm *vm, struct vcpu *c, int id)
{
	int size, err;

	c->vm = vm;
	c->id = id;
	c->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	if (c->fd < 0)
		return -errno;

	size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run)) {
		err = size < 0 ? -errno : -EPROTO;
		goto err_close_fd;
	}

	c->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		err = -errno;
		goto err_close_fd;
	}
	c->run_size = size;
	return 0;

err_close_fd:
	close(c->fd);
	c->fd = -1;
	c->run = NULL;
	return err;
}

void vcpu_destroy(struct vcpu *c)
{
	if (c->run)
		munmap(c->run, c->run_size);
	if (c->fd >= 0)
		close(c->fd);
	c->run = NULL;
	c->fd = -1;
}

int vcpu_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **out)
{
	size_t size = sizeof(struct kvm_cpuid2) +
		      CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, size);

	if (!cpuid)
		return -ENOMEM;

	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		int err = -errno;

		free(cpuid);
		return err;
	}
	*out = cpuid;
	return 0;
}

/* Tell the guest it runs on KVM so that it uses kvmclock and the other
 * paravirtual features the feature leaf offers, all but PV_UNHALT: with
 * it, a vCPU waiting for a spinlock halts with interrupts off until
 * another kicks it, which the exit loop would take for a power-off. */
static void patch_cpuid_entry(struct kvm_cpuid_entry2 *e, int apic_id)
{
	static const char sig[12] = "KVMKVMKVM\0\0";

	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x00ffffff) | ((uint32_t)apic_id << 24);
		e->ecx |= CPUID_HYPERVISOR;
		break;
	case 0xb:
		e->edx = apic_id;
		break;
	case CPUID_KVM_SIG:
		e->eax = CPUID_KVM_FEAT;
		memcpy(&e->ebx, sig, 4);
		memcpy(&e->ecx, sig + 4, 4);
		memcpy(&e->edx, sig + 8, 4);
		break;
	case CPUID_KVM_FEAT:
		e->eax &= ~(1u << KVM_FEATURE_PV_UNHALT);
		break;
	}
}

static int set_cpuid(struct vcpu *c, const struct kvm_cpuid2 *supported)
{
	size_t size = sizeof(*supported) +
		      supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);
	int err = 0;

	if (!cpuid)
		return -ENOMEM;

	memcpy(cpuid, supported, size);
	for (unsigned i = 0; i < cpuid->nent; i++)
		patch_cpuid_entry(&cpuid->entries[i], c->id);

	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		err = -errno;
	free(cpuid);
	return err;
}

static int set_msrs(struct vcpu *c)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} m = {
	    .hdr.nmsrs = 2,
	    .e =
		{
		    {.index = MSR_IA32_MISC_ENABLE, .data = MISC_FAST_STRINGS},
		    {.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WB},
		},
	};
	int n = ioctl(c->fd, KVM_SET_MSRS, &m);

	if (n < 0)
		return -errno;
	return n == 2 ? 0 : -EPROTO;
}

static int set_fpu(struct vcpu *c)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};

	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

static void set_lvt_mode(struct kvm_lapic_state *l, int reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(&l->regs[reg], &v, 4);
}

/* Legacy PIC interrupts reach the CPU through LINT0 (ExtINT) and NMIs
 * through LINT1, as firmware would have wired them. */
static int set_lapic(struct vcpu *c)
{
	struct kvm_lapic_state lapic;

	if (ioctl(c->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;

	set_lvt_mode(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	set_lvt_mode(&lapic, APIC_LVT1, APIC_MODE_NMI);

	if (ioctl(c->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->db = 1;
}

static void long_mode_segments(struct kvm_sregs *s)
{
	flat_segment(&s->cs, BOOT_SEL_CODE, 0xb); /* execute/read */
	s->cs.db = 0;
	s->cs.l = 1;
	flat_segment(&s->ds, BOOT_SEL_DATA, 0x3); /* read/write */
	s->es = s->fs = s->gs = s->ss = s->ds;

	memset(&s->tr, 0, sizeof(s->tr));
	s->tr.selector = BOOT_SEL_TSS;
	s->tr.limit = 0x67;
	s->tr.type = 0xb; /* busy 64-bit TSS */
	s->tr.present = 1;
	s->ldt.unusable = 1;

	s->gdt.base = BOOT_GDT;
	s->gdt.limit = BOOT_SEL_TSS + 15;
	s->idt.base = 0;
	s->idt.limit = 0;
}

static int set_entry_state(struct vcpu *c)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
	    .rip = c->vm->kernel.entry,
	    .rsi = BOOT_ZERO_PAGE, /* the 64-bit boot protocol's contract */
	    .rsp = BOOT_ZERO_PAGE,
	    .rflags = 0x2,
	};

	if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;

	long_mode_segments(&sregs);
	sregs.cr3 = BOOT_PML4;
	sregs.cr4 = CR4_PAE;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.efer = EFER_LME | EFER_LMA;

	if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

int vcpu_setup(struct vcpu *c, const struct kvm_cpuid2 *cpuid)
{
	int err;

	err = set_cpuid(c, cpuid);
	if (err)
		return err;

	err = set_msrs(c);
	if (err)
		return err;

	err = set_fpu(c);
	if (err)
		return err;

	err = set_lapic(c);
	if (err)
		return err;

	/* Other vCPUs wait in the local APIC for the guest to start them. */
	if (c->id != 0)
		return 0;
	return set_entry_state(c);
}
