#!/bin/sh
# Test guest for the worker: starts, but never says HELLO.
exec sleep 1000
