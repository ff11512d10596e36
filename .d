build-asan/obj/tests/util_test.o: tests/util_test.c common/util.h
