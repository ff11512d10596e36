# The guest: its kernel, the agent and the initramfs.


def kernel_targets(b):
    """vmlinux from linux-source-6.1 and guest/kernel/tiny.config; slow,
    so built once per input key into the cache and copied from there."""
    script = "guest/kernel/build.sh"
    b.custom([b.out("guest/vmlinux")], ["guest/kernel/tiny.config"],
             "%s %s $out" % (script, b.cache),
             "KERNEL $out", pool="console",
             implicit=[script, "/usr/src/linux-source-6.1.tar.xz"])


def targets(b):
    kernel_targets(b)
