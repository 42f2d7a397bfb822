# Sourced by the one-call GPU suites (cuda/gpu_suite.sh, workloads/engines/gpu_suite.sh) on a lent GPU machine:
# NVLink multicast off, $OUT made, the carried bare clone standing in for .git (so the runner's provenance records
# the real commit and whether the tree differs from it), and the carried pure-Python wheels (pydantic is not in the
# GPU image) installed under /tmp/pydeps and put on PYTHONPATH.
# Usage: GIT_TGZ=.lab/git/repo.tgz WHEELS=.lab/wheels source scripts/device-prelude.sh
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/ailab-out}
mkdir -p "$OUT"
if [ -f "${GIT_TGZ:-.lab/git/repo.tgz}" ]; then
  mkdir -p /tmp/gitmeta && tar xzf "${GIT_TGZ:-.lab/git/repo.tgz}" -C /tmp/gitmeta
  export GIT_DIR=/tmp/gitmeta/repo.git GIT_WORK_TREE=$PWD
  git config --global --add safe.directory '*' 2>/dev/null
  git read-tree HEAD && git update-index -q --refresh >/dev/null 2>&1
fi
if ! python3 -c "import pydantic" 2>/dev/null && [ ! -d /tmp/pydeps/pydantic ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/pydeps \
    "${WHEELS:-.lab/wheels}"/*.whl >/dev/null 2>&1 || echo "wheel install failed"
fi
export PYTHONPATH=/tmp/pydeps:$PWD
