#!/usr/bin/env bash
# The loader's threads under ThreadSanitizer: compiles the data sources (loader, data sets, readers,
# transform, npy, image decoding) and tests/tsan_loader_driver.c with -fsanitize=thread into the
# build tree, and runs it: loaders over memory and folders (four decoding threads, broken images)
# taken across epochs, restored while running, and stopped mid-epoch; any data race or a close
# that does not join fails the test. Skipped (77) where the compiler cannot build and run TSan.
set -uo pipefail
src="${GAN_SOURCE_DIR:?}"
work="${GAN_BINARY_DIR:?}/test-tmp/script_loader_tsan"
rm -rf "$work"; mkdir -p "$work"
cc="${CC:-cc}"

printf 'int main(void) { return 0; }\n' > "$work/probe.c"
if ! "$cc" -fsanitize=thread "$work/probe.c" -o "$work/probe" 2>/dev/null || ! "$work/probe" 2>/dev/null; then
  echo "$cc cannot build or run ThreadSanitizer programs here: skipped"
  exit 77
fi

sources=(
  "$src"/src/data/loader.c "$src"/src/data/dataset.c "$src"/src/data/resample.c "$src"/src/data/idx.c
  "$src"/src/data/cifar.c "$src"/src/data/folder.c "$src"/src/io/npy.c "$src"/src/io/image.c "$src"/src/error.c
  "$src"/src/io/file_atomic.c
  "$src"/tests/tsan_loader_driver.c
)
if ! "$cc" -std=c11 -fsanitize=thread -g -O1 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
     -I"$src/include" -I"$src/src" "${sources[@]}" -o "$work/loader_tsan" -ljpeg -lpng -lz -lpthread -lm \
     2> "$work/build.log"; then
  echo "FAIL: the TSan build of the loader failed:"; cat "$work/build.log"
  exit 1
fi

TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" "$work/loader_tsan" "$work"
status=$?
if [ "$status" != 0 ]; then
  echo "FAIL: the loader under ThreadSanitizer exited $status (66: a data race was reported above)"
  exit 1
fi
