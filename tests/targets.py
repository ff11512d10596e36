# Test suites that belong to no single module.
def targets(b):
    b.test("util_test", ["tests/util_test.c"], deps=["common"])
