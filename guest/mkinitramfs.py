#!/usr/bin/env python3
"""Write the guest initramfs: the agent as /init plus a static busybox.

The archive is cpio "newc", uncompressed, and reproducible: the same
inputs give the same bytes (entries sorted, inode numbers assigned in
that order, owner 0:0, one fixed mtime: SOURCE_DATE_EPOCH or 0). Device
nodes are recorded in the archive, so writing it needs no privilege.
"""

import argparse
import os
import stat
import subprocess
import sys

DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "proc": 0o555,
    "sys": 0o555, "tmp": 0o1777, "run": 0o755, "work": 0o755,
    "root": 0o700, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755,
    "usr/sbin": 0o755,
}

# name: (mode, major, minor)
NODES = {
    "dev/console": (stat.S_IFCHR | 0o600, 5, 1),
    "dev/null": (stat.S_IFCHR | 0o666, 1, 3),
}

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/:/bin/false\n")
GROUP = "root:x:0:\nnogroup:x:65534:\n"

# Applets that would shadow something the image places itself.
SKIP_APPLETS = {"linuxrc", "init"}


class Entry:
    def __init__(self, name, mode, data=b"", rdev=(0, 0)):
        self.name = name
        self.mode = mode
        self.data = data
        self.rdev = rdev


def applet_paths(busybox):
    """Where busybox installs each applet, e.g. "usr/bin/env"."""
    out = subprocess.run([busybox, "--list-full"], check=True,
                         capture_output=True, text=True).stdout
    paths = []
    for line in out.split():
        line = line.strip("/")
        if line and os.path.basename(line) not in SKIP_APPLETS:
            paths.append(line)
    return paths


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def image_entries(init, busybox):
    entries = {}
    for name, mode in DIRS.items():
        entries[name] = Entry(name, stat.S_IFDIR | mode)
    for name, (mode, major, minor) in NODES.items():
        entries[name] = Entry(name, mode, rdev=(major, minor))
    entries["init"] = Entry("init", stat.S_IFREG | 0o755, read_file(init))
    entries["bin/busybox"] = Entry("bin/busybox", stat.S_IFREG | 0o755,
                                   read_file(busybox))
    entries["etc/passwd"] = Entry("etc/passwd", stat.S_IFREG | 0o644,
                                  PASSWD.encode())
    entries["etc/group"] = Entry("etc/group", stat.S_IFREG | 0o644,
                                 GROUP.encode())
    for path in applet_paths(busybox):
        if path not in entries:
            entries[path] = Entry(path, stat.S_IFLNK | 0o777,
                                  b"/bin/busybox")
    return [entries[k] for k in sorted(entries)]


def pad4(n):
    return (4 - n % 4) % 4


def newc_record(ino, e, mtime):
    name = e.name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(e.mode) else 1
    fields = [ino, e.mode, 0, 0, nlink, mtime, len(e.data), 0, 0,
              e.rdev[0], e.rdev[1], len(name), 0]
    head = b"070701" + b"".join(b"%08x" % v for v in fields)
    out = head + name + b"\0" * pad4(len(head) + len(name))
    return out + e.data + b"\0" * pad4(len(e.data))


def write_archive(path, entries, mtime):
    blob = bytearray()
    for ino, e in enumerate(entries, start=1):
        blob += newc_record(ino, e, mtime)
    blob += newc_record(0, Entry("TRAILER!!!", 0), 0)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", required=True, help="the agent binary")
    ap.add_argument("--busybox", default="/bin/busybox",
                    help="a static busybox (default: /bin/busybox)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    try:
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        sys.exit("mkinitramfs: SOURCE_DATE_EPOCH is not a number")
    entries = image_entries(args.init, args.busybox)
    write_archive(args.output, entries, mtime)


if __name__ == "__main__":
    main()
