/* Synthetic vmlinux files for the VMM's loader tests. */
#ifndef VMPOOL_TESTS_KVM_ELF_H
#define VMPOOL_TESTS_KVM_ELF_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVM_ELF_PAYLOAD 4096

/* One loadable segment whose payload is KVM_ELF_PAYLOAD bytes of
 * 0xa5; a test bends any header field before writing the file. */
struct kvm_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	/* A symbol string table holding this name, or none when NULL. */
	const char *symbol;
	/* Cut the file to this many bytes (0: whole file). */
	size_t truncate;
};

/* A well-formed kernel: entry and segment at 16 MiB physical,
 * 0xffffffff81000000 virtual, like a real vmlinux. */
void kvm_elf_init(struct kvm_elf *e);

/* The file as an unlinked memfd, positioned anywhere (readers pread). */
int kvm_elf_write(const struct kvm_elf *e);

/* The guest vmlinux from the build, or NULL when it is not built. */
const char *kvm_elf_guest_vmlinux(void);

#endif
