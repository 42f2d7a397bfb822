#!/usr/bin/env bash
# One device call for the LLM area (issue 18): the engine's GPU test, then the selected experiments through the lab's
# own runner on CUDA (results carry provenance: the carried bare clone stands in for .git), packed into $OUT.
# Usage (GPU machine, repo root): OUT=/tmp/out SEL=d78.e1,d78.e2 [BUDGET_S=520] [KILL_AFTER_S=40] [QUICK=1] \
#   [TESTS=1] workloads/llm/gpu_suite.sh    carry: .lab/engwheels (pydantic wheels), .lab/llmgit (repo.tgz, bare clone)
# The call needs BUDGET_S + KILL_AFTER_S + ~20 s (environment, packing) of the device command's limit.
set -u
SEL=${SEL:?name the experiments, e.g. SEL=d78.e1}
GIT_TGZ=.lab/llmgit/repo.tgz WHEELS=.lab/engwheels source scripts/device-prelude.sh
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm,clocks.mem --format=csv
  python3 -c "import torch, transformers, triton, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, transformers.__version__, triton.__version__)"
  git rev-parse HEAD 2>&1; git status --porcelain 2>/dev/null | head -5
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
touch /tmp/suite-start
if [ -n "${TESTS:-}" ]; then
  timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu/test_llm_engine_gpu.py > "$OUT/gpu_tests.log" 2>&1
  echo "gpu tests rc=$?"; tail -3 "$OUT/gpu_tests.log"
fi
args=(); [ -n "${QUICK:-}" ] && args+=(--quick)
# BUDGET_S bounds the experiments, each run in a process of its own (a crash loses that one only); each budgeted
# runner gets its binding's cuda_budget_s capped by what is left and stores what it measured when that runs out. At
# BUDGET_S `timeout` sends SIGTERM (the running experiment stops at its next check and stores its rows), and SIGKILL
# only KILL_AFTER_S later. Progress lines, timestamped: $OUT/run.log.
timeout -k "${KILL_AFTER_S:-40}" "${BUDGET_S:-520}" \
  python3 -u -m tools.gpucall.llm_run "$SEL" --budget-s "${BUDGET_S:-520}" "${args[@]}" > "$OUT/run.log" 2>&1
echo "runner rc=$?"
find reports/results -name '*.json' -newer /tmp/suite-start > /tmp/new.txt
find .lab/attempts -name '*.json' -newer /tmp/suite-start >> /tmp/new.txt 2>/dev/null
find .lab/logs -name '*.log' -newer /tmp/suite-start >> /tmp/new.txt 2>/dev/null
tar czf "$OUT/results.tgz" -T /tmp/new.txt
grep -E "\+ *[0-9.]+s (d[0-9]+\.e[0-9]+ (ok|skipped|failed)|call)" "$OUT/run.log" | cut -c1-400
tail -25 "$OUT/run.log"
