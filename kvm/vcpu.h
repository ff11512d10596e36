/* Inside the VMM: vCPU setup and the exit loop, used by vm.c only. */
#ifndef VMPOOL_KVM_VCPU_H
#define VMPOOL_KVM_VCPU_H

#include <linux/kvm.h>

#include "kvm/vm.h"

/* Create vCPU `id` of vm and map its kvm_run area. */
int vcpu_create(struct vm *vm, struct vcpu *c, int id);
void vcpu_destroy(struct vcpu *c);

/* CPUID (as supported by KVM, with the KVM signature leaf, without
 * PV_UNHALT, and this vCPU's APIC id), MSRs, FPU and local APIC wiring;
 * for vCPU 0 also the 64-bit entry state: flat segments, identity
 * paging, RIP and RSI. */
int vcpu_setup(struct vcpu *c, const struct kvm_cpuid2 *cpuid);

/* Supported CPUID of the host's KVM, malloc'd. */
int vcpu_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **out);

/* Thread body: run until the VM ends, then report to vm_vcpu_done(). */
void *vcpu_thread(void *arg);

/* The signal that kicks a vCPU thread out of KVM_RUN. */
int vcpu_kick_signal(void);

/* Called once by each vCPU thread as it leaves: the first caller sets
 * why the VM ended, and the others are asked to stop. */
void vm_vcpu_done(struct vm *vm, enum vm_end end, const char *why);

#endif
