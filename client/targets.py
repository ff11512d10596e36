# client/: libvmpool (static, shared, pkg-config) and the vmpool CLI.
import os
import sys

LIB_SRCS = ["client/pool.c", "client/lease.c", "client/ops.c",
            "client/keep.c"]
# libvmpool carries the codec it is built on, so users link one library.
BUNDLED = ["proto/proto.c", "proto/msg.c", "proto/reader.c",
           "proto/client.c", "common/util.c"]
HEADERS = ["client/vmpool.h", "client/internal.h", "proto/proto.h",
           "proto/client.h", "proto/tenant.h", "common/util.h"]
CLI_SRCS = ["client/cli.c", "client/cli_run.c", "client/cli_embed.c",
            "client/cli_cp.c", "client/cli_shell.c", "client/cli_stats.c"]


def shared_lib(b, srcs):
    """libvmpool.so from -fPIC objects, exporting only the vmpool_ API."""
    so = b.out("lib/libvmpool.so")
    b.custom([so], srcs,
             "$cc $cflags -fPIC -fvisibility=hidden -shared "
             "-Wl,-soname,libvmpool.so -o $out $in $ldflags",
             "SO $out", implicit=HEADERS)


def pkg_config(b):
    top = os.path.abspath(b.top)
    pc = b.out("lib/pkgconfig/vmpool.pc")
    b.custom([pc], ["client/vmpool.pc.in"],
             "sed -e 's|@LIBDIR@|%s|' -e 's|@INCLUDEDIR@|%s|' "
             "-e 's|@VERSION@|%s|' $in > $out" % (
                 os.path.join(top, b.builddir, "lib"),
                 os.path.join(top, "client"),
                 getattr(sys.modules["__main__"], "VERSION", "0")),
             "PC $out", implicit=["configure.py"])


def targets(b):
    srcs = LIB_SRCS + BUNDLED
    b.library("vmpool", srcs)
    shared_lib(b, srcs)
    pkg_config(b)
    b.program("vmpool", CLI_SRCS, deps=["vmpool", "vmm", "common"])

    image = b.out("guest/initramfs.cpio")
    b.test("client_test", ["tests/client_test.c"],
           deps=["vmpool", "ns", "proto", "common"], inputs=[image])
    e2e_targets(b)


def e2e_targets(b):
    """End-to-end suites: a real vmpoold with ns workers, via libvmpool."""
    inputs = [b.out("bin/vmpoold"), b.out("bin/vmpool-worker"),
              b.out("bin/vmpool"), b.out("guest/initramfs.cpio")]
    helpers = ["tests/e2e_helpers.c", "tests/supervisor_helpers.c"]
    deps = ["vmpool", "shm", "proto", "vmm", "common"]
    for name in ("e2e_pool_test", "e2e_tenants_test", "e2e_cli_test"):
        if os.path.exists(os.path.join(b.top, "tests", name + ".c")):
            b.test(name, ["tests/%s.c" % name] + helpers, deps=deps,
                   inputs=inputs)
