/* What kind of KVM this host offers, found before any VM is made. */
#include "kvm/host.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/util.h"

static const struct {
	int cap;
	const char *name;
} needed_caps[] = {
    {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
    {KVM_CAP_IRQCHIP, "IRQCHIP"},
    {KVM_CAP_PIT2, "PIT2"},
    {KVM_CAP_IRQFD, "IRQFD"},
    {KVM_CAP_IOEVENTFD, "IOEVENTFD"},
    {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR"},
    {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
    {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
};

const char *kvm_host_kind_name(enum kvm_host_kind kind)
{
	switch (kind) {
	case KVM_HOST_NONE:
		return "none";
	case KVM_HOST_HARDWARE:
		return "hardware";
	case KVM_HOST_PVM:
		return "pvm";
	case KVM_HOST_UNKNOWN:
		return "unknown";
	}
	return "?";
}

static int module_loaded(const char *sysmod, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", sysmod, name);
	return access(path, F_OK) == 0;
}

static void find_module(struct kvm_host *h, const char *sysmod)
{
	static const char *const hw[] = {"kvm_intel", "kvm_amd"};

	if (module_loaded(sysmod, "kvm_pvm")) {
		h->kind = KVM_HOST_PVM;
		snprintf(h->desc, sizeof(h->desc),
			 "PVM (kvm_pvm, a software hypervisor): runs only "
			 "kernels built as PVM guests");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(hw); i++) {
		if (module_loaded(sysmod, hw[i])) {
			h->kind = KVM_HOST_HARDWARE;
			snprintf(h->desc, sizeof(h->desc), "hardware KVM (%s)",
				 hw[i]);
			return;
		}
	}
	h->kind = KVM_HOST_UNKNOWN;
	snprintf(h->desc, sizeof(h->desc),
		 "KVM from an unknown module (none of kvm_intel, kvm_amd, "
		 "kvm_pvm in %s)",
		 sysmod);
}

static int open_dev(struct kvm_host *h, const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	fd = -errno;
	h->kind = KVM_HOST_NONE;
	if (fd == -ENOENT)
		snprintf(h->desc, sizeof(h->desc),
			 "no %s: this host offers no KVM", dev);
	else
		snprintf(h->desc, sizeof(h->desc), "cannot open %s: %s", dev,
			 strerror(-fd));
	return fd;
}

static int check_caps(struct kvm_host *h, int fd)
{
	for (size_t i = 0; i < ARRAY_SIZE(needed_caps); i++) {
		if (ioctl(fd, KVM_CHECK_EXTENSION, needed_caps[i].cap) > 0)
			continue;
		snprintf(h->desc, sizeof(h->desc),
			 "KVM lacks the capability KVM_CAP_%s",
			 needed_caps[i].name);
		return -ENOTSUP;
	}
	return 0;
}

int kvm_probe_at(struct kvm_host *h, const char *dev, const char *sysmod)
{
	int fd, err;

	memset(h, 0, sizeof(*h));
	fd = open_dev(h, dev);
	if (fd < 0)
		return fd;

	find_module(h, sysmod);
	h->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (h->api_version < 0) {
		h->kind = KVM_HOST_NONE;
		snprintf(h->desc, sizeof(h->desc), "%s is not a KVM device",
			 dev);
		close(fd);
		return -ENODEV;
	}
	if (h->api_version != KVM_API_VERSION) {
		snprintf(h->desc, sizeof(h->desc),
			 "KVM API version %d, need %d", h->api_version,
			 KVM_API_VERSION);
		close(fd);
		return -EPROTO;
	}

	err = check_caps(h, fd);
	close(fd);
	return err;
}

int kvm_probe(struct kvm_host *h)
{
	return kvm_probe_at(h, KVM_DEV_PATH, KVM_SYSFS_PATH);
}
