"""Hold one idle VM open in the test host for its whole life.

The test host's kernel turns static keys on and off as the first VM (and
the first vCPU with an in-kernel APIC) comes and the last goes, and each
turn rewrites live kernel code through a breakpoint. Under QEMU's TCG a
CPU now and then keeps running the old translation with the breakpoint
after the rewrite is done: the kernel then oopses in __schedule on every
CPU and the test host stops for good. An idle VM with one vCPU, created
before the command and never run, keeps those keys on, so the command's
VMs come and go without rewriting kernel code.

Exits 0 once the VM exists, leaving a child that holds it; 1 on failure.
"""

import fcntl
import os
import signal
import sys

KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_CREATE_IRQCHIP = 0xAE60


def main():
    try:
        kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)
        fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    except OSError as e:
        print("pin_kvm: cannot hold an idle VM: %s" % e, file=sys.stderr)
        return 1
    if os.fork() == 0:
        os.setsid()
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        while True:
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
