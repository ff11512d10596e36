/* Where kvm suites run (hardware or the test host), /dev/kvm is real KVM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/util.h"

static int kvm_fd = -1;

static void open_kvm(void)
{
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		cr_skip_test("/dev/kvm: %s", strerror(errno));
}

static void close_kvm(void)
{
	if (kvm_fd >= 0)
		close(kvm_fd);
}

/* The first byte of a sysfs file, or 0 when it cannot be read. */
static char sysfs_char(const char *path)
{
	char c = 0;
	FILE *f = fopen(path, "r");

	if (f) {
		c = (char)fgetc(f);
		fclose(f);
	}
	return c;
}

static int cpu_has_flag(const char *flag)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	cr_assert_not_null(f, "/proc/cpuinfo: %s", strerror(errno));
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) == 0)
			found = strstr(line, flag) != NULL;
	}
	fclose(f);
	return found;
}

TestSuite(testhost, .init = open_kvm, .fini = close_kvm);

Test(testhost, kvm_is_hardware_backed_not_pvm)
{
	cr_expect(access("/sys/module/kvm_pvm", F_OK) != 0,
		  "kvm_pvm is loaded: this /dev/kvm runs no ordinary guest");
	cr_expect(access("/sys/module/kvm_amd", F_OK) == 0 ||
		      access("/sys/module/kvm_intel", F_OK) == 0,
		  "neither kvm_amd nor kvm_intel is loaded");
}

Test(testhost, amd_cpu_offers_svm_with_nested_paging)
{
	if (access("/sys/module/kvm_amd", F_OK) != 0)
		cr_skip_test("not an AMD host (kvm_amd is not loaded)");

	cr_expect(cpu_has_flag(" svm"), "no svm flag in /proc/cpuinfo");
	cr_expect_eq(sysfs_char("/sys/module/kvm_amd/parameters/npt"), 'Y',
		     "kvm_amd runs without nested paging: guests crawl");
}

Test(testhost, kvm_api_version_is_12)
{
	cr_assert_eq(ioctl(kvm_fd, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
}

Test(testhost, offers_the_capabilities_the_vmm_uses)
{
	static const struct {
		const char *name;
		int cap;
	} caps[] = {
	    {"IRQCHIP", KVM_CAP_IRQCHIP},
	    {"USER_MEMORY", KVM_CAP_USER_MEMORY},
	    {"SET_TSS_ADDR", KVM_CAP_SET_TSS_ADDR},
	    {"PIT2", KVM_CAP_PIT2},
	    {"IRQFD", KVM_CAP_IRQFD},
	    {"IOEVENTFD", KVM_CAP_IOEVENTFD},
	    {"IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT},
	};

	for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
		cr_expect_gt(ioctl(kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap), 0,
			     "KVM_CAP_%s missing", caps[i].name);
}

Test(testhost, creates_a_vm_with_an_in_kernel_irqchip)
{
	int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);

	cr_assert_geq(vm, 0, "KVM_CREATE_VM: %s", strerror(errno));

	cr_expect_eq(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0,
		     "KVM_CREATE_IRQCHIP: %s", strerror(errno));

	cr_expect_geq(ioctl(vm, KVM_CREATE_VCPU, 0), 0, "KVM_CREATE_VCPU: %s",
		      strerror(errno));
	close(vm);
}
