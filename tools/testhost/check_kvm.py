"""Check, inside the test host, that /dev/kvm behaves as on real hardware.

Prints what it found and exits 0 only when the API version is right, a
VM can be created and the capabilities the VMM relies on are present.
"""

import fcntl
import os
import sys

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_CHECK_EXTENSION = 0xAE03
KVM_API_VERSION = 12

# Capabilities the VMM uses: in-kernel irqchip and PIT, irqfd, ioeventfd,
# user memory slots and immediate exit.
CAPS = {"IRQCHIP": 0, "USER_MEMORY": 3, "SET_TSS_ADDR": 4, "PIT2": 33,
        "IRQFD": 32, "IOEVENTFD": 36, "IMMEDIATE_EXIT": 136}


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return "unreadable (%s)" % e.strerror


def main():
    ok = True
    svm = any("svm" in l.split() for l in open("/proc/cpuinfo")
              if l.startswith("flags"))
    print("cpu svm flag: %s" % ("yes" if svm else "NO"))
    print("kvm_amd npt: %s, nested: %s" % (
        read("/sys/module/kvm_amd/parameters/npt"),
        read("/sys/module/kvm_amd/parameters/nested")))

    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    version = fcntl.ioctl(kvm, KVM_GET_API_VERSION)
    print("KVM_GET_API_VERSION: %d" % version)
    ok &= svm and version == KVM_API_VERSION

    for name, cap in CAPS.items():
        have = fcntl.ioctl(kvm, KVM_CHECK_EXTENSION, cap)
        print("KVM_CAP_%s: %d" % (name, have))
        ok &= have > 0

    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    print("KVM_CREATE_VM: fd %d" % vm)
    os.close(vm)
    print("kvm check: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
