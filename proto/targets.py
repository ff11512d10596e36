# The agent protocol: codec, messages, frame reader and a blocking client.
def targets(b):
    b.library("proto", ["proto/proto.c", "proto/msg.c", "proto/reader.c",
                        "proto/client.c"], static_too=True)
    b.test("proto_test", ["tests/proto_test.c"], deps=["proto", "common"])
