#!/usr/bin/env bash
# Prove the two set-up commands on a 64-bit Raspberry Pi OS userland, emulated on an x86-64 Debian
# host: a Debian bookworm arm64 root (what 64-bit Raspberry Pi OS is built on) runs under qemu, and
# inside it, as a user "pi" with sudo like on a Pi, ./scripts/demo.sh and a fast subset of the tests
# run on a fresh copy of the repository (git archive of a commit: the host's .venv is never copied).
#
#   sudo scripts/pi-arm64-check.sh [ROOT]          run before a release; not part of the test suite
#
# ROOT (or MAGOO_PI_ROOT) is where the arm64 root lives, default /var/tmp/magoo-pi-arm64 (outside the
# repository, so pytest, git and the docs build never walk into a second copy of it; .pi-root/ in
# the repository is git-ignored if you prefer it there). A root left by an earlier run is reused;
# MAGOO_PI_FRESH=1 builds it again. MAGOO_PI_REF picks the commit to test (default HEAD: commit first).
# MAGOO_PI_EMULATOR=chroot|proot forces how arm64 programs run (default: chroot when binfmt works).
# MAGOO_PI_TEST_WORKERS sets scripts/test.sh's pytest-xdist workers (default 2).
#
# Needs root (debootstrap, chroot, mounts), about 3 GB of disk, apt and PyPI. It installs debootstrap
# and qemu-user-static (and proot when binfmt_misc is unusable) on the host. Expect about 40 minutes
# from nothing on 2 busy cores, 20 with the root reused: every arm64 instruction is emulated (of the
# locked packages only PyAudio compiles; the rest are aarch64 wheels). It prints each step's time and
# a summary, and exits non-zero on the first failure. docs/raspberry-pi.md has the results.
set -euo pipefail

MAGOO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PI_ROOT="$(realpath -m "${1:-${MAGOO_PI_ROOT:-/var/tmp/magoo-pi-arm64}}")"
PI_REF="${MAGOO_PI_REF:-HEAD}"
PI_MIRROR="${MAGOO_PI_MIRROR:-http://deb.debian.org/debian}"
PI_USER=pi
PI_REPO="/home/$PI_USER/magoo"
READY_MARK="$PI_ROOT/.magoo-pi-ready"
# Fast test files that still use the real parts: profiles, the local responder, the native speech
# libraries (pocketsphinx, openWakeWord on ai-edge-litert, espeak-ng), the servo's motion, and
# PyAudio (built from source) reading the private PulseAudio server's virtual microphone.
PI_TESTS=(
    tests/test_profile.py
    tests/test_local_responder.py
    plugins/magoo-pocketsphinx/tests
    plugins/magoo-openwakeword/tests
    plugins/magoo-espeak/tests/test_espeak_tts.py
    plugins/magoo-servo/tests/test_servo.py
    plugins/magoo-pyaudio/tests
)
# Emulation is 5-20 times slower than the hardware: the suite's 120 s per-test limit is for real CPUs.
PI_TEST_TIMEOUT=900
# magoo_core.testing's contract suites give a backend 30 s to start; emulated on a busy machine,
# openWakeWord takes 40-125 s to load its models (3 s on the host), every time, so its contract
# class times out (warming one detector up per test process first did not help). The rest of its
# tests, real detections on recordings, run.
PI_DESELECT=plugins/magoo-openwakeword/tests/test_openwakeword.py::TestOpenWakeWordContract
# scripts/test.sh's pytest-xdist workers: each is a whole emulated Python, so no more than the cores.
PI_TEST_WORKERS="${MAGOO_PI_TEST_WORKERS:-2}"

STEP_NAMES=()
STEP_TIMES=()
MOUNTED=()

say() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'pi-arm64-check: %s\n' "$*" >&2; exit 1; }

# Run a step in a subshell, print how long it took, and keep the time for the summary. The subshell
# is what keeps `set -e` working inside the step (bash ignores it in a function called from `||`);
# so a step cannot set variables for later ones.
step() {
    local name="$1" start=$SECONDS rc=0
    shift
    say "$name"
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    [ "$rc" -eq 0 ] || die "step '$name' failed (exit $rc) after $((SECONDS - start)) s (log above)"
    STEP_NAMES+=("$name")
    STEP_TIMES+=("$((SECONDS - start))")
    printf '=== %s: %d s\n' "$name" "$((SECONDS - start))" >&2
}

summary() {
    local i
    printf '\n%-40s %8s\n' "step" "seconds"
    for i in "${!STEP_NAMES[@]}"; do
        printf '%-40s %8d\n' "${STEP_NAMES[$i]}" "${STEP_TIMES[$i]}"
    done
    printf '%-40s %8d\n' "total" "$SECONDS"
}

