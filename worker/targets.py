# The worker: one VM (or ns sandbox) for its whole life.
def targets(b):
    b.library("ns", ["worker/cpio.c", "worker/ns.c", "worker/ns_limits.c"])

    src = '-DVMPOOL_SRCDIR=\\"%s\\"' % b.top
    image = b.out("guest/initramfs.cpio")
    b.test("image_test", ["tests/image_test.c"], deps=["ns", "common"],
           cflags=[src], inputs=[image])
    b.test("ns_test", ["tests/ns_test.c"], deps=["ns", "proto", "common"],
           inputs=[image])
    worker_targets(b, image)


# --- worker: vmpool-worker, its backends and relay ---
def worker_targets(b, image):
    b.library("relay", ["worker/relay.c", "worker/relay_queue.c"])
    b.library("backend", ["worker/backend.c", "worker/backend_ns.c",
                          "worker/backend_kvm.c"])
    deps = ["backend", "relay", "ns", "vmm", "virtio", "ioloop", "shm",
            "proto", "common"]
    worker = b.program("vmpool-worker", [
        "worker/worker_main.c", "worker/worker_args.c",
        "worker/worker_io.c", "worker/worker_lease.c",
        "worker/worker_watchdog.c"],
        deps=deps, libs=["uring"])
    b.test("worker_relay_test", ["tests/worker_relay_test.c"],
           deps=["relay", "proto", "common"])

    # Guests that break the protocol: busybox scripts as /init.
    images = [image, worker]
    for name in ("junk", "mute"):
        init = "tests/worker_%s_init.sh" % name
        cpio = b.out("tests/worker_%s.cpio" % name)
        b.custom([cpio], [init],
                 "python3 guest/mkinitramfs.py --init $in "
                 "--busybox /bin/busybox -o $out",
                 "INITRAMFS $out",
                 implicit=["guest/mkinitramfs.py", "/bin/busybox"])
        images.append(cpio)
    harness = ["tests/worker_harness.c", "tests/shm_helpers.c"]
    b.test("worker_test", ["tests/worker_test.c"] + harness,
           deps=["shm", "proto", "common"], inputs=images)
    b.test("worker_kvm_test", ["tests/worker_kvm_test.c"] + harness,
           deps=["shm", "proto", "common"], where="kvm",
           inputs=[image, worker, b.out("guest/vmlinux")])
# --- end worker ---
