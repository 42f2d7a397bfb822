#!/usr/bin/env bash
# The cuda-kernels image's proof on the GPU machine (issue 22): the binaries copied out of the image on the CPU host
# run next to the GPU machine's own (host) build of the same cuda/ sources, on the same quick cases, alternately and
# repeated; the raw harness output, the machine facts, the source digests of both builds and a cuobjdump -sass
# digest of each binary go to $OUT/image, which workloads/images/compare_builds.py compares on the CPU host.
# Which binaries, cases, repetitions, run order and file names: `python3 -m workloads.images.compare_builds --plan`
# (compare_builds.plan(), the same names its load() reads back), never typed here.
#
# 1. CPU host, repo root: build the image and copy its binaries (and SOURCE, the digest of the sources it compiled)
#    to .lab/imagebin/:      python -m workloads.images.cuda_kernels [--record reports/checks/cuda-kernels-image/build.json]
#    The GPU machine builds the working tree it is given, so build the image from the same tree (the default).
# 2. Device call, repo root there; carry .lab/imagebin (the image's binaries), .lab/git (provenance: the commit) and
#    .lab/wheels (pydantic for the lab's modules, installed by scripts/device-prelude.sh); a carry is 64 MiB in all,
#    and .lab/git only names the commit in env.txt: leave it out if the image's binaries leave no room for it:
#      bash workloads/images/cuda_kernels_gpu_check.sh
#    It builds cuda/ there first, as cuda/gpu_suite.sh does (SKIP_BUILD=1 when build/cuda is already built in the same
#    warm machine), and prints the comparison's summary at the end.
# 3. CPU host, repo root, with the call's files under <files_at>:
#      python -m workloads.images.compare_builds <files_at>/image --json reports/checks/cuda-kernels-image/compare.json \
#        --builds reports/checks/cuda-kernels-image/build.json --docs docs/kernels.md
#    and keep its inputs: copy <files_at>/image/{env.txt,runs.txt,*.jsonl} to reports/checks/cuda-kernels-image/raw/.
#
# Bounded in time: the build by BUILD_LIMIT (s, default 400), each binary run by BIN_LIMIT (default 60; a quick case
# takes seconds), each cuobjdump by SASS_LIMIT (default 60), and no run starts past CHECK_LIMIT s after the start
# (default 560; a device command is limited to 600 s). A run that fails or times out gets an `exit status` line in its
# file, which compare_builds reports as an error. HOST_BIN / IMAGE_BIN: the two builds' directories (default
# build/cuda and .lab/imagebin). The caller's environment reaches both builds alike (e.g. bench_gemm's
# AILAB_SKIP_<family>, to leave out a family that cuda/gpu_suite.sh's smoke runs found hanging).
set -u
cd "$(dirname "$0")/../.." || exit 2 # the repo root: the prelude, the lab's modules and build/cuda are found from there
t0=$(date +%s)
GIT_TGZ=${GIT_TGZ:-.lab/git/repo.tgz} WHEELS=${WHEELS:-.lab/wheels} source scripts/device-prelude.sh
HOST_BIN=${HOST_BIN:-build/cuda} IMAGE_BIN=${IMAGE_BIN:-.lab/imagebin}
BUILD_LIMIT=${BUILD_LIMIT:-400} BIN_LIMIT=${BIN_LIMIT:-60} SASS_LIMIT=${SASS_LIMIT:-60} CHECK_LIMIT=${CHECK_LIMIT:-560}
D="$OUT/image"
mkdir -p "$D"
elapsed() { echo $(($(date +%s) - t0)); }

plan=$(python3 -m workloads.images.compare_builds --plan) || { echo "error: compare_builds --plan failed"; exit 2; }
ENV_FILE="" RUNS_FILE="" SOURCE_FILE="" RUNS=() SASS=() BINS=()
while read -r kind a b c d e; do
  case $kind in
    env) ENV_FILE=$a ;;
    runs) RUNS_FILE=$a ;;
    source) SOURCE_FILE=$a ;;
    run) RUNS+=("$a $b $c $d $e") ;;
    sass) SASS+=("$a") ;;
    *) echo "error: compare_builds --plan line '$kind $a ...': unknown kind (allowed: env runs source run sass)"; exit 2 ;;
  esac
done <<< "$plan"
for r in "${RUNS[@]}"; do
  read -r _ bin _ <<< "$r"
  [[ " ${BINS[*]} " == *" $bin "* ]] || BINS+=("$bin")
done

if [ ! -d "$IMAGE_BIN" ]; then
  echo "error: IMAGE_BIN=$IMAGE_BIN: no such directory (carry .lab/imagebin, made by python -m workloads.images.cuda_kernels)"
  exit 2
