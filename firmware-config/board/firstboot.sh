#!/bin/sh
# Prepare a Raspberry Pi (Raspberry Pi OS Bookworm) to play a hilnet node.
# Run once as root from a checkout's firmware-config/ folder, then reboot:
#
#   sudo sh board/firstboot.sh [--wheel hilnet-X.whl] [--node node.yaml] \
#        [--link-address 10.77.1.1/24 --link-ifname eth1]
#
# What it does, each step safe to repeat (it checks before it changes):
#  1. appends this model's config.txt fragment (pi3/, pi4/, pi5/, zero2w/) to
#     /boot/firmware/config.txt: the GPIO UART as /dev/ttyAMA0;
#  2. removes the serial console from cmdline.txt where it would sit on that
#     UART (console=serial0/ttyAMA0/ttyS0), and disables hciuart and the login
#     getty on it, so nothing but the link writes to the link;
#  3. creates the system user hilnet (no shell, no home login) in group dialout;
#  4. installs hilnet into the virtual environment /opt/hilnet (Bookworm refuses
#     pip outside one: PEP 668), from --wheel or from the package index;
#  5. installs chrony with board/chrony-board.conf (follow the emulator host);
#  6. with --node: installs the node file and the systemd unit, enabled (a board
#     run by `hilnet run --bench` needs neither: the controller starts the agent);
#  7. with --link-address: a static address on the emulated-link interface with
#     nmcli, no gateway (the default route stays on the management network).
#
# HILNET_ROOT=DIR applies the file edits under DIR instead of / (the tests use
# it with stub commands on the PATH).
set -eu

ROOT=${HILNET_ROOT:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WHEEL= NODE= LINK_ADDRESS= LINK_IFNAME=eth1
while [ $# -gt 0 ]; do
    case $1 in
        --wheel) WHEEL=$2; shift 2 ;;
        --node) NODE=$2; shift 2 ;;
        --link-address) LINK_ADDRESS=$2; shift 2 ;;
        --link-ifname) LINK_IFNAME=$2; shift 2 ;;
        *) echo "firstboot.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

say() { echo "firstboot: $*"; }

# -- which board --------------------------------------------------------------
model=$(tr -d '\0' < "$ROOT/proc/device-tree/model")
case $model in
    "Raspberry Pi 5"*) board=pi5 ;;
    "Raspberry Pi 4"* | "Raspberry Pi 400"*) board=pi4 ;;
    "Raspberry Pi 3"*) board=pi3 ;;
    "Raspberry Pi Zero 2 W"*) board=zero2w ;;
    *) echo "firstboot.sh: no fragment for '$model' (Pi 3, Pi 4, Pi 5, Zero 2 W)" >&2; exit 2 ;;
esac
say "$model -> $board"

boot=$ROOT/boot/firmware
[ -d "$boot" ] || boot=$ROOT/boot   # images before Bookworm

# -- 1. config.txt ------------------------------------------------------------
marker=$(head -n 1 "$HERE/$board/config.txt")
if grep -qxF "$marker" "$boot/config.txt"; then
    say "config.txt already has the $board fragment"
else
    { echo; cat "$HERE/$board/config.txt"; } >> "$boot/config.txt"
    say "appended $board/config.txt to $boot/config.txt"
fi

# -- 2. free the UART from the console ----------------------------------------
# On a Pi 5 serial0 is the debug connector, which may keep its console.
if [ "$board" = pi5 ]; then
    consoles='ttyAMA0'
else
    consoles='serial0|ttyAMA0|ttyS0'
fi
cmdline=$boot/cmdline.txt
if grep -Eq "console=($consoles),[0-9]+ ?" "$cmdline"; then
    # cmdline.txt is one line; keep it one line.
    sed -E -i "s/console=($consoles),[0-9]+ ?//g" "$cmdline"
    say "removed the serial console from $cmdline"
fi
if [ "$board" != pi5 ]; then
    systemctl disable hciuart.service 2>/dev/null || true
fi
systemctl mask serial-getty@ttyAMA0.service >/dev/null

# -- 3. the hilnet user -------------------------------------------------------
if ! id hilnet >/dev/null 2>&1; then
    useradd --system --shell /usr/sbin/nologin --home-dir /var/lib/hilnet --no-create-home \
        --groups dialout hilnet
    say "created system user hilnet"
fi

# -- 4. hilnet in /opt/hilnet ---------------------------------------------------
if [ ! -x "$ROOT/opt/hilnet/bin/python" ]; then
    python3 -m venv "$ROOT/opt/hilnet"
fi
"$ROOT/opt/hilnet/bin/python" -m pip install --quiet --upgrade "${WHEEL:-hilnet}"
say "hilnet installed in /opt/hilnet"

# -- 5. clock -----------------------------------------------------------------
if ! command -v chronyd >/dev/null 2>&1; then
    apt-get install -y chrony   # replaces systemd-timesyncd
fi
install -D -m 644 "$HERE/board/chrony-board.conf" "$ROOT/etc/chrony/conf.d/hilnet.conf"
systemctl restart chrony || true

# -- 6. a standalone node -----------------------------------------------------
if [ -n "$NODE" ]; then
    install -D -m 640 "$NODE" "$ROOT/etc/hilnet/node.yaml"
    chgrp hilnet "$ROOT/etc/hilnet/node.yaml"   # readable by the agent, not by everyone
    install -D -m 644 "$HERE/systemd/hilnet-agent.service" "$ROOT/etc/systemd/system/hilnet-agent.service"
    systemctl daemon-reload
    systemctl enable hilnet-agent.service
    say "hilnet-agent.service enabled for $(grep -m1 '^node:' "$NODE")"
fi

# -- 7. the emulated-link interface ---------------------------------------------
if [ -n "$LINK_ADDRESS" ]; then
    nmcli connection delete hilnet-link >/dev/null 2>&1 || true
    nmcli connection add type ethernet ifname "$LINK_IFNAME" con-name hilnet-link \
        ipv4.method manual ipv4.addresses "$LINK_ADDRESS" ipv4.never-default yes \
        ipv6.method disabled connection.autoconnect yes >/dev/null
    say "$LINK_IFNAME: $LINK_ADDRESS (connection hilnet-link)"
fi

say "done; reboot for the UART settings to take effect"
