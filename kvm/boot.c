/* Loading a Linux guest: the vmlinux ELF, the initramfs, the zero page,
 * and the tables for entering its 64-bit entry point directly. */
#include "kvm/boot.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/mptable.h"

_Static_assert(sizeof(struct boot_params) == 4096, "zero page is a page");

#define PAGE_SIZE    4096ull
#define HUGE_2M	     (2ull << 20)
#define PTE_PRESENT  0x1ull
#define PTE_WRITE    0x2ull
#define PTE_HUGE     0x80ull
#define INITRD_LIMIT 0x7fffffffull /* initrd_addr_max of the protocol */
/* The largest string table searched for PVM symbols. */
#define MAX_STRTAB	   (64ull << 20)
#define E820_TYPE_RAM	   1
#define E820_TYPE_RESERVED 2

/* Symbols only a kernel built as a PVM guest has. */
static const char *const pvm_symbols[] = {
    "pvm_early_setup",
    "pvm_kernel_layout_relocate",
};

static int pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOEXEC; /* the file shrank under us */
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int file_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*size = st.st_size;
	return 0;
}

/* True when [off, off + len) lies inside a file of fsize bytes. */
static bool in_file(uint64_t fsize, uint64_t off, uint64_t len)
{
	return off <= fsize && len <= fsize - off;
}

static int read_ehdr(int fd, uint64_t fsize, Elf64_Ehdr *eh)
{
	int err;

	if (fsize < sizeof(*eh))
		return -ENOEXEC;
	err = pread_exact(fd, eh, sizeof(*eh), 0);
	if (err)
		return err;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
	    eh->e_type != ET_EXEC)
		return -ENOEXEC;
	return 0;
}

static int read_phdrs(int fd, uint64_t fsize, const Elf64_Ehdr *eh,
		      Elf64_Phdr *ph)
{
	uint64_t len = (uint64_t)eh->e_phnum * sizeof(*ph);

	if (eh->e_phentsize != sizeof(*ph) || eh->e_phnum == 0 ||
	    eh->e_phnum > BOOT_MAX_PHDRS || !in_file(fsize, eh->e_phoff, len))
		return -ENOEXEC;
	return pread_exact(fd, ph, len, eh->e_phoff);
}

static int check_segment(const Elf64_Phdr *p, uint64_t fsize,
			 const struct guest_mem *mem)
{
	if (p->p_filesz > p->p_memsz ||
	    !in_file(fsize, p->p_offset, p->p_filesz))
		return -ENOEXEC;
	if (p->p_paddr < BOOT_HIGH_START ||
	    !guest_mem_ok(mem, p->p_paddr, p->p_memsz))
		return -ERANGE;
	return 0;
}

static int load_segment(int fd, const Elf64_Phdr *p,
			const struct guest_mem *mem)
{
	uint8_t *dst = guest_mem_ptr(mem, p->p_paddr, p->p_memsz);
	int err = pread_exact(fd, dst, p->p_filesz, p->p_offset);

	if (err)
		return err;
	memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
	return 0;
}

/* vmlinux puts the physical address of startup_64 in e_entry; accept a
 * virtual one too and translate it through its segment. */
static int entry_phys(const Elf64_Ehdr *eh, const Elf64_Phdr *ph,
		      uint64_t *entry)
{
	uint64_t e = eh->e_entry;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD)
			continue;
		if (e >= p->p_vaddr && e - p->p_vaddr < p->p_filesz) {
			*entry = p->p_paddr + (e - p->p_vaddr);
			return 0;
		}
		if (e >= p->p_paddr && e - p->p_paddr < p->p_filesz) {
			*entry = e;
			return 0;
		}
	}
	return -ENOEXEC;
}

static int load_segments(int fd, uint64_t fsize, const Elf64_Ehdr *eh,
			 const Elf64_Phdr *ph, const struct guest_mem *mem,
			 uint64_t *end)
{
	unsigned loaded = 0;
	int err;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		err = check_segment(&ph[i], fsize, mem);
		if (err)
			return err;
		err = load_segment(fd, &ph[i], mem);
		if (err)
			return err;
		*end = MAX(*end, ph[i].p_paddr + ph[i].p_memsz);
		loaded++;
	}
	return loaded ? 0 : -ENOEXEC;
}

