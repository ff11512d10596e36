/* Loading a Linux guest: the vmlinux ELF, the initramfs, the zero page,
 * and the tables for entering its 64-bit entry point directly. */
#ifndef VMPOOL_KVM_BOOT_H
#define VMPOOL_KVM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm/guest_mem.h"

struct boot_params;

/* Guest physical layout below 1 MiB; the kernel loads above it. */
#define BOOT_GDT	0x500
#define BOOT_ZERO_PAGE	0x7000
#define BOOT_PML4	0x9000
#define BOOT_PDPT	0xa000
#define BOOT_PD		0xb000 /* four pages: 4 GiB in 2 MiB pages */
#define BOOT_CMDLINE	0x20000
#define BOOT_EBDA	0x9fc00
#define BOOT_BIOS_START 0xf0000
#define BOOT_HIGH_START 0x100000
/* The x86 kernel's COMMAND_LINE_SIZE, NUL included. */
#define BOOT_CMDLINE_SIZE 2048

/* RAM stays below the device window that starts at 0xd0000000. */
#define BOOT_MIN_MEM (16ull << 20)
#define BOOT_MAX_MEM (3ull << 30)

/* GDT selectors the vCPU starts with. */
#define BOOT_SEL_CODE 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_TSS  0x20

/* Most program headers a vmlinux may have; real ones have about five. */
#define BOOT_MAX_PHDRS 64

struct boot_kernel {
	uint64_t entry; /* guest physical address of startup_64 */
	uint64_t end;	/* first byte above every loaded segment */
};

struct boot_layout {
	uint64_t mem_size;
	uint64_t cmdline_gpa;
	uint64_t cmdline_size; /* with the NUL */
	uint64_t initrd_gpa;   /* 0 with no initramfs */
	uint64_t initrd_size;
};

/* Copy every PT_LOAD segment of the ELF vmlinux in fd to its physical
 * address. The file is untrusted: headers, offsets and sizes are checked
 * against the file and guest RAM. 0, -ENOEXEC for a malformed or foreign
 * file, -ERANGE for a segment outside RAM (or below 1 MiB), -errno. */
int boot_load_elf(int fd, const struct guest_mem *mem, struct boot_kernel *k);

/* Whether the vmlinux in fd was built as a PVM guest, judged by the PVM
 * setup symbols in its symbol table (a file without one is not). */
int boot_elf_is_pvm_guest(int fd, bool *pvm);

/* Highest page-aligned address where `size` bytes fit below the end of
 * RAM (and below 2 GiB, the protocol's limit) and above kernel_end; 0 or
 * -ENOSPC. */
int boot_place_initrd(uint64_t mem_size, uint64_t kernel_end, uint64_t size,
		      uint64_t *gpa);

/* Read the whole initramfs in fd into guest RAM as placed above. */
int boot_load_initrd(int fd, const struct guest_mem *mem, uint64_t kernel_end,
		     uint64_t *gpa, uint64_t *size);

/* The zero page for layout l: e820 map, command line, initramfs, loader
 * fields of the boot protocol. */
void boot_fill_params(struct boot_params *bp, const struct boot_layout *l);

/* Write the command line, zero page, GDT, identity page tables and the
 * MP table (at BOOT_EBDA, see mptable.h) into guest RAM. -E2BIG for a command line over BOOT_CMDLINE_SIZE. */
int boot_write_setup(const struct guest_mem *mem, const char *cmdline,
		     uint64_t initrd_gpa, uint64_t initrd_size);

#endif
