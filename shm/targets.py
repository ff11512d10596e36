# The shared-memory pool core: layout, robust lock, policy, fault points.
def targets(b):
    b.library("shm", ["shm/shm.c", "shm/slot.c", "shm/pool.c",
                      "shm/repair.c", "shm/check.c", "shm/fault.c"])
    b.test("shm_test", ["tests/shm_pool_test.c", "tests/shm_crash_test.c",
                        "tests/shm_helpers.c"],
           deps=["shm", "common"])
