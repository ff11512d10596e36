# The worker: one VM (or ns sandbox) for its whole life.
def targets(b):
    b.library("ns", ["worker/cpio.c", "worker/ns.c", "worker/ns_limits.c"])