host_tools() {
    local missing=() tool
    for tool in debootstrap qemu-user-static; do
        dpkg-query -W -f='${Status}' "$tool" 2>/dev/null | grep -q "ok installed" || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# binfmt_misc lets the kernel hand every arm64 executable to qemu by itself, so a plain chroot works
# and programs run at qemu's full speed. qemu-user-static's own entry (flags PF) runs setuid programs
# without their privileges, so the user pi's sudo fails ("effective uid is not 0") where a Pi's works;
# this script therefore adds an entry of its own with C (credentials from the binary, which implies
# O), newest entries being matched first, and removes it when it ends. Containers often lack
# binfmt_misc (no mount, read-only /proc/sys): then proot is the fallback, which intercepts every
# execve with ptrace and starts it under qemu; it works anywhere, slower, and only as a faked root.
BINFMT=/proc/sys/fs/binfmt_misc
BINFMT_ENTRY=magoo-pi-aarch64
BINFMT_ADDED=0
binfmt_ready() {
    local magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    # Debian's qemu takes the "-binfmt-P" name as the sign that argv[0] is preserved (flag P).
    local qemu=/usr/libexec/qemu-binfmt/aarch64-binfmt-P
    [ -x "$qemu" ] || return 1
    if [ ! -e "$BINFMT/register" ]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null || return 1
    fi
    if [ ! -e "$BINFMT/$BINFMT_ENTRY" ]; then
        echo ":$BINFMT_ENTRY:M::$magic:$mask:$qemu:POCF" >"$BINFMT/register" 2>/dev/null || return 1
        BINFMT_ADDED=1
    fi
    grep -qx enabled "$BINFMT/$BINFMT_ENTRY"
}

choose_emulator() {
    EMULATOR="${MAGOO_PI_EMULATOR:-auto}"
    if [ "$EMULATOR" = auto ]; then
        if binfmt_ready; then EMULATOR=chroot; else EMULATOR=proot; fi
    fi
    if [ "$EMULATOR" = proot ] && ! command -v proot >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends proot
    fi
    case "$EMULATOR" in
        chroot | proot) echo "arm64 programs run through: $EMULATOR" >&2 ;;
        *) die "MAGOO_PI_EMULATOR must be chroot or proot, not '$EMULATOR'" ;;
    esac
}

mount_once() {
    local target="$PI_ROOT/$1"
    shift
    findmnt -rn --mountpoint "$target" >/dev/null && return 0
    [ -e "$target" ] || mkdir -p "$target"
    mount "$@" "$target"
    MOUNTED=("$target" "${MOUNTED[@]}")
}

# The chroot needs the kernel's file systems: apt, Python's multiprocessing (/dev/shm) and the
# private PulseAudio server all use them. /dev is bound recursively and made a slave, so nothing
# mounted or unmounted under the root's /dev can reach the host's. proot binds them itself.
mount_kernel_fs() {
    write_cpuinfo
    [ "$EMULATOR" = chroot ] || return 0
    mount_once proc -t proc proc
    mount_once proc/cpuinfo --bind "$PI_ROOT$PI_CPUINFO"
    mount_once sys -t sysfs sysfs
    mount_once dev --rbind /dev
    mount --make-rslave "$PI_ROOT/dev"
}

# qemu-user (7.2) passes /proc/cpuinfo through from the host, so arm64 programs read an x86 CPU
# there. onnxruntime's cpuinfo library then finds no ARM processor and `import onnxruntime`
# dies with a segmentation fault (openWakeWord imports it), and pvporcupine refuses the CPU.
# The root sees what a Raspberry Pi 4 (Cortex-A72, 64-bit OS) shows instead, one entry per host CPU
# so that it agrees with /sys/devices/system/cpu.
PI_CPUINFO=/etc/magoo-pi-cpuinfo
write_cpuinfo() {
    local cpu
    for cpu in $(seq 0 $(($(nproc --all) - 1))); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$cpu"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done >"$PI_ROOT$PI_CPUINFO"
    printf 'Hardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: 0000000000000000\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' \
        >>"$PI_ROOT$PI_CPUINFO"
}

clean_up() {
    local target
    for target in "${MOUNTED[@]}"; do umount -l "$target" 2>/dev/null || true; done
    MOUNTED=()
    [ "$BINFMT_ADDED" = 0 ] || echo -1 >"$BINFMT/$BINFMT_ENTRY" 2>/dev/null || true
}
trap clean_up EXIT

# Run a command inside the root as (real or, under proot, faked) root.
as_root() {
    if [ "$EMULATOR" = chroot ]; then
        chroot "$PI_ROOT" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    else
        proot -q qemu-aarch64-static -0 -r "$PI_ROOT" -b /proc -b /sys -b /dev -b /dev/shm \
            -b "$PI_ROOT$PI_CPUINFO:/proc/cpuinfo" -w / \
            /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    fi
}

