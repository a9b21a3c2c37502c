#!/usr/bin/env bash
# Install everything hwprov's demo and tests need on a fresh Debian 12 machine.
# Safe to run again: it installs only what is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

APT_PACKAGES=(
    docker.io busybox-static            # the private engine and the offline test image
    umockdev gir1.2-umockdev-1.0        # the simulated boards
    libgirepository1.0-dev libcairo2-dev pkg-config gobject-introspection  # PyGObject build
    iproute2 util-linux                 # ip netns, unshare, nsenter
    podman                              # a real CDI consumer (4.3.1: reads cdiVersion <= 0.5.0)
    udev systemd                        # udevadm test, systemd-sysusers: the host check of udev/
    mmdebstrap                          # the offline base image (scripts/base-image.sh)
    openssh-server                      # the labgrid places' sshd (lab/privatelab.py runs its own)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Reinstall the venv only when pyproject.toml changed: a stamp holds its hash.
stamp=.venv/.hwprov-stamp
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "bootstrap: preparing .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -e '.[sim,test,lab]'
    # A real third-party plugin, installed the way users install one.
    if [[ -d tests/plugins ]]; then
        for d in tests/plugins/*/; do
            [[ -f "$d/pyproject.toml" ]] && .venv/bin/pip install -q --disable-pip-version-check -e "$d"
        done
    fi
    echo "$want" >"$stamp"
fi
