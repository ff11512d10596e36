"""Write initramfs archives in the cpio "newc" format the kernel unpacks.

Archives may be concatenated: the kernel unpacks each in turn, so a
cached base archive plus a small per-run one make a whole initramfs.
"""

import os
import stat

MAGIC = b"070701"


def _pad4(n):
    return b"\0" * ((4 - n % 4) % 4)


def _entry(ino, name, mode, data=b"", rdev=(0, 0)):
    name_b = name.lstrip("/").encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
              len(name_b), 0]
    head = MAGIC + b"".join(b"%08x" % f for f in fields) + name_b
    return head + _pad4(len(head)) + data + _pad4(len(data))


class Archive:
    """An in-memory newc archive: add entries, then take bytes()."""

    def __init__(self):
        self.parts = []

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        self.parts.append(_entry(len(self.parts) + 1, name, mode, data,
                                 rdev))

    def dir(self, name, mode=0o755):
        self._add(name, stat.S_IFDIR | mode)

    def file(self, name, data, mode=0o644):
        self._add(name, stat.S_IFREG | mode, data)

    def file_from(self, name, path):
        with open(path, "rb") as f:
            data = f.read()
        self.file(name, data, stat.S_IMODE(os.stat(path).st_mode))

    def chardev(self, name, major, minor, mode=0o600):
        self._add(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def bytes(self):
        return b"".join(self.parts) + _entry(0, "TRAILER!!!", 0)
