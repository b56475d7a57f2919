#!/bin/sh
# Build CPython from the orig tarball the Dockerfile's python-source stage
# unpacked in /build, install it to /opt/python, and check what it is.
#
#   build-python.sh ft    the free-threaded build (--disable-gil): GIL off
#   build-python.sh gil   the control build: the same source, flags and make,
#                         without --disable-gil: GIL on
#
# Both builds share everything else, so that the benchmark can tell what
# free-threading costs from what the build costs (no PGO/LTO, no Debian
# patches) against Debian's python3 (docs/free-threading.md). Their
# sysconfig CONFIG_ARGS differ by --disable-gil alone (the tests check it).
# /opt/python/bin/python: the interpreter either way (python3.13t, python3.13).
set -eu

case "${1:-}" in
ft) gil_flag=--disable-gil suffix=t gil_enabled=False ;;
gil) gil_flag='' suffix='' gil_enabled=True ;;
*)
    echo "usage: $0 ft|gil" >&2
    exit 2
    ;;
esac

# the lowest CPU priority: the test suite builds the images while its native
# tests run (tests/integration/conftest.py), and their timings must not wait
# for a compiler; alone on a machine the build takes as long as ever
renice -n 19 -p $$ >/dev/null

cd /build/Python-*
# --enable-shared: a libpython an embedding server (mod_wsgi) links; the rpath
# lets the interpreter find it without LD_LIBRARY_PATH.
# --disable-test-modules: neither build nor install CPython's own test suite
# (Lib/test, the _test* extensions): no image runs it, and byte-compiling it
# three times over was a good part of `make install` (default: built and
# installed). https://docs.python.org/3.13/using/configure.html#cmdoption-disable-test-modules
# $gil_flag unquoted on purpose: no argument at all for the GIL build
# shellcheck disable=SC2086
./configure --prefix=/opt/python $gil_flag --enable-shared --disable-test-modules \
    LDFLAGS="-Wl,-rpath,/opt/python/lib" >/dev/null
make -j"$(nproc)" >/dev/null
make install >/dev/null
rm -rf /opt/python/lib/python*/idlelib \
    /opt/python/lib/python*/tkinter /opt/python/lib/python*/turtledemo
# Python-3.13.5 -> 3.13
version=$(basename "$PWD" | sed 's/^Python-\([0-9]*\.[0-9]*\).*/\1/')
ln -s "python${version}${suffix}" /opt/python/bin/python
/opt/python/bin/python -c "
import sys, sysconfig
assert sys._is_gil_enabled() is $gil_enabled, sys._is_gil_enabled()
print(sys.version, sysconfig.get_config_var('CONFIG_ARGS'))
"
