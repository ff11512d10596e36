/* Synthetic vmlinux files for the VMM's loader tests. */
#include "tests/kvm_elf.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PHYS_BASE 0x1000000ull
#define VIRT_BASE 0xffffffff81000000ull

void kvm_elf_init(struct kvm_elf *e)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_ident[EI_VERSION] = EV_CURRENT;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_version = EV_CURRENT;
	e->eh.e_entry = PHYS_BASE;
	e->eh.e_phoff = sizeof(Elf64_Ehdr);
	e->eh.e_ehsize = sizeof(Elf64_Ehdr);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 1;

	e->ph.p_type = PT_LOAD;
	e->ph.p_offset = 4096;
	e->ph.p_vaddr = VIRT_BASE;
	e->ph.p_paddr = PHYS_BASE;
	e->ph.p_filesz = KVM_ELF_PAYLOAD;
	e->ph.p_memsz = 2 * KVM_ELF_PAYLOAD;
}

static void put(int fd, const void *p, size_t len, off_t off)
{
	cr_assert_eq(pwrite(fd, p, len, off), (ssize_t)len);
}

/* Section headers [null, .symtab, .strtab] after the payload. */
static void put_symbols(int fd, Elf64_Ehdr *eh, const char *name)
{
	off_t str_off = 4096 + KVM_ELF_PAYLOAD;
	size_t str_len = strlen(name) + 2;
	char strtab[256] = "";
	Elf64_Shdr sh[3] = {{0}};

	memcpy(strtab + 1, name, str_len - 1);
	put(fd, strtab, str_len, str_off);

	sh[1].sh_type = SHT_SYMTAB;
	sh[1].sh_link = 2;
	sh[2].sh_type = SHT_STRTAB;
	sh[2].sh_offset = str_off;
	sh[2].sh_size = str_len;
	eh->e_shoff = str_off + 256;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 3;
	put(fd, sh, sizeof(sh), eh->e_shoff);
}

int kvm_elf_write(const struct kvm_elf *e)
{
	uint8_t payload[KVM_ELF_PAYLOAD];
	Elf64_Ehdr eh = e->eh;
	int fd = memfd_create("vmlinux", 0);

	cr_assert_geq(fd, 0);
	memset(payload, 0xa5, sizeof(payload));
	put(fd, payload, sizeof(payload), 4096);
	if (e->symbol)
		put_symbols(fd, &eh, e->symbol);
	put(fd, &eh, sizeof(eh), 0);
	put(fd, &e->ph, sizeof(e->ph), sizeof(eh));
	if (e->truncate)
		cr_assert_eq(ftruncate(fd, e->truncate), 0);
	return fd;
}

const char *kvm_elf_guest_vmlinux(void)
{
	static char path[PATH_MAX + 32];
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	/* Tests live in <builddir>/tests, the kernel in <builddir>/guest. */
	snprintf(path, sizeof(path), "%s/../guest/vmlinux", exe);
	return access(path, R_OK) == 0 ? path : NULL;
}
