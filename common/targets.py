# Shared helpers: logging, full I/O, clocks, number parsing.
def targets(b):
    b.library("common", ["common/log.c", "common/util.c"], static_too=True)
