# The guest: its kernel, the agent and the initramfs.


def kernel_targets(b):
    """vmlinux from linux-source-6.1 and guest/kernel/tiny.config; slow,
    so built once per input key into the cache and copied from there."""
    script = "guest/kernel/build.sh"
    b.custom([b.out("guest/vmlinux")], ["guest/kernel/tiny.config"],
             "%s %s $out" % (script, b.cache),
             "KERNEL $out", pool="console",
             implicit=[script, "/usr/src/linux-source-6.1.tar.xz"])


# --- initramfs (guest image) ---
def initramfs_targets(b):
    """The guest image: the agent as /init plus Debian's static busybox,
    reproducible (same inputs, same bytes)."""
    script = "guest/mkinitramfs.py"
    agent = b.out("bin/vmpool-agent")
    b.custom([b.out("guest/initramfs.cpio")], [agent],
             "python3 %s --init %s --busybox /bin/busybox -o $out"
             % (script, agent),
             "INITRAMFS $out", implicit=[script, "/bin/busybox"])
# --- end initramfs ---


# --- agent ---
def agent_targets(b):
    """The agent (PID 1 of every guest), static, and its tests."""
    agent = b.program("vmpool-agent", [
        "guest/agent_main.c", "guest/agent_loop.c", "guest/agent_exec.c",
        "guest/agent_files.c", "guest/agent_path.c", "guest/agent_ops.c",
    ], deps=["proto", "common"], static=True)
    b.test("agent_test", ["tests/agent_test.c", "tests/agent_fuzz.c",
                          "tests/agent_harness.c"],
           deps=["proto", "common"], inputs=[agent])
# --- end agent ---


def targets(b):
    kernel_targets(b)
    agent_targets(b)
    initramfs_targets(b)