int boot_load_elf(int fd, const struct guest_mem *mem, struct boot_kernel *k)
{
	Elf64_Phdr ph[BOOT_MAX_PHDRS];
	Elf64_Ehdr eh;
	uint64_t fsize = 0;
	int err;

	err = file_size(fd, &fsize);
	if (err)
		return err;

	err = read_ehdr(fd, fsize, &eh);
	if (err)
		return err;

	err = read_phdrs(fd, fsize, &eh, ph);
	if (err)
		return err;

	err = entry_phys(&eh, ph, &k->entry);
	if (err)
		return err;

	k->end = 0;
	return load_segments(fd, fsize, &eh, ph, mem, &k->end);
}

/* The string table that the symbol table links to, or -ENOENT. */
static int find_strtab(int fd, uint64_t fsize, const Elf64_Ehdr *eh,
		       Elf64_Shdr *strtab)
{
	Elf64_Shdr sh;
	int err;

	if (eh->e_shnum == 0)
		return -ENOENT; /* stripped: no symbols to judge by */
	if (eh->e_shentsize != sizeof(sh) || eh->e_shnum >= SHN_LORESERVE ||
	    !in_file(fsize, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(sh)))
		return -ENOEXEC;

	for (unsigned i = 0; i < eh->e_shnum; i++) {
		err = pread_exact(fd, &sh, sizeof(sh),
				  eh->e_shoff + (uint64_t)i * sizeof(sh));
		if (err)
			return err;
		if (sh.sh_type != SHT_SYMTAB)
			continue;
		if (sh.sh_link >= eh->e_shnum)
			return -ENOEXEC;
		return pread_exact(fd, strtab, sizeof(*strtab),
				   eh->e_shoff +
				       (uint64_t)sh.sh_link * sizeof(sh));
	}
	return -ENOENT;
}

/* Whether one of the names appears as a whole string in the table. */
static bool has_symbol(const char *tab, size_t len)
{
	char want[64];

	for (size_t i = 0; i < ARRAY_SIZE(pvm_symbols); i++) {
		size_t n = strlen(pvm_symbols[i]) + 2;

		want[0] = '\0';
		memcpy(want + 1, pvm_symbols[i], n - 1);
		if (memmem(tab, len, want, n))
			return true;
	}
	return false;
}

static int search_strtab(int fd, uint64_t fsize, const Elf64_Shdr *st,
			 bool *pvm)
{
	char *tab;
	int err;

	if (st->sh_type != SHT_STRTAB || st->sh_size > MAX_STRTAB ||
	    !in_file(fsize, st->sh_offset, st->sh_size))
		return -ENOEXEC;

	tab = malloc(st->sh_size + 1);
	if (!tab)
		return -ENOMEM;
	err = pread_exact(fd, tab, st->sh_size, st->sh_offset);
	tab[st->sh_size] = '\0';
	if (!err)
		*pvm = has_symbol(tab, st->sh_size + 1);
	free(tab);
	return err;
}

int boot_elf_is_pvm_guest(int fd, bool *pvm)
{
	Elf64_Shdr strtab;
	Elf64_Ehdr eh;
	uint64_t fsize = 0;
	int err;

	*pvm = false;
	err = file_size(fd, &fsize);
	if (err)
		return err;

	err = read_ehdr(fd, fsize, &eh);
	if (err)
		return err;

	err = find_strtab(fd, fsize, &eh, &strtab);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;

	return search_strtab(fd, fsize, &strtab, pvm);
}

int boot_place_initrd(uint64_t mem_size, uint64_t kernel_end, uint64_t size,
		      uint64_t *gpa)
{
	uint64_t top = MIN(mem_size, INITRD_LIMIT + 1);
	uint64_t at;

	if (size == 0 || size > top)
		return -ENOSPC;
	at = (top - size) & ~(PAGE_SIZE - 1);
	if (at < kernel_end)
		return -ENOSPC;
	*gpa = at;
	return 0;
}

int boot_load_initrd(int fd, const struct guest_mem *mem, uint64_t kernel_end,
		     uint64_t *gpa, uint64_t *size)
{
	uint64_t fsize = 0;
	int err;

	err = file_size(fd, &fsize);
	if (err)
		return err;

	err = boot_place_initrd(mem->size, kernel_end, fsize, gpa);
	if (err)
		return err;

	*size = fsize;
	return pread_exact(fd, guest_mem_ptr(mem, *gpa, fsize), fsize, 0);
}

static void add_e820(struct boot_params *bp, uint64_t addr, uint64_t size,
		     uint32_t type)
{
	struct boot_e820_entry *e = &bp->e820_table[bp->e820_entries++];

	e->addr = addr;
	e->size = size;
	e->type = type;
}

