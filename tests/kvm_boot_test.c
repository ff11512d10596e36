/* Tests of the guest loader: ELF checks, initramfs placement, zero page,
 * MP table and entry tables, all without a VM. */
#include <asm/bootparam.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm/boot.h"
#include "tests/kvm_elf.h"

#define MEM_SIZE (32ull << 20)

static struct guest_mem mem;

static void map_ram(void)
{
	mem.host = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(mem.host, MAP_FAILED);
	mem.size = MEM_SIZE;
}

static void unmap_ram(void)
{
	munmap(mem.host, MEM_SIZE);
}

TestSuite(boot, .init = map_ram, .fini = unmap_ram);

static int load(const struct kvm_elf *e, struct boot_kernel *k)
{
	int fd = kvm_elf_write(e);
	int err = boot_load_elf(fd, &mem, k);

	close(fd);
	return err;
}

static int load_bent(void (*bend)(struct kvm_elf *))
{
	struct boot_kernel k;
	struct kvm_elf e;

	kvm_elf_init(&e);
	bend(&e);
	return load(&e, &k);
}

Test(boot, loads_segment_at_its_physical_address)
{
	struct boot_kernel k;
	struct kvm_elf e;

	kvm_elf_init(&e);
	memset(mem.host + e.ph.p_paddr + KVM_ELF_PAYLOAD, 0x77, 16);
	cr_assert_eq(load(&e, &k), 0);

	cr_assert_eq(k.entry, 0x1000000);
	cr_assert_eq(k.end, 0x1000000 + 2 * KVM_ELF_PAYLOAD);
	cr_assert_eq(mem.host[0x1000000], 0xa5);
	cr_assert_eq(mem.host[0x1000000 + KVM_ELF_PAYLOAD - 1], 0xa5);
	/* The part past the file data is zeroed (bss). */
	cr_assert_eq(mem.host[0x1000000 + KVM_ELF_PAYLOAD], 0);
}

Test(boot, virtual_entry_is_translated_to_physical)
{
	struct boot_kernel k;
	struct kvm_elf e;

	kvm_elf_init(&e);
	e.eh.e_entry = e.ph.p_vaddr + 0x40;
	cr_assert_eq(load(&e, &k), 0);
	cr_assert_eq(k.entry, 0x1000040);
}

static void cut_header(struct kvm_elf *e)
{
	e->truncate = 20;
}

static void cut_segment(struct kvm_elf *e)
{
	e->truncate = 4096 + KVM_ELF_PAYLOAD / 2;
}

static void not_elf(struct kvm_elf *e)
{
	e->eh.e_ident[1] = 'X';
}

static void elf32(struct kvm_elf *e)
{
	e->eh.e_ident[EI_CLASS] = ELFCLASS32;
}

static void arm64(struct kvm_elf *e)
{
	e->eh.e_machine = EM_AARCH64;
}

static void shared_object(struct kvm_elf *e)
{
	e->eh.e_type = ET_DYN;
}

Test(boot, rejects_truncated_header)
{
	cr_assert_eq(load_bent(cut_header), -ENOEXEC);
}

Test(boot, rejects_truncated_segment)
{
	cr_assert_eq(load_bent(cut_segment), -ENOEXEC);
}

Test(boot, rejects_files_that_are_not_x86_64_executables)
{
	cr_assert_eq(load_bent(not_elf), -ENOEXEC);
	cr_assert_eq(load_bent(elf32), -ENOEXEC);
	cr_assert_eq(load_bent(arm64), -ENOEXEC);
	cr_assert_eq(load_bent(shared_object), -ENOEXEC);
}

static void phdrs_past_eof(struct kvm_elf *e)
{
	e->eh.e_phoff = 1ull << 40;
}

static void phdrs_too_many(struct kvm_elf *e)
{
	e->eh.e_phnum = BOOT_MAX_PHDRS + 1;
}

static void phdrs_wrong_size(struct kvm_elf *e)
{
	e->eh.e_phentsize = 32;
}

static void phdrs_none(struct kvm_elf *e)
{
	e->eh.e_phnum = 0;
}

Test(boot, rejects_bad_program_header_tables)
{
	cr_assert_eq(load_bent(phdrs_past_eof), -ENOEXEC);
	cr_assert_eq(load_bent(phdrs_too_many), -ENOEXEC);
	cr_assert_eq(load_bent(phdrs_wrong_size), -ENOEXEC);
	cr_assert_eq(load_bent(phdrs_none), -ENOEXEC);
}

