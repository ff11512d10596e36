# kvm/: the VMM (VM, vCPUs, boot, UART) and its virtio devices.


# virtio-mmio transport, split virtqueues, the console, the io_uring loop.
def virtio_targets(b):
    b.library("ioloop", ["kvm/ioloop.c"])
    b.library("virtio", ["kvm/virtqueue.c", "kvm/virtio_mmio.c",
                         "kvm/virtio_console.c"])
    deps = ["virtio", "ioloop", "common"]
    for name in ("virtio_ring_test", "virtio_mmio_test",
                 "virtio_console_test", "virtio_ioloop_test"):
        b.test(name, ["tests/%s.c" % name, "tests/virtio_guest.c"],
               deps=deps, libs=["uring"])


# --- vmm: VM, vCPUs, boot, UART, exit loop ---
def vmm_targets(b):
    b.library("vmm", ["kvm/host.c", "kvm/uart.c", "kvm/boot.c",
                      "kvm/vcpu.c", "kvm/run.c", "kvm/vm.c"])
    deps = ["vmm", "common"]
    b.program("vmpool-vm", ["kvm/vmpool_vm.c"], deps=deps)
    for name in ("kvm_host_test", "kvm_boot_test", "kvm_uart_test"):
        b.test(name, ["tests/%s.c" % name, "tests/kvm_elf.c"], deps=deps)
# --- end vmm ---


def targets(b):
    virtio_targets(b)
    vmm_targets(b)