void boot_fill_params(struct boot_params *bp, const struct boot_layout *l)
{
	struct setup_header *h = &bp->hdr;

	memset(bp, 0, sizeof(*bp));
	h->boot_flag = 0xaa55;
	h->header = 0x53726448; /* "HdrS" */
	h->version = 0x020f;
	h->type_of_loader = 0xff; /* no registered loader id */
	h->loadflags = LOADED_HIGH;
	h->cmd_line_ptr = (uint32_t)l->cmdline_gpa;
	bp->ext_cmd_line_ptr = (uint32_t)(l->cmdline_gpa >> 32);
	h->cmdline_size = l->cmdline_size ? l->cmdline_size - 1 : 0;
	h->ramdisk_image = (uint32_t)l->initrd_gpa;
	h->ramdisk_size = (uint32_t)l->initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(l->initrd_gpa >> 32);
	bp->ext_ramdisk_size = (uint32_t)(l->initrd_size >> 32);
	h->initrd_addr_max = INITRD_LIMIT;

	add_e820(bp, 0, BOOT_EBDA, E820_TYPE_RAM);
	add_e820(bp, BOOT_EBDA, 0xa0000 - BOOT_EBDA, E820_TYPE_RESERVED);
	add_e820(bp, BOOT_BIOS_START, BOOT_HIGH_START - BOOT_BIOS_START,
		 E820_TYPE_RESERVED);
	add_e820(bp, BOOT_HIGH_START, l->mem_size - BOOT_HIGH_START,
		 E820_TYPE_RAM);
}

/* A flat segment descriptor: base 0, limit 4 GiB (granularity pages). */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000) << 32) |
	       ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0x000f0000) << 32) |
	       ((uint64_t)(base & 0x00ffffff) << 16) | (limit & 0x0000ffff);
}

static void write_gdt(uint64_t *gdt)
{
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[BOOT_SEL_CODE / 8] = gdt_entry(0xa09b, 0, 0xfffff);
	gdt[BOOT_SEL_DATA / 8] = gdt_entry(0xc093, 0, 0xfffff);
	/* A 64-bit TSS descriptor takes two slots; the upper holds base
	 * bits 32..63, zero here. */
	gdt[BOOT_SEL_TSS / 8] = gdt_entry(0x008b, 0, 0x67);
	gdt[BOOT_SEL_TSS / 8 + 1] = 0;
}

/* Identity map of the low 4 GiB in 2 MiB pages: enough for the kernel's
 * first instructions, which build their own tables. */
static void write_page_tables(uint64_t *pml4, uint64_t *pdpt, uint64_t *pd)
{
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = BOOT_PDPT | PTE_PRESENT | PTE_WRITE;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD + i * PAGE_SIZE) | PTE_PRESENT | PTE_WRITE;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i * HUGE_2M) | PTE_PRESENT | PTE_WRITE | PTE_HUGE;
}

int boot_write_setup(const struct guest_mem *mem, const char *cmdline,
		     uint64_t initrd_gpa, uint64_t initrd_size)
{
	size_t clen = strlen(cmdline) + 1;
	struct boot_layout l = {
	    .mem_size = mem->size,
	    .cmdline_gpa = BOOT_CMDLINE,
	    .cmdline_size = clen,
	    .initrd_gpa = initrd_gpa,
	    .initrd_size = initrd_size,
	};
	int err;

	if (clen > BOOT_CMDLINE_SIZE)
		return -E2BIG;
	if (mem->size < BOOT_MIN_MEM || mem->size > BOOT_MAX_MEM)
		return -ERANGE;

	memcpy(guest_mem_ptr(mem, BOOT_CMDLINE, clen), cmdline, clen);
	boot_fill_params(guest_mem_ptr(mem, BOOT_ZERO_PAGE, PAGE_SIZE), &l);
	write_gdt(guest_mem_ptr(mem, BOOT_GDT, BOOT_SEL_TSS + 16));
	write_page_tables(guest_mem_ptr(mem, BOOT_PML4, PAGE_SIZE),
			  guest_mem_ptr(mem, BOOT_PDPT, PAGE_SIZE),
			  guest_mem_ptr(mem, BOOT_PD, 4 * PAGE_SIZE));
	err = mptable_write(guest_mem_ptr(mem, BOOT_EBDA, MPTABLE_MAX_SIZE),
			    MPTABLE_MAX_SIZE, BOOT_EBDA);
	return err < 0 ? err : 0;
}
