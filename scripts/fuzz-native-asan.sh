#!/usr/bin/env bash
# The native addon's fuzz pass under AddressSanitizer and UBSan (CI runs it
# after the tests). Builds src/native/*.c with -fsanitize=address,undefined
# into build-asan/ (build/ and the normal addon are untouched), then runs
# test/fuzz/native-asan.ts under node with libasan preloaded and
# TALLYD_NATIVE_ADDON pointing src/native/addon.ts at that build. Exits
# non-zero when the build fails, a check fails, ASan/UBSan report anything, or
# LeakSanitizer finds a leak allocated by the addon itself. (node and V8 leave
# allocations behind at exit by design: LSan reports them, without changing
# the exit status, and only leaks whose allocating frames #1-#4 are in
# src/native/ count.)
#
#   FUZZ_SEED=<n> FUZZ_ROUNDS=<n>   (see test/fuzz/native-asan.ts)
#   CC=<compiler>                   gcc by default (its libasan is preloaded)
set -euo pipefail
cd "$(dirname "$0")/.."

CC="${CC:-gcc}"
out="build-asan"
mkdir -p "$out"
log="$out/fuzz.log"

# Node's headers (node_api.h, uv.h, zlib.h): a system Node has them under <prefix>/include/node; otherwise the copy
# node-gyp downloaded for `npm ci`.
prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
version="$(node -p process.versions.node)"
inc=""
for dir in "$prefix/include/node" "${npm_config_devdir:-$HOME/.cache/node-gyp}/$version/include/node" "$HOME/.node-gyp/$version/include/node"; do
  if [ -f "$dir/node_api.h" ]; then inc="$dir"; break; fi
done
if [ -z "$inc" ]; then
  echo "fuzz-native-asan: Node's headers (node_api.h) not found under $prefix/include/node or node-gyp's cache; npm ci fetches them" >&2
  exit 1
fi

libasan="$("$CC" -print-file-name=libasan.so)"
if [ ! -e "$libasan" ]; then
  echo "fuzz-native-asan: $CC has no libasan.so (install libasan for $CC)" >&2
  exit 1
fi

echo "== building the native addon with -fsanitize=address,undefined into $out/"
"$CC" -shared -fPIC -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Wno-unused-parameter -Werror \
  -DNODE_GYP_MODULE_NAME=tallyd_native -DBUILDING_NODE_EXTENSION -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE \
  -I"$inc" src/native/udp_reader.c src/native/zmq_scan.c src/native/zmq_inflate.c -o "$out/tallyd_native.node"
if ! nm -D "$out/tallyd_native.node" | grep __asan_report >/dev/null; then
  echo "fuzz-native-asan: $out/tallyd_native.node is not instrumented" >&2
  exit 1
fi

export FUZZ_ROUNDS="${FUZZ_ROUNDS:-200}"
echo "== fuzz pass, ${FUZZ_ROUNDS} rounds (libasan preloaded)"
status=0
LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1" \
  LSAN_OPTIONS="exitcode=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87" \
  TALLYD_NATIVE_ADDON="$PWD/$out/tallyd_native.node" \
  node --expose-gc --import tsx test/fuzz/native-asan.ts >"$log" 2>&1 || status=$?
# The pass's own lines; the whole log (with node's and V8's leak reports) stays in $log.
grep '^fuzz-native' "$log" || true
if grep -qE "ERROR: AddressSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" "$log"; then
  grep -v '^fuzz-native' "$log" | sed -n '1,/^SUMMARY/p' | head -n 150 >&2
  echo "fuzz-native-asan: a sanitizer report (above; all of it in $log)" >&2
  [ "$status" -ne 0 ] || status=1
fi
# Leak reports: a block per leak, frame #0 the allocator; ours when one of frames #1-#4 is in src/native/.
ours="$(awk '/^(Direct|Indirect) leak of/ { inb = 1; n = 0; head = $0; next }
  inb && /^ +#[0-9]+ / { n++; if (n >= 2 && n <= 5 && $0 ~ /src\/native\/|tallyd_native\.node/) { print head; inb = 0 } next }
  { inb = 0 }' "$log")"
if [ -n "$ours" ]; then
  printf 'fuzz-native-asan: leaks allocated by the native addon (stacks in %s):\n%s\n' "$log" "$ours" >&2
  [ "$status" -ne 0 ] || status=1
fi
if [ "$status" -ne 0 ]; then
  # What went wrong, without node's leak report that follows it.
  sed '/ERROR: LeakSanitizer/,$d' "$log" | grep -v '^fuzz-native: [a-zA-Z]*:\? [0-9]' | tail -n 80 >&2
  echo "fuzz-native-asan: FAILED (exit $status)" >&2
  exit "$status"
fi
echo "fuzz-native-asan: clean"
