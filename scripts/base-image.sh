#!/usr/bin/env bash
# A base for deploy/Dockerfile made without any registry: a minimal Debian 12 with python3, its
# venv module and libudev1, built by mmdebstrap from Debian's own packages, as a tarball for
# `docker import`. Prints the tarball's path. Kept in the checkout (like .venv, .kbench) under
# a name that changes with what goes in, so a second run costs nothing; a first one ~20 s.
#
#   docker import "$(bash scripts/base-image.sh)" hwprov/base:bookworm
#   pip wheel -w deploy/wheels .
#   docker build --network none --build-arg BASE=hwprov/base:bookworm -f deploy/Dockerfile .
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$here/.image"

SUITE=bookworm
# python3-venv: the Dockerfile installs hwprov into a venv (Debian's python3 refuses pip into
# the system, PEP 668); it brings ensurepip's own pip wheel, so no index is needed for pip.
# libudev1: pyudev loads it at run time. Nothing else: the essential variant has no apt.
PACKAGES=(python3 python3-venv libudev1)
# Documentation, manuals and translations: not read in a container.
DPKG_OPTS=(
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
)

command -v mmdebstrap >/dev/null || { echo "base-image: no mmdebstrap (bash scripts/bootstrap.sh)" >&2; exit 1; }
key="$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" "${DPKG_OPTS[@]}" | sha256sum | cut -c1-12)"
tarball="$cache/$SUITE-python-$key.tar"
if [[ ! -f "$tarball" ]]; then
    mkdir -p "$cache"
    echo "base-image: building $tarball" >&2
    # The host's own apt sources (Debian's mirror, as bootstrap.sh uses): mmdebstrap reads them
    # when given no mirror. Written aside first: an interrupted run leaves no half tarball.
    mmdebstrap --quiet --format=tar --variant=essential --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        "${DPKG_OPTS[@]}" "$SUITE" "$tarball.part" >&2
    mv "$tarball.part" "$tarball"
fi
echo "$tarball"
