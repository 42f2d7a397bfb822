#!/usr/bin/env bash
# Build a local Debian bookworm base image from Debian packages with mmdebstrap (no image can be pulled here).
# Usage: scripts/build-base-image.sh IMAGE[:TAG] PACKAGES [systemd]
#   scripts/build-base-image.sh localhost/ailab-debian:bookworm "python3,ca-certificates"
#   scripts/build-base-image.sh localhost/debian-systemd:bookworm "python3,python3-apt,systemd,systemd-sysv,dbus,sudo,ca-certificates,iproute2" systemd
# Does nothing when the image exists (set FORCE=1 to rebuild).
set -euo pipefail
image=${1:?image name}; packages=${2:?comma-separated packages}; mode=${3:-plain}
if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then
  echo "base image $image exists"; exit 0
fi
changes=()
if [ "$mode" = systemd ]; then
  changes=(--change 'CMD ["/lib/systemd/systemd"]' --change 'STOPSIGNAL SIGRTMIN+3')
else
  changes=(--change 'CMD ["/bin/bash"]')
fi
echo "building base image $image from Debian packages ($packages)"
mmdebstrap --quiet --variant=minbase --include="$packages" bookworm - \
  | podman import "${changes[@]}" - "$image"
