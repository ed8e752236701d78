#!/usr/bin/env bash
# pulse-up.sh: part of magoo's virtual-audio test kit (magoo_core.testing.virtual_audio).
# Tests normally do not call it directly: the `virtual_audio` pytest fixture (or
# VirtualAudio.start(audio_dir)) runs it and applies the exports to os.environ.
#
# Starts a headless PulseAudio server (works as root, with no sound card, no D-Bus, no
# systemd, no stdin) that has:
#   speaker : null sink, the DEFAULT SINK (app playback goes here; record speaker.monitor)
#   micfeed : null sink, 16 kHz mono (play test WAVs into it: paplay --device=micfeed x.wav)
#   virtmic : remap source of micfeed.monitor, the DEFAULT SOURCE (the app's "microphone")
# plus the CLI socket, so `pacmd kill-source-output N` / `pacmd kill-client N` work (fault tests).
# It also starts two keepalive clients (see below). Without them an idle null sink renders in
# 2 s blocks, so a newly opened capture stream gets its first callback 0-2 s late and audio
# played right after opening can be clipped. Up in about 0.2 s.
#
# By hand: eval "$(AUDIO_DIR=/tmp/magoo-audio bash magoo_core/testing/pulse/pulse-up.sh)"
#          prints export lines (also written to $AUDIO_DIR/env.sh); idempotent, and restarts a
#          killed server.
#        AUDIO_DIR=/some/dir  picks the state directory (default ${TMPDIR:-/tmp}/ci-audio)
#        ALSA_MINIMAL=1       also exports ALSA_CONFIG_PATH naming a 4-line ALSA config that has
#                             only pulse/default: PortAudio init then prints 5 JACK lines on stderr,
#                             not about 80 "ALSA lib ... cannot find card" lines (init 75 -> 17 ms)
# Stop:  bash pulse-down.sh             (same AUDIO_DIR)
# Needs: pulseaudio pulseaudio-utils libasound2-plugins (./scripts/setup.sh installs them)
set -euo pipefail

AUDIO_DIR=${AUDIO_DIR:-${TMPDIR:-/tmp}/ci-audio}
mkdir -p "$AUDIO_DIR/run" "$AUDIO_DIR/state"
chmod 700 "$AUDIO_DIR/run" "$AUDIO_DIR/state"

export XDG_RUNTIME_DIR="$AUDIO_DIR/run"          # pulse wants a private (0700) runtime dir
export PULSE_RUNTIME_PATH="$AUDIO_DIR/run/pulse" # pid file lives here (pulseaudio --kill/--check)
export PULSE_STATE_PATH="$AUDIO_DIR/state"       # keeps the server's cookie etc. out of $HOME
export PULSE_COOKIE="$AUDIO_DIR/state/cookie"    # same for clients (anonymous auth anyway)
export PULSE_SERVER="unix:$AUDIO_DIR/native"     # every libpulse client (pactl, paplay, mpv, ALSA plugin) uses this

cat > "$AUDIO_DIR/ci.pa" <<EOF
.fail
load-module module-native-protocol-unix auth-anonymous=1 auth-cookie-enabled=0 socket=$AUDIO_DIR/native
load-module module-null-sink sink_name=speaker sink_properties=device.description=Speaker
load-module module-null-sink sink_name=micfeed rate=16000 channels=1 sink_properties=device.description=MicFeed
load-module module-remap-source source_name=virtmic master=micfeed.monitor source_properties=device.description=VirtualMic
load-module module-cli-protocol-unix
set-default-sink speaker
set-default-source virtmic
EOF

# alive PID: true if PID exists and is not a zombie (exited children of a non-reaping PID 1
# stay as zombies for a while, and `kill -0` still succeeds on them)
alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

new_server=0
if pactl info >/dev/null 2>&1; then
  echo "pulse-up: a server is already running for $AUDIO_DIR" >&2
else
  new_server=1
  # A pid file naming a dead or zombie pulseaudio (e.g. after kill -9) makes the new daemon
  # refuse to start with "Daemon already running", so remove it.
  if [ -f "$PULSE_RUNTIME_PATH/pid" ] && ! alive "$(cat "$PULSE_RUNTIME_PATH/pid")"; then
    rm -f "$PULSE_RUNTIME_PATH/pid"
  fi
  # -n: skip /etc/pulse/default.pa (udev/alsa/dbus/bluetooth modules); -F: our script only.
  # "This program is not intended to be run as root" is a warning only.
  pulseaudio -n -F "$AUDIO_DIR/ci.pa" --daemonize=yes --use-pid-file=yes \
    --exit-idle-time=-1 --log-target=file:"$AUDIO_DIR/pulse.log" \
    </dev/null >/dev/null 2>&1 \
    || { echo "pulse-up: pulseaudio failed to start:" >&2; tail -5 "$AUDIO_DIR/pulse.log" >&2; exit 1; }
