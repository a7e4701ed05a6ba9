#!/usr/bin/env bash
# A short iteration on a GPU host: build, run the gpu_kernels tests matching a gtest filter and
# the kernel benchmarks matching a suite filter. scripts/gpu_session.sh is the full run.
#
#   scripts/gpu_quick.sh GTEST_FILTER BENCH_FILTER
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
[[ -d .deps ]] && eval "$(scripts/offline_deps.sh .deps)"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release >"$OUT/build.log" 2>&1 &&
  cmake --build build-gpu -j "$(nproc)" >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
grep -E "spill|serializ" "$OUT/build.log" | head
./build-gpu/tests/gpu/test_gpu_kernels --gtest_filter="$1" >"$OUT/tests.log" 2>&1
grep -E "^\[  (PASSED|FAILED)|Failure|rel L2" "$OUT/tests.log" | head -30
./build-gpu/tokamak bench kernels --filter "$2" 2>&1 | tee "$OUT/bench.txt"
