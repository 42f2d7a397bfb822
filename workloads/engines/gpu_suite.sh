#!/usr/bin/env bash
# One device call for the engine and GPU-sharing experiments: install the carried pure-Python wheels (pydantic is
# not in the GPU image), stand in the carried bare clone for provenance, run the selected experiments through the
# lab's own runner (results carry provenance), and pack the result files this run wrote into $OUT.
# Each experiment runs in its own Python process (tools/gpucall/engines_suite.py: faulthandler on, native_backtrace.c
# preloaded, limited by what is left of BUDGET_S): a native crash in one (d29.e3's SIGSEGV once took d33.e4 and
# d53.e3 with it) is reported in run.log with its signal, Python stack and C-level stack; the next one still runs.
# Usage (GPU machine, repo root): OUT=/tmp/out SEL=d04,d12 [BUDGET_S=400] [QUICK=1] [DIAG=1 [DIAG_S=330]
#   [DIAG_VARIANTS=plain,...] [DIAG_PARALLEL=1] [FIX_ONLY=1]] workloads/engines/gpu_suite.sh
# DIAG=1 first runs tools/gpucall/aoti_diag.py (d29.e3's load crash: one small package loaded up to ten ways,
# DIAG_S=330 s at most) into $OUT/aoti, outside BUDGET_S.
# Carry: .lab/engwheels (wheels) and .lab/enggit (repo.tgz, a bare clone of HEAD).
set -u
SEL=${SEL:?name the experiments, e.g. SEL=d04,d12}
GIT_TGZ=.lab/enggit/repo.tgz WHEELS=.lab/engwheels source scripts/device-prelude.sh
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,compute_mode,mig.mode.current --format=csv
  nproc; ls -d /sys/devices/system/node/node* 2>/dev/null | wc -l
  python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda)"
  git rev-parse HEAD 2>&1; git status --porcelain 2>/dev/null | head -5
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
touch /tmp/suite-start
if [ -n "${DIAG:-}" ]; then
  # each child (the build, then one load per variant) is bounded by 150 s: a cold build took over 60 s on the H200
  timeout "${DIAG_S:-330}" python3 -m tools.gpucall.aoti_diag --out "$OUT/aoti" --device cuda --timeout-s 150 \
    --variants "${DIAG_VARIANTS:-}" --parallel "${DIAG_PARALLEL:-1}" > "$OUT/aoti.log" 2>&1
  echo "aoti_diag rc=$?"; cat "$OUT/aoti.log" | tail -8
  rm -rf "$OUT/aoti/pk" "$OUT/aoti/extracted"  # the package itself does not come back, its description does
  # FIX_ONLY=1: run SEL only if the diagnosis found the workaround (the plain load crashed and the load with the
  # compiler's libstdc++ preloaded ran), and run it with that preload (the results' notes name it)
  if [ -n "${FIX_ONLY:-}" ]; then
    lib=$(python3 -m tools.gpucall.aoti_diag --fix-from "$OUT/aoti/aoti_diag.json")
    [ -n "$lib" ] || { echo "no workaround found: $SEL not run"; exit 0; }
    export LD_PRELOAD=$lib; echo "workaround: LD_PRELOAD=$lib"
  fi
fi
args=(); [ -n "${QUICK:-}" ] && args+=(--quick)
# one Python process per experiment (tools/gpucall/engines_suite.py); the outer timeout only guards the loop itself
timeout $((${BUDGET_S:-400} + 30)) python3 -m tools.gpucall.engines_suite "$SEL" --budget "${BUDGET_S:-400}" "${args[@]}" \
  > "$OUT/run.log" 2>&1
echo "suite rc=$?"
find reports/results -name '*.json' -newer /tmp/suite-start > /tmp/new.txt
find .lab/attempts -name '*.json' -newer /tmp/suite-start >> /tmp/new.txt 2>/dev/null
tar czf "$OUT/results.tgz" -T /tmp/new.txt
grep -E "^d[0-9]+\.e[0-9]+ " "$OUT/run.log" | cut -c1-300
tail -5 "$OUT/run.log"
