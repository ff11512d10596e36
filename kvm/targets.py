# kvm/: the VMM (VM, vCPUs, boot, UART) and its virtio devices.


# virtio-mmio transport, split virtqueues, the console.
def virtio_targets(b):
    b.library("virtio", ["kvm/virtqueue.c", "kvm/virtio_mmio.c",
                         "kvm/virtio_console.c"])
    deps = ["virtio", "ioloop", "common"]
    for name in ("virtio_ring_test", "virtio_mmio_test",
                 "virtio_console_test"):
        b.test(name, ["tests/%s.c" % name, "tests/virtio_guest.c"],
               deps=deps, libs=["uring"])


# --- vmm: VM, vCPUs, boot, UART, exit loop ---
def vmm_targets(b):
    b.library("vmm", ["kvm/host.c", "kvm/uart.c", "kvm/boot.c",
                      "kvm/mptable.c",
                      "kvm/vcpu.c", "kvm/run.c", "kvm/vm.c"])
    deps = ["vmm", "common"]
    b.program("vmpool-vm", ["kvm/vmpool_vm.c"], deps=deps)
    for name in ("kvm_host_test", "kvm_boot_test", "kvm_uart_test"):
        b.test(name, ["tests/%s.c" % name, "tests/kvm_elf.c"], deps=deps)

    # Boots on real KVM: a static /init whose behaviour the kernel command
    # line picks, packed like the guest image.
    init = b.program("kvm_test_init", ["tests/kvm_test_init.c"],
                     static=True, subdir="tests")
    cpio = b.out("tests/kvm_test.cpio")
    b.custom([cpio], [init],
             "python3 guest/mkinitramfs.py --init $in -o $out",
             "INITRAMFS $out", implicit=["guest/mkinitramfs.py"])
    b.test("kvm_vm_test", ["tests/kvm_vm_test.c", "tests/kvm_elf.c"],
           deps=["virtio", "ioloop"] + deps, libs=["uring"], where="kvm",
           inputs=[b.out("guest/vmlinux"), cpio])
# --- end vmm ---


# --- kvm_agent: end to end, our VMM + our kernel + the agent ---
def kvm_agent_targets(b):
    # The runaway task a hung guest runs is vmpool-chaos's (tools/).
    spin = b.out("bin/vmpool-chaos-spin")
    b.test("kvm_agent_test", ["tests/kvm_agent_test.c",
                              "tests/kvm_agent_guest.c"],
           deps=["backend", "ns", "vmm", "virtio", "ioloop", "proto",
                 "common"],
           libs=["uring"], where="kvm",
           inputs=[b.out("guest/vmlinux"), b.out("guest/initramfs.cpio"),
                   spin])
# --- end kvm_agent ---


def targets(b):
    virtio_targets(b)
    vmm_targets(b)
    kvm_agent_targets(b)
