#!/usr/bin/env bash
# Build the "pre-provisioned GPU host" image of the Molecule scenario preprovisioned, from Debian packages:
# no systemd (like the lent GPU machines and many containers), the packages the lab roles need already
# installed (numactl, prometheus-node-exporter, kmod), and /srv/ailab-debs, a directory of
# .deb files with a Packages index (what dpkg-scanpackages writes, made with dpkg-deb alone), for the air-gapped
# install from a package directory.
# Usage: tests/molecule/preprovisioned-image.sh [IMAGE]   (does nothing when the image exists; FORCE=1 rebuilds)
set -euo pipefail
image=${1:-localhost/ailab-preprovisioned:bookworm}
if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then
  echo "image $image exists"; exit 0
fi
echo "building $image from Debian packages"
mmdebstrap --quiet --variant=minbase \
  --include=python3,python3-apt,numactl,prometheus-node-exporter,kmod,iproute2 \
  --customize-hook='mkdir -p "$1/srv/ailab-debs"' \
  --customize-hook='chroot "$1" sh -c "cd /srv/ailab-debs && apt-get -q -o APT::Sandbox::User=root download numactl libnuma1"' \
  --customize-hook='cd "$1/srv/ailab-debs" && for f in *.deb; do dpkg-deb -f "$f"; echo "Filename: ./$f";
    echo "Size: $(stat -c %s "$f")"; echo "SHA256: $(sha256sum "$f" | cut -d " " -f 1)"; echo; done > Packages' \
  bookworm - \
  | podman import --change 'CMD ["/bin/sleep", "infinity"]' - "$image"