fi

for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.05; done
pactl info >/dev/null 2>&1 || { echo "pulse-up: server did not come up; see $AUDIO_DIR/pulse.log" >&2; exit 1; }

# Keepalives: an idle null sink renders in 2 s blocks, so a new capture stream would get its
# first data 0-2 s late. A pacat playing silence into each sink keeps its blocks short (~15-30 ms):
#   micfeed: prompt first callbacks for capture streams on virtmic
#   speaker: prompt data for test recorders on speaker.monitor
# (Playback keepalives, not recorders: a recorder on speaker.monitor can get dragged to a new
# default source after a source is unloaded and reloaded.)
started=0
start_keepalive() {  # start_keepalive NAME CMD...: setsid; sh records its PID, then execs CMD
  local name=$1; shift
  if [ -f "$AUDIO_DIR/$name.pid" ] && alive "$(cat "$AUDIO_DIR/$name.pid")"; then
    [ "$new_server" = 1 ] || return 0
    kill "$(cat "$AUDIO_DIR/$name.pid")" 2>/dev/null  # it played into the server that died
  fi
  rm -f "$AUDIO_DIR/$name.pid"; started=1
  setsid sh -c 'f=$1; shift; echo $$ > "$f"; exec "$@"' sh "$AUDIO_DIR/$name.pid" "$@" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 50); do [ -s "$AUDIO_DIR/$name.pid" ] && break; sleep 0.02; done
}
start_keepalive keepalive-mic pacat --playback --device=micfeed --latency-msec=100 \
  --format=s16le --rate=16000 --channels=1 --client-name=keepalive-mic /dev/zero
start_keepalive keepalive-spk pacat --playback --device=speaker --latency-msec=50 \
  --format=s16le --rate=16000 --channels=1 --client-name=keepalive-spk /dev/zero
# A null sink renders its first block, 2 s long, before the keepalive connects. On a new server,
# once both keepalives play, suspending and resuming each sink restarts its clock with their
# short blocks (a capture stream then gets data in ~20 ms). A live server's streams would hear
# that, so there a restarted keepalive waits for the current long block to run out instead.
keepalives_playing() {
  [ "$(pactl list sink-inputs 2>/dev/null | grep -cE 'application.name = "keepalive-(mic|spk)"')" -ge 2 ]
}
if [ "$new_server" = 1 ]; then
  for _ in $(seq 250); do keepalives_playing && break; sleep 0.02; done
  keepalives_playing || { echo "pulse-up: the keepalives did not connect within 5 s; see $AUDIO_DIR/pulse.log" >&2; exit 1; }
  for sink in micfeed speaker; do
    pactl suspend-sink "$sink" 1 && pactl suspend-sink "$sink" 0
  done
elif [ "$started" = 1 ]; then
  sleep 2.1
fi

if [ "${ALSA_MINIMAL:-0}" = 1 ]; then
  cat > "$AUDIO_DIR/asound.conf" <<'EOF'
pcm.!default { type pulse hint { show on description "PulseAudio (default)" } }
ctl.!default { type pulse }
pcm.pulse { type pulse hint { show on description "PulseAudio" } }
ctl.pulse { type pulse }
EOF
fi

cat > "$AUDIO_DIR/env.sh" <<EOF
export AUDIO_DIR='$AUDIO_DIR'
export XDG_RUNTIME_DIR='$XDG_RUNTIME_DIR'
export PULSE_RUNTIME_PATH='$PULSE_RUNTIME_PATH'
export PULSE_STATE_PATH='$PULSE_STATE_PATH'
export PULSE_COOKIE='$PULSE_COOKIE'
export PULSE_SERVER='$PULSE_SERVER'
EOF
if [ "${ALSA_MINIMAL:-0}" = 1 ]; then
  echo "export ALSA_CONFIG_PATH='$AUDIO_DIR/asound.conf'" >> "$AUDIO_DIR/env.sh"
fi
cat "$AUDIO_DIR/env.sh"
