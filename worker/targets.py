# The worker: one VM (or ns sandbox) for its whole life.
def targets(b):
    b.library("ns", ["worker/cpio.c", "worker/ns.c", "worker/ns_limits.c"])

    src = '-DVMPOOL_SRCDIR=\\"%s\\"' % b.top
    image = b.out("guest/initramfs.cpio")
    b.test("image_test", ["tests/image_test.c"], deps=["ns", "common"],
           cflags=[src], inputs=[image])
    b.test("ns_test", ["tests/ns_test.c"], deps=["ns", "proto", "common"],
           inputs=[image])
