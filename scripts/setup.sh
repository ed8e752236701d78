#!/usr/bin/env bash
# Set up everything magoo needs on a Debian / Raspberry Pi OS machine. Safe to run again.
#
#   source scripts/setup.sh     (scripts/demo.sh and scripts/test.sh do this for you)
#
# 1. Debian packages, only those missing (as root, or with sudo).
# 2. uv, when it is not on PATH: installed with pip into its own virtual environment.
# 3. `uv sync --all-packages --locked`: magoo, every plugin in plugins/, the example plugin,
#    and the test tools, exactly as pinned in uv.lock, into .venv.
set -euo pipefail

MAGOO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# System packages the project needs at run or test time (device plugins add theirs here).
MAGOO_APT_PACKAGES=(
    python3 python3-venv
    # magoo-pyaudio builds PyAudio from source (there is no Linux wheel); magoo-sounddevice
    # loads libportaudio2 at run time
    build-essential python3-dev portaudio19-dev libportaudio2
    # the sound server and its ALSA bridge: PortAudio reaches PulseAudio/PipeWire through it,
    # and the tests run a private PulseAudio server with a virtual microphone
    pulseaudio pulseaudio-utils libasound2-plugins
    # magoo-mpv plays replies with mpv (mpg123 is its fallback and its tests' second player)
    mpv mpg123
    # the loopback Fish Audio server makes real speech: espeak-ng, encoded with lame / opusenc
    espeak-ng lame opus-tools
    # `magoo service` drives systemctl and journalctl; its tests check the unit with systemd-analyze
    systemd
)

magoo_apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "magoo setup: please install these packages with your system's package manager: ${missing[*]}" >&2
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "magoo setup: installing ${missing[*]}" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

magoo_ensure_uv() {
    command -v uv >/dev/null && return 0
    local home="${XDG_DATA_HOME:-$HOME/.local/share}/magoo/uv"
    if [ ! -x "$home/bin/uv" ]; then
        echo "magoo setup: installing uv into $home" >&2
        python3 -m venv "$home"
        "$home/bin/pip" install --quiet --disable-pip-version-check uv
    fi
    export PATH="$home/bin:$PATH"
}

magoo_apt_install "${MAGOO_APT_PACKAGES[@]}"
magoo_ensure_uv
cd "$MAGOO_ROOT"
uv sync --all-packages --locked --quiet
export PATH="$MAGOO_ROOT/.venv/bin:$PATH"
