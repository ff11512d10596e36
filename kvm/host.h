/* What kind of KVM this host offers, found before any VM is made. */
#ifndef VMPOOL_KVM_HOST_H
#define VMPOOL_KVM_HOST_H

enum kvm_host_kind {
	KVM_HOST_NONE,	   /* no usable /dev/kvm */
	KVM_HOST_HARDWARE, /* kvm_intel or kvm_amd: runs our guest */
	KVM_HOST_PVM,	   /* kvm_pvm: runs only PVM guest kernels */
	KVM_HOST_UNKNOWN,  /* /dev/kvm works, backing module not known */
};

struct kvm_host {
	enum kvm_host_kind kind;
	int api_version;
	/* One line for the operator, e.g. "hardware KVM (kvm_amd)". */
	char desc[192];
};

#define KVM_DEV_PATH   "/dev/kvm"
#define KVM_SYSFS_PATH "/sys/module"

/* Probe /dev/kvm: its module, API version 12 and the capabilities the
 * VMM needs. Fills h (desc says what was found or what is missing) and
 * returns 0, or -errno: -ENOENT/-EACCES for no device or no permission,
 * -ENODEV for a device that is not KVM, -EPROTO for a wrong API version,
 * -ENOTSUP for a missing capability. */
int kvm_probe(struct kvm_host *h);

/* The same with other paths for the device and for the sysfs module
 * folder, so tests can simulate hosts. */
int kvm_probe_at(struct kvm_host *h, const char *dev, const char *sysmod);

const char *kvm_host_kind_name(enum kvm_host_kind kind);

#endif
