#!/bin/sh
# Test guest for the worker: says HELLO, then answers a request with junk.
# HELLO: 21-byte payload (version 1, caps 1, "junk") under id 0.
printf '\025\000\000\000\001\000\000\000\000\000\000\000' >&3
printf '\001\000\000\000\001\000\000\000\000\000\000\000' >&3
printf '\004\000\000\000junk\000' >&3
# Take the first request's header, then answer with a frame of an
# unknown type.
head -c 12 <&3 >/dev/null
printf '\000\000\000\000\231\000\000\000\001\000\000\000' >&3
exec sleep 1000
