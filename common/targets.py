# Shared helpers: logging, full I/O, clocks, number parsing; the io_uring
# event loop.
def targets(b):
    b.library("common", ["common/log.c", "common/spin.c", "common/util.c"],
              static_too=True)
    b.library("ioloop", ["common/ioloop.c"])
    b.test("ioloop_test", ["tests/ioloop_test.c"], deps=["ioloop", "common"],
           libs=["uring"])
