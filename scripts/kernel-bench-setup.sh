#!/usr/bin/env bash
# Install what the kernel bench needs (tests/hil --bench kernel, docs/hil.md): Debian 12's own
# kernel booted under QEMU by virtme-ng, with systemd-udevd and the kernel's test drivers.
# Safe to run again: it installs only what is missing. Prints the kernel it will boot.
#
# gpio-sim is not built in Debian's kernel (nor gpio-mockup, nor IRQ_SIM), so it is built
# here out of tree from linux-source, with irq_sim.c beside it (irq_to_desc is not exported
# to modules: generic_handle_irq does the same for a simple irq). About 3 s.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# In the checkout, like .venv: the guest sees the host's /var through a tmpfs, not as it is.
cache="$here/.kbench"

APT_PACKAGES=(
    qemu-system-x86 linux-image-amd64   # the machine and Debian's kernel (and its modules)
    udev                                # systemd-udevd for the guest (not started on the host)
    i2c-tools gpiod usbutils            # what a lab engineer pokes the guest's hardware with
    linux-headers-amd64 linux-source-6.1 make gcc xz-utils   # the gpio-sim module
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "kernel-bench-setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The newest Debian kernel whose modules and headers are both here.
kver=""
for dir in $(ls -d /lib/modules/*-amd64 2>/dev/null | sort -V -r); do
    v="$(basename "$dir")"
    if [[ -f /boot/vmlinuz-$v && -d /usr/src/linux-headers-$v ]]; then kver="$v"; break; fi
done
[[ -n "$kver" ]] || { echo "kernel-bench-setup: no Debian kernel with headers" >&2; exit 1; }

module="$cache/$kver/gpio-sim-oot.ko"
if [[ ! -f "$module" ]]; then
    echo "kernel-bench-setup: building gpio-sim for $kver" >&2
    build="$(mktemp -d)"
    trap 'rm -rf "$build"' EXIT
    src="$(ls /usr/src/linux-source-*.tar.xz | sort -V | tail -1)"
    top="$(basename "$src" .tar.xz)"
    tar -C "$build" -xJf "$src" "$top/drivers/gpio/gpio-sim.c" "$top/drivers/gpio/gpiolib.h" \
        "$top/kernel/irq/irq_sim.c"
    mkdir "$build/mod"
    cp "$build/$top/drivers/gpio/gpio-sim.c" "$build/$top/drivers/gpio/gpiolib.h" \
        "$build/$top/kernel/irq/irq_sim.c" "$build/mod/"
    sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$build/mod/irq_sim.c"
    grep -q 'generic_handle_irq(irqnum);' "$build/mod/irq_sim.c" ||
        { echo "kernel-bench-setup: irq_sim.c changed upstream, the patch no longer applies" >&2; exit 1; }
    printf 'obj-m := gpio-sim-oot.o\ngpio-sim-oot-y := gpio-sim.o irq_sim.o\n' >"$build/mod/Kbuild"
    make -s -C "/lib/modules/$kver/build" M="$build/mod" modules >/dev/null
    mkdir -p "$cache/$kver"
    cp "$build/mod/gpio-sim-oot.ko" "$module"
fi

[[ -x "$here/.venv/bin/vng" ]] || { echo "kernel-bench-setup: no vng in .venv (bootstrap.sh)" >&2; exit 1; }
echo "$kver"
