#!/usr/bin/env bash
# Install the system packages the lab runs for real (Prometheus, Alertmanager, Redis, podman) when missing,
# and configure podman for this kind of sandbox. Idempotent; safe to run on every `make`.
set -euo pipefail

# binary -> Debian/Ubuntu package
declare -A PKG=(
  [prometheus]=prometheus [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager [amtool]=prometheus-alertmanager
  [redis-server]=redis-server
  [podman]=podman [runc]=runc [mmdebstrap]=mmdebstrap
  [cmake]=cmake [ninja]=ninja-build [g++]=g++ [git]=git
  [dot]=graphviz [haproxy]=haproxy
  [victoria-metrics]=victoria-metrics [syslog-ng]=syslog-ng-core
  [chromium]=chromium  # lab site's browser test (driven over the DevTools protocol: no chromium-driver)
)
missing=()
for bin in "${!PKG[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${PKG[$bin]}")
done
# uidmap/slirp4netns/fuse-overlayfs let podman run on more kernels; nice to have, not probed by binary.
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: as root run: apt-get install -y --no-install-recommends ${missing[*]} uidmap slirp4netns fuse-overlayfs" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" uidmap slirp4netns fuse-overlayfs
fi

# podman in this sandbox: no CAP_SYS_RESOURCE (default ulimits must fit) and crun rejects its cgroups.
conf=/etc/containers/containers.conf
if [ "$(id -u)" -eq 0 ] && ! grep -q 'ailab' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  if [ -f "$conf" ]; then cp "$conf" "$conf.ailab-backup"; fi
  cat > "$conf" <<'CONF'
# written by ai-infra-lab scripts/setup-system.sh (podman settings for unprivileged sandboxes)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
fi
