/* Tests of host KVM detection and of refusing kernels the host cannot
 * run; simulated hosts use other device and sysfs paths. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm/host.h"
#include "kvm/vm.h"
#include "tests/kvm_elf.h"

static char sysmod[64];

/* A fake /sys/module holding just the named module. */
static const char *fake_sysfs(const char *module)
{
	char path[128];

	strcpy(sysmod, "/tmp/vmpool-sysmod-XXXXXX");
	cr_assert_not_null(mkdtemp(sysmod));
	snprintf(path, sizeof(path), "%s/%s", sysmod, module);
	cr_assert_eq(mkdir(path, 0755), 0);
	return sysmod;
}

static void remove_fake_sysfs(void)
{
	char cmd[128];

	if (!sysmod[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sysmod);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(kvm_host, .fini = remove_fake_sysfs);

static void need_kvm(void)
{
	struct kvm_host h;

	if (kvm_probe(&h))
		cr_skip_test("no usable /dev/kvm here: %s", h.desc);
}

Test(kvm_host, missing_device_is_a_clear_error)
{
	struct kvm_host h;

	cr_assert_eq(kvm_probe_at(&h, "/nonexistent/kvm", "/sys/module"),
		     -ENOENT);
	cr_assert_eq(h.kind, KVM_HOST_NONE);
	cr_assert(strstr(h.desc, "no /nonexistent/kvm"), "desc: %s", h.desc);
}

Test(kvm_host, device_that_is_not_kvm_is_a_clear_error)
{
	struct kvm_host h;

	cr_assert_eq(kvm_probe_at(&h, "/dev/null", "/sys/module"), -ENODEV);
	cr_assert_eq(h.kind, KVM_HOST_NONE);
	cr_assert(strstr(h.desc, "not a KVM device"), "desc: %s", h.desc);
}

Test(kvm_host, kind_comes_from_the_loaded_module)
{
	struct kvm_host h;

	need_kvm();
	cr_assert_eq(kvm_probe_at(&h, KVM_DEV_PATH, fake_sysfs("kvm_amd")), 0);
	cr_assert_eq(h.kind, KVM_HOST_HARDWARE);
	cr_assert(strstr(h.desc, "kvm_amd"), "desc: %s", h.desc);
	remove_fake_sysfs();

	cr_assert_eq(kvm_probe_at(&h, KVM_DEV_PATH, fake_sysfs("kvm_pvm")), 0);
	cr_assert_eq(h.kind, KVM_HOST_PVM);
	cr_assert(strstr(h.desc, "PVM"), "desc: %s", h.desc);
	cr_assert_eq(h.api_version, 12);
}

Test(kvm_host, this_host_is_described)
{
	struct kvm_host h;

	need_kvm();
	cr_assert_eq(kvm_probe(&h), 0);
	cr_assert_neq(h.kind, KVM_HOST_NONE);
	cr_assert_gt(strlen(h.desc), 0);
	cr_log_info("this host: %s", h.desc);
}

/* Load `path` (or a synthetic kernel with `symbol`) on a PVM host. */
static int load_on_pvm(const char *path, const char *symbol, char *why,
		       size_t len)
{
	struct vm_config cfg;
	struct kvm_elf e;
	char fdpath[64];
	struct vm *vm;
	int fd = -1, err;

	vm_config_default(&cfg);
	cfg.sysmod = fake_sysfs("kvm_pvm");
	cr_assert_eq(vm_create(&cfg, &vm), 0);
	if (!path) {
		kvm_elf_init(&e);
		e.symbol = symbol;
		fd = kvm_elf_write(&e);
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
		path = fdpath;
	}
	err = vm_load_kernel(vm, path, NULL, NULL);
	snprintf(why, len, "%s", vm_error(vm));
	vm_destroy(vm);
	if (fd >= 0)
		close(fd);
	return err;
}

Test(kvm_host, pvm_host_refuses_a_normal_kernel_clearly)
{
	char why[256];

	need_kvm();
	cr_assert_eq(load_on_pvm(NULL, "startup_64", why, sizeof(why)),
		     -ENOEXEC);
	cr_assert(strstr(why, "PVM"), "why: %s", why);
}

Test(kvm_host, pvm_host_refuses_our_guest_kernel)
{
	const char *path = kvm_elf_guest_vmlinux();
	char why[256];

	need_kvm();
	if (!path)
		cr_skip_test("guest/vmlinux is not built in this build dir");
	cr_assert_eq(load_on_pvm(path, NULL, why, sizeof(why)), -ENOEXEC);
	cr_assert(strstr(why, "runs only kernels built as PVM guests"),
		  "why: %s", why);
}

Test(kvm_host, pvm_host_accepts_a_pvm_guest_kernel)
{
	char why[256];

	need_kvm();
	cr_assert_eq(load_on_pvm(NULL, "pvm_early_setup", why, sizeof(why)), 0);
}
