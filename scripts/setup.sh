#!/usr/bin/env bash
# Set up everything magoo needs on a Debian / Raspberry Pi OS machine. Safe to run again, and it is
# how an update is installed: plugins you installed yourself stay installed.
#
#   ./scripts/setup.sh     (scripts/demo.sh and scripts/test.sh source it)
#
# 1. Debian packages, only those missing (as root, or with sudo; nothing is asked when none is).
# 2. uv, when it is not on PATH: installed with pip into its own virtual environment.
# 3. `uv sync --all-packages --locked --inexact`: magoo, every plugin in plugins/, the example plugin,
#    and the test tools, exactly as pinned in uv.lock, into .venv. --inexact keeps what else is
#    installed there (your own plugins: an exact sync removed them, and a service whose profile
#    used one then stopped with exit code 2 after every update).
# 4. `magoo`, and uv when step 2 installed it, linked into ~/.local/bin: the folder Debian and
#    Raspberry Pi OS put on PATH at login (~/.profile), where uv's own installer puts uv. The last
#    lines say how to run magoo now.
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
    # echo cancellation's default method (magoo_core/echo_backends.py) runs speexdsp through ctypes
    libspeexdsp1
    # magoo-mpv plays replies with mpv (mpg123 is its fallback and its tests' second player)
    mpv mpg123
    # the loopback Fish Audio server makes real speech: espeak-ng, encoded with lame / opusenc
    espeak-ng lame opus-tools
    # `magoo service` drives systemctl and journalctl; its tests check the unit with systemd-analyze
    systemd
)

# What only the tests need (scripts/test.sh sets MAGOO_SETUP_TESTS=1): a Pi set up for the demo
# gets no browser and no MQTT broker service it did not ask for.
MAGOO_TEST_APT_PACKAGES=(
    # magoo-mqtt's tests start a real MQTT broker of their own (never the system service)
    mosquitto
    # the test of `magoo meter` drives it in a terminal of its own
    tmux
    # magoo-web's page is tested in headless Chromium, driven over the DevTools protocol
    chromium
)
[ "${MAGOO_SETUP_TESTS:-0}" != 1 ] || MAGOO_APT_PACKAGES+=("${MAGOO_TEST_APT_PACKAGES[@]}")

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

MAGOO_UV_HOME="${XDG_DATA_HOME:-$HOME/.local/share}/magoo/uv"

magoo_ensure_uv() {
    command -v uv >/dev/null && return 0
    local home="$MAGOO_UV_HOME"
    if [ ! -x "$home/bin/uv" ]; then
        echo "magoo setup: installing uv into $home" >&2
        python3 -m venv "$home"
        "$home/bin/pip" install --quiet --disable-pip-version-check uv
    fi
    export PATH="$home/bin:$PATH"
}

MAGOO_BIN_DIR="$HOME/.local/bin"
MAGOO_LINKED=()

# magoo_link NAME TARGET: make $MAGOO_BIN_DIR/NAME a link to TARGET. An earlier link (another clone's
# magoo) is replaced; a real file of that name is someone else's program: left alone, returns 1.
magoo_link() {
    local link="$MAGOO_BIN_DIR/$1"
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        echo "magoo setup: $link is not a link made by magoo setup; left as it is (run $2)" >&2
        return 1
    fi
    mkdir -p "$MAGOO_BIN_DIR"
    ln -sfn "$2" "$link"
    MAGOO_LINKED+=("$1")
}

magoo_say_how_to_run() {
    local venv_magoo="$MAGOO_ROOT/.venv/bin/magoo"
    case ":$PATH:" in
        *":$MAGOO_BIN_DIR:"*)
            echo "magoo setup: done. Run magoo as \`magoo\` (or $venv_magoo)." >&2
            return 0 ;;
    esac
    echo "magoo setup: done. Linked into $MAGOO_BIN_DIR: ${MAGOO_LINKED[*]:-nothing}." >&2
    if grep -qs '\.local/bin' "$HOME/.profile"; then
        echo "  ~/.profile puts it on PATH from your next login. For this shell, run:" >&2
    else
        echo "  It is not on PATH: add it in your shell's profile. For this shell, run:" >&2
    fi
    echo "  export PATH=\"\$HOME/.local/bin:\$PATH\"    (or run $venv_magoo)" >&2
}

# uv.lock pins LiteRT and onnxruntime (openWakeWord), which have no 32-bit ARM build: uv would stop
# half-way through the install. dpkg's architecture is the userland's (a 64-bit kernel under a
# 32-bit Raspberry Pi OS still says armhf).
magoo_check_arch() {
    local arch
    arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
    case "$arch" in
        armhf | armel | armv6l | armv7l)
            echo "magoo setup: this is a 32-bit system ($arch); magoo needs the 64-bit Raspberry Pi OS (arm64)." \
                "Flash it with Raspberry Pi Imager; docs/raspberry-pi.md says what 32-bit could run." >&2
            return 1 ;;
    esac
}

magoo_check_arch
magoo_apt_install "${MAGOO_APT_PACKAGES[@]}"
magoo_ensure_uv
cd "$MAGOO_ROOT"
uv sync --all-packages --locked --inexact --quiet
magoo_link magoo "$MAGOO_ROOT/.venv/bin/magoo" || true
# uv too, when it is the one step 2 installed: the docs' `uv run magoo` and `uv pip install` need it
[ "$(command -v uv)" != "$MAGOO_UV_HOME/bin/uv" ] || magoo_link uv "$MAGOO_UV_HOME/bin/uv" || true
magoo_say_how_to_run
export PATH="$MAGOO_ROOT/.venv/bin:$PATH"