static void above_ram(struct kvm_elf *e)
{
	e->ph.p_paddr = MEM_SIZE - KVM_ELF_PAYLOAD;
	e->eh.e_entry = e->ph.p_paddr;
}

static void below_1mib(struct kvm_elf *e)
{
	e->ph.p_paddr = 0x7000; /* would overwrite the zero page */
	e->eh.e_entry = e->ph.p_paddr;
}

Test(boot, rejects_segments_outside_ram)
{
	cr_assert_eq(load_bent(above_ram), -ERANGE);
	cr_assert_eq(load_bent(below_1mib), -ERANGE);
}

static void huge_memsz(struct kvm_elf *e)
{
	e->ph.p_memsz = UINT64_MAX;
}

static void huge_paddr(struct kvm_elf *e)
{
	e->ph.p_paddr = UINT64_MAX - 100;
	e->eh.e_entry = e->ph.p_paddr;
}

static void huge_offset(struct kvm_elf *e)
{
	e->ph.p_offset = UINT64_MAX - 10;
}

static void filesz_over_memsz(struct kvm_elf *e)
{
	e->ph.p_memsz = KVM_ELF_PAYLOAD / 2;
}

Test(boot, rejects_huge_sizes_without_overflow)
{
	cr_assert_eq(load_bent(huge_memsz), -ERANGE);
	cr_assert_eq(load_bent(huge_paddr), -ERANGE);
	cr_assert_eq(load_bent(huge_offset), -ENOEXEC);
	cr_assert_eq(load_bent(filesz_over_memsz), -ENOEXEC);
}

static void entry_elsewhere(struct kvm_elf *e)
{
	e->eh.e_entry = 0x2000000;
}

static void no_load_segment(struct kvm_elf *e)
{
	e->ph.p_type = PT_NOTE;
}

Test(boot, rejects_kernels_without_a_reachable_entry)
{
	cr_assert_eq(load_bent(entry_elsewhere), -ENOEXEC);
	cr_assert_eq(load_bent(no_load_segment), -ENOEXEC);
}

static bool is_pvm(const char *symbol)
{
	struct kvm_elf e;
	bool pvm = true;
	int fd;

	kvm_elf_init(&e);
	e.symbol = symbol;
	fd = kvm_elf_write(&e);
	cr_assert_eq(boot_elf_is_pvm_guest(fd, &pvm), 0);
	close(fd);
	return pvm;
}

Test(boot, pvm_guest_is_recognised_by_its_setup_symbol)
{
	cr_assert(is_pvm("pvm_early_setup"));
	cr_assert_not(is_pvm("startup_64"));
	cr_assert_not(is_pvm("pvm_early_setup_x")); /* whole names only */
	cr_assert_not(is_pvm(NULL));
}

Test(boot, built_guest_kernel_loads_and_is_not_a_pvm_guest)
{
	const char *path = kvm_elf_guest_vmlinux();
	struct boot_kernel k;
	bool pvm = true;
	int fd;

	if (!path)
		cr_skip_test("guest/vmlinux is not built in this build dir");
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(boot_load_elf(fd, &mem, &k), 0);
	cr_assert_eq(boot_elf_is_pvm_guest(fd, &pvm), 0);
	cr_assert_not(pvm);
	cr_assert_geq(k.entry, BOOT_HIGH_START);
	close(fd);
}

Test(boot, initrd_goes_page_aligned_at_the_top_of_ram)
{
	uint64_t gpa;

	cr_assert_eq(boot_place_initrd(MEM_SIZE, 0x1800000, 10000, &gpa), 0);
	cr_assert_eq(gpa % 4096, 0);
	cr_assert_leq(gpa + 10000, MEM_SIZE);
	cr_assert_gt(gpa + 10000 + 4096, MEM_SIZE);
}

Test(boot, initrd_that_does_not_fit_is_refused)
{
	uint64_t gpa;

	cr_assert_eq(boot_place_initrd(MEM_SIZE, 0x1800000, 16 << 20, &gpa),
		     -ENOSPC);
	cr_assert_eq(boot_place_initrd(MEM_SIZE, 0, UINT64_MAX, &gpa), -ENOSPC);
	cr_assert_eq(boot_place_initrd(MEM_SIZE, 0, 0, &gpa), -ENOSPC);
}