fi
IMAGE_BIN=$(cd "$IMAGE_BIN" && pwd)
if [ -z "${SKIP_BUILD:-}" ]; then
  timeout -k 10 "$BUILD_LIMIT" python3 -c "from workloads.kernels.build import build; build()" > "$OUT/image-build.log" 2>&1 ||
    { echo "host build failed or timed out (BUILD_LIMIT=$BUILD_LIMIT s):"; tail -20 "$OUT/image-build.log"; }
  echo "host build: $(elapsed) s"
fi
for bin in "${BINS[@]}"; do
  for f in "$HOST_BIN/$bin" "$IMAGE_BIN/$bin"; do
    [ -f "$f" ] || { echo "error: $f: missing (binaries needed: ${BINS[*]})"; exit 2; }
    [ -x "$f" ] || chmod u+x "$f"
  done
done

# the image's binaries load the cuBLAS this machine has (the image's stays in the image), found from the host build
cublas_dir=""
for bin in "${BINS[@]}"; do
  lib=$(ldd "$HOST_BIN/$bin" 2>/dev/null | awk '/libcublas\.so/ {print $3; exit}')
  [ -n "$lib" ] && { cublas_dir=$(dirname "$lib"); break; }
done
IMAGE_LD="$IMAGE_BIN${cublas_dir:+:$cublas_dir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
{
  echo "date=$(date -u +%FT%TZ)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "gpu=${gpu:-unknown (nvidia-smi gave nothing)}"
  echo "cublas_dir=${cublas_dir:-none found}"
  echo "host_nvcc=$(nvcc --version 2>/dev/null | tail -1)"
  echo "source_host=$(python3 -c 'from pathlib import Path
from workloads.images.compare_builds import source_digest
print(source_digest(Path.cwd()))')"
  echo "source_image=$(head -1 "$IMAGE_BIN/$SOURCE_FILE" 2>/dev/null)"
  for bin in "${BINS[@]}"; do sha256sum "$HOST_BIN/$bin" "$IMAGE_BIN/$bin"; done
  for bin in "${BINS[@]}"; do
    echo "--- ldd image $bin"
    LD_LIBRARY_PATH=$IMAGE_LD ldd "$IMAGE_BIN/$bin" 2>&1
    echo "--- ldd host $bin"
    ldd "$HOST_BIN/$bin" 2>&1
  done
} > "$D/$ENV_FILE"

: > "$D/$RUNS_FILE"
for r in "${RUNS[@]}"; do
  read -r build bin rep kcase file <<< "$r"
  start=$(elapsed) left=$((CHECK_LIMIT - $(elapsed)))
  if [ "$left" -lt 5 ]; then
    echo "$build $bin rep $rep: not run, CHECK_LIMIT=$CHECK_LIMIT s reached at ${start}s" | tee -a "$D/$RUNS_FILE"
    continue
  fi
  limit=$((left < BIN_LIMIT ? left : BIN_LIMIT))
  if [ "$build" = host ]; then
    timeout -k 5 "$limit" "$HOST_BIN/$bin" --quick --case "$kcase" > "$D/$file" 2>&1
  else
    LD_LIBRARY_PATH=$IMAGE_LD timeout -k 5 "$limit" "$IMAGE_BIN/$bin" --quick --case "$kcase" > "$D/$file" 2>&1
  fi
  rc=$?
  [ "$rc" -eq 0 ] || echo "exit status $rc$([ "$rc" -eq 124 ] && echo " (timed out after $limit s)")" >> "$D/$file"
  echo "$build $bin rep $rep: rc=$rc at ${start}s" >> "$D/$RUNS_FILE"
done
cat "$D/$RUNS_FILE"

# machine code of both builds: a digest of `cuobjdump -sass` without the lines naming the source file
# (`identifier = ...`: the builds compiled from different paths); the dumps themselves are not kept
sass_digest() {
  local tmp rc
  tmp=$(mktemp)
  timeout -k 5 "$SASS_LIMIT" cuobjdump -sass "$1" > "$tmp" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then grep -v '^[[:space:]]*identifier' "$tmp" | sha256sum | cut -c1-16; else echo "rc=$rc"; fi
  rm -f "$tmp"
}
for bin in "${SASS[@]}"; do
  if ! command -v cuobjdump > /dev/null; then
    echo "sass_$bin=not compared (no cuobjdump on PATH)"
    continue
  fi
  h=$(sass_digest "$HOST_BIN/$bin") i=$(sass_digest "$IMAGE_BIN/$bin")
  if [[ $h == rc=* || $i == rc=* ]]; then
    echo "sass_$bin=not compared (cuobjdump host $h, image $i)"
  elif [ "$h" = "$i" ]; then
    echo "sass_$bin=identical (host $h, image $i)"
  else
    echo "sass_$bin=differs (host $h, image $i)"
  fi
done >> "$D/$ENV_FILE"
grep '^sass_\|^source_' "$D/$ENV_FILE"

python3 -m workloads.images.compare_builds "$D"
rc=$?
echo "image check: $(elapsed) s, compare_builds rc=$rc (0: MET, 1: NOT MET, 2: bad input)"