# Run a shell command line in the repository copy as the user pi, like a login on the Pi would.
# proot cannot switch users, so there it runs as the faked root (setup.sh then needs no sudo).
as_pi() {
    local env=(HOME="/home/$PI_USER" USER="$PI_USER" LOGNAME="$PI_USER" TERM="${TERM:-dumb}" LANG=C.UTF-8
        PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/1000")
    if compgen -G "$PI_ROOT/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        env+=(SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
    fi
    if [ "$EMULATOR" = chroot ]; then
        chroot "$PI_ROOT" /usr/sbin/runuser -u "$PI_USER" -- /usr/bin/env -i "${env[@]}" \
            /bin/bash -c "cd $PI_REPO && $1" 2>&1 | stamp
    else
        as_root /usr/bin/env "${env[@]}" /bin/bash -c "cd $PI_REPO && $1" 2>&1 | stamp
    fi
}

# Prefix each line with the time of day, so a log shows where inside a step the time went
# (setup.sh's apt, uv and uv sync are one step here). pipefail keeps the command's exit status.
stamp() {
    local line
    while IFS= read -r line; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done
}

debootstrap_first_stage() {
    # A /dev or /proc still bound in an old root would be emptied on the host by rm -rf.
    if grep -q " $PI_ROOT/" /proc/mounts; then
        die "file systems are still mounted under $PI_ROOT (see /proc/mounts); unmount them first"
    fi
    rm -rf --one-file-system "$PI_ROOT"
    mkdir -p "$PI_ROOT"
    # minbase plus what Raspberry Pi OS Lite has anyway: sudo and the CA certificates; everything
    # else must come from scripts/setup.sh, which is the point of the check.
    debootstrap --arch=arm64 --foreign --variant=minbase --include=sudo,ca-certificates \
        bookworm "$PI_ROOT" "$PI_MIRROR"
}

debootstrap_second_stage() {
    # With binfmt's F flag the kernel already holds qemu open; the copy is for hosts without it.
    install -D -m 0755 /usr/bin/qemu-aarch64-static "$PI_ROOT/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    install -D -m 0755 /usr/bin/qemu-aarch64-static "$PI_ROOT/usr/bin/qemu-aarch64-static"
    as_root /debootstrap/debootstrap --second-stage
}

configure_root() {
    cat >"$PI_ROOT/etc/apt/sources.list" <<EOF
deb $PI_MIRROR bookworm main
deb $PI_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    # Packages' maintainer scripts must not start services (pulseaudio, systemd units) in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$PI_ROOT/usr/sbin/policy-rc.d"
    chmod 0755 "$PI_ROOT/usr/sbin/policy-rc.d"
    as_root /usr/sbin/useradd --create-home --shell /bin/bash --uid 1000 --user-group "$PI_USER"
    echo "$PI_USER ALL=(ALL) NOPASSWD:ALL" >"$PI_ROOT/etc/sudoers.d/010_pi-nopasswd"
    chmod 0440 "$PI_ROOT/etc/sudoers.d/010_pi-nopasswd"
    touch "$READY_MARK"
}

# Behind a TLS-inspecting proxy the host trusts an extra CA (in /usr/local/share/ca-certificates);
# without it pip and uv in the root cannot reach PyPI ("self-signed certificate in certificate
# chain"). It is copied in, and as_pi then points pip (which reads certifi's bundle, not the
# system's) and uv (which has its own roots) at the system bundle. Without such a CA nothing changes.
trust_host_cas() {
    local extra=(/usr/local/share/ca-certificates/*.crt) ours="$PI_ROOT/usr/local/share/ca-certificates"
    [ -e "${extra[0]}" ] || return 0
    # update-ca-certificates takes minutes under emulation: only when the CAs changed
    diff -rq /usr/local/share/ca-certificates "$ours" >/dev/null 2>&1 && return 0
    mkdir -p "$ours"
    cp "${extra[@]}" "$ours/"
    as_root /usr/sbin/update-ca-certificates >/dev/null
}

copy_repository() {
    trust_host_cas
    cp -L /etc/resolv.conf "$PI_ROOT/etc/resolv.conf"
    # The chroot keeps the host's name; sudo wants to resolve it.
    printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost ip6-loopback\n' "$(hostname)" \
        >"$PI_ROOT/etc/hosts"
    mkdir -p "$PI_ROOT/run/user/1000"
    chown 1000:1000 "$PI_ROOT/run/user/1000"
    chmod 0700 "$PI_ROOT/run/user/1000"
    rm -rf "$PI_ROOT$PI_REPO"
    mkdir -p "$PI_ROOT$PI_REPO"
    git -C "$MAGOO_ROOT" archive --format=tar "$PI_REF" | tar -x -C "$PI_ROOT$PI_REPO"
    chown -R 1000:1000 "$PI_ROOT$PI_REPO"
    echo "copied $(git -C "$MAGOO_ROOT" rev-parse --short "$PI_REF") to $PI_ROOT$PI_REPO" >&2
}

# What uv built on the "Pi": a wheel tagged linux_aarch64 was compiled here from a source
# distribution (PyPI's binary wheels are manylinux_*/musllinux_*); pure-Python sdists build to
# py3-none-any and are listed by name from uv.lock (packages there with an sdist and no wheel).
report_builds() {
    as_pi '.venv/bin/python - <<"EOF"
import pathlib, tomllib
site = next(pathlib.Path(".venv/lib").glob("python3*/site-packages"))
native = sorted(
    d.name.removesuffix(".dist-info")
    for d in site.glob("*.dist-info")
    if any(line.startswith("Tag:") and line.rstrip().endswith("linux_aarch64")
           for line in (d / "WHEEL").read_text().splitlines())
)
lock = tomllib.loads(pathlib.Path("uv.lock").read_text())
pure = sorted(f"{p['name']}-{p['version']}" for p in lock["package"] if "sdist" in p and not p.get("wheels"))
print("built from source here (native, linux_aarch64):", ", ".join(native) or "none")
print("built from source here (pure Python, no wheel on PyPI):", ", ".join(pure) or "none")
print("python:", __import__("sys").version.split()[0], "machine:", __import__("platform").machine())
EOF'
}

# The demo as a user runs it. Its recording is paced like a microphone, and emulated openWakeWord
# scores it several times slower than real time, so the wake word comes late and the command may be
# over before the turn listens (then the turn ends "no_speech"). Here it must start, hear the wake
# word and end cleanly; the next step checks what the turn understood.
run_demo() {
    local out="$PI_ROOT/var/tmp/magoo-demo.log"
    as_pi './scripts/demo.sh' | tee "$out"
    grep -q "turn 1: wake word 'hey_jarvis'" "$out" || die "the demo never heard its wake word"
}

# The demo's profile with its recording read in lock-step (realtime = false: each chunk waits for the
# wake detector), which removes emulation's slowness from the result: the whole turn must come out
# as on a Pi, the command transcribed, the reply spoken into examples/out/reply-1.wav.
run_demo_lockstep() {
    local out="$PI_ROOT/var/tmp/magoo-demo-lockstep.log" repo="$PI_ROOT$PI_REPO"
    sed '/^\[audio_source\]/a realtime = false' "$repo/examples/demo.toml" >"$repo/examples/demo-lockstep.toml"
    rm -rf "$repo/examples/out"
    as_pi '.venv/bin/magoo run --profile examples/demo-lockstep.toml' | tee "$out"
    grep -q 'turn 1: heard "what time is it"' "$out" || die "the lock-step demo did not hear 'what time is it'"
    grep -q 'turn 1: ok' "$out" || die "the lock-step demo's turn did not end ok"
    [ -s "$repo/examples/out/reply-1.wav" ] || die "the lock-step demo wrote no examples/out/reply-1.wav"
}

# All of it in one function, read whole before it runs: editing this file while a run goes on
# (it lasts an hour) cannot change what that run executes.
main() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): debootstrap, chroot and mounts need it"
    git -C "$MAGOO_ROOT" rev-parse --verify -q "$PI_REF^{commit}" >/dev/null || die "no commit '$PI_REF' in $MAGOO_ROOT"

    step "host tools" host_tools
    choose_emulator
    [ "${MAGOO_PI_FRESH:-0}" = 1 ] && rm -f "$READY_MARK"
    if [ ! -e "$READY_MARK" ]; then
        step "debootstrap first stage (download)" debootstrap_first_stage
        mount_kernel_fs
        step "debootstrap second stage (emulated)" debootstrap_second_stage
        step "configure root, user pi" configure_root
    else
        echo "reusing the arm64 root in $PI_ROOT (MAGOO_PI_FRESH=1 builds it again)" >&2
        mount_kernel_fs
    fi
    step "copy repository ($PI_REF), CAs, DNS" copy_repository
    step "scripts/setup.sh (apt, uv, uv sync)" as_pi 'source scripts/setup.sh'
    step "what was built from source" report_builds
    step "scripts/demo.sh" run_demo
    step "demo profile, lock-step: the whole turn" run_demo_lockstep
    step "scripts/test.sh (fast subset)" as_pi "MAGOO_TEST_WORKERS=$PI_TEST_WORKERS ./scripts/test.sh -x -q -p no:cacheprovider --timeout=$PI_TEST_TIMEOUT --durations=5 --deselect $PI_DESELECT ${PI_TESTS[*]}"
    summary
}

main "$@"
exit