Test(boot, zero_page_describes_ram_cmdline_and_initrd)
{
	struct boot_layout l = {
	    .mem_size = MEM_SIZE,
	    .cmdline_gpa = BOOT_CMDLINE,
	    .cmdline_size = 12,
	    .initrd_gpa = 0x1f00000,
	    .initrd_size = 4096,
	};
	struct boot_params bp;
	uint64_t ram = 0;

	boot_fill_params(&bp, &l);
	cr_assert_eq(bp.hdr.boot_flag, 0xaa55);
	cr_assert_eq(bp.hdr.type_of_loader, 0xff);
	cr_assert_eq(bp.hdr.cmd_line_ptr, BOOT_CMDLINE);
	cr_assert_eq(bp.hdr.cmdline_size, 11);
	cr_assert_eq(bp.hdr.ramdisk_image, 0x1f00000);
	cr_assert_eq(bp.hdr.ramdisk_size, 4096);
	for (unsigned i = 0; i < bp.e820_entries; i++)
		if (bp.e820_table[i].type == 1)
			ram += bp.e820_table[i].size;
	/* All RAM but the EBDA and the BIOS hole. */
	cr_assert_eq(ram, MEM_SIZE - (0x100000 - 0x9fc00));
}

Test(boot, setup_writes_cmdline_and_identity_page_tables)
{
	uint64_t *pd = (uint64_t *)(mem.host + BOOT_PD);
	uint64_t *pml4 = (uint64_t *)(mem.host + BOOT_PML4);

	cr_assert_eq(boot_write_setup(&mem, "console=ttyS0", 0, 0), 0);
	cr_assert_str_eq((char *)mem.host + BOOT_CMDLINE, "console=ttyS0");
	cr_assert_eq(pml4[0] & ~0xfffull, BOOT_PDPT);
	cr_assert_eq(pd[3] & ~0xfffull, 3ull << 21);
	cr_assert_eq(pd[2047] & ~0xfffull, 2047ull << 21);
	cr_assert(pd[5] & 0x80, "2 MiB pages");
}

Test(boot, command_line_over_the_kernel_limit_is_refused)
{
	char line[BOOT_CMDLINE_SIZE + 1];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	cr_assert_eq(boot_write_setup(&mem, line, 0, 0), -E2BIG);
	line[BOOT_CMDLINE_SIZE - 1] = '\0';
	cr_assert_eq(boot_write_setup(&mem, line, 0, 0), 0);
}

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

/* What the guest kernel checks before it trusts an MP table. */
Test(boot, mp_table_is_found_where_the_kernel_scans_and_sums_to_zero)
{
	const uint8_t *mpf = (uint8_t *)mem.host + BOOT_EBDA;
	const uint8_t *cfg;
	uint32_t at;
	uint16_t len;

	cr_assert_eq(boot_write_setup(&mem, "console=ttyS0", 0, 0), 0);
	cr_assert_eq(memcmp(mpf, "_MP_", 4), 0);
	cr_assert_eq(byte_sum(mpf, 16), 0);
	cr_assert_eq(mpf[8], 1, "length in 16-byte units");
	memcpy(&at, mpf + 4, 4);
	cr_assert(at > BOOT_EBDA && at < 0xa0000, "table in the EBDA");

	cfg = (uint8_t *)mem.host + at;
	memcpy(&len, cfg + 4, 2);
	cr_assert_eq(memcmp(cfg, "PCMP", 4), 0);
	cr_assert_leq(at + len, 0xa0000u);
	cr_assert_eq(byte_sum(cfg, len), 0);
}

/* Entry counts by type: 1 CPU, 1 bus, 1 IOAPIC, 15 ISA lines, 2 LINTs. */
Test(boot, mp_table_lists_cpu_bus_ioapic_and_interrupts)
{
	const uint8_t *cfg = (uint8_t *)mem.host + BOOT_EBDA + 16;
	static const size_t size[] = {20, 8, 8, 8, 8};
	unsigned count[5] = {0};
	uint16_t entries;
	size_t off = 44;

	cr_assert_eq(boot_write_setup(&mem, "console=ttyS0", 0, 0), 0);
	memcpy(&entries, cfg + 34, 2);
	for (unsigned i = 0; i < entries; i++) {
		cr_assert_lt(cfg[off], 5, "entry %u type %u", i, cfg[off]);
		count[cfg[off]]++;
		off += size[cfg[off]];
	}
	cr_assert_eq(count[0], 1);
	cr_assert_eq(count[1], 1);
	cr_assert_eq(count[2], 1);
	cr_assert_eq(count[3], 15);
	cr_assert_eq(count[4], 2);
}
