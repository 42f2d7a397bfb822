#!/usr/bin/env bash
# Run gpu_hosts.yml for real on the pre-provisioned GPU host this runs on (connection local, root), twice, then
# check the host with testinfra; everything lands in OUT_DIR for record.py. Never touches MIG, clocks, power,
# persistence or compute mode, and never loads, unloads or installs a driver (the inventory verifies only).
#   ansible/host-validation/run.sh OUT_DIR [WHEEL_DIR]     from the repository root
# WHEEL_DIR: ansible-core, pytest-testinfra and their missing dependencies as wheels, for hosts without them.
# Files written (eight at most, for the device tool): host.json, verify-all.log, run1.log, run2.log,
# testinfra.log, testinfra.xml, lab_validate.json, gpu_topology.json.
set -uo pipefail
out=${1:?usage: run.sh OUT_DIR [WHEEL_DIR]}; wheels=${2:-}
mkdir -p "$out"
py=${AILAB_PYTHON:-python3}
if [ -n "$wheels" ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/ailab-site \
    "$wheels"/*.whl || exit 1
  export PYTHONPATH=/tmp/ailab-site${PYTHONPATH:+:$PYTHONPATH}
fi
export LANG=C.UTF-8 LC_ALL=C.UTF-8 ANSIBLE_CONFIG=$PWD/ansible/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 PYTHONUNBUFFERED=1
started=$(date -u +%FT%TZ)
playbook() { "$py" -m ansible.cli.playbook -i inventories/preprovisioned -e ansible_become=false "$@" ansible/gpu_hosts.yml; }
# AILAB_PLAY_ARGS: extra ansible-playbook arguments for runs 1 and 2 (e.g. to try this script in a container).
read -r -a extra <<<"${AILAB_PLAY_ARGS:-}"

# 0. What the full lab would miss here: airgap verify-only with every component (stops in the preflight).
playbook -e '{"lab_components": ["node_exporter", "nvidia_driver", "cuda_toolkit", "nvidia_container_toolkit",
  "tensorrt", "dcgm", "gpu_sharing", "gpu_topology", "k3s", "lab_validate"]}' >"$out/verify-all.log" 2>&1
echo "verify-all rc=$?" | tee -a "$out/verify-all.log"
# 1, 2. The host's own profile (inventories/preprovisioned), twice: the second run must change nothing.
playbook "${extra[@]}" >"$out/run1.log" 2>&1; rc1=$?; echo "run1 rc=$rc1" | tee -a "$out/run1.log"
playbook "${extra[@]}" >"$out/run2.log" 2>&1; rc2=$?; echo "run2 rc=$rc2" | tee -a "$out/run2.log"
# 3. testinfra on the host itself; the host profile (lab_validate's report) says what it can pass.
"$py" -m pytest -p no:cacheprovider -rA --hosts=local:// --junitxml="$out/testinfra.xml" tests/infra \
  >"$out/testinfra.log" 2>&1
rct=$?; echo "testinfra rc=$rct" | tee -a "$out/testinfra.log"
cp /var/lib/ailab/lab_validate.json /var/lib/ailab/gpu_topology.json "$out/" 2>/dev/null
ended=$(date -u +%FT%TZ)

"$py" ansible/host-validation/host_facts.py "$out/host.json" "$started" "$ended" "$rc1" "$rc2" "$rct"
echo "host validation files in $out"
