#!/usr/bin/env bash
# pulse-down.sh: part of magoo's virtual-audio test kit (magoo_core.testing.virtual_audio).
# Stops what pulse-up.sh started (keepalives + pulseaudio), by PID file. VirtualAudio.stop()
# runs it; by hand: AUDIO_DIR=... bash pulse-down.sh (same AUDIO_DIR as pulse-up.sh; RM=1 also
# deletes it).
set -uo pipefail
AUDIO_DIR=${AUDIO_DIR:-${TMPDIR:-/tmp}/ci-audio}
export XDG_RUNTIME_DIR="$AUDIO_DIR/run" PULSE_RUNTIME_PATH="$AUDIO_DIR/run/pulse" \
       PULSE_STATE_PATH="$AUDIO_DIR/state" PULSE_COOKIE="$AUDIO_DIR/state/cookie" \
       PULSE_SERVER="unix:$AUDIO_DIR/native"

# alive PID: exists and is not a zombie (a non-reaping PID 1 leaves exited daemons as zombies)
alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

stop_pid() {  # stop_pid PID NAME: TERM, wait up to 3 s, then KILL
  local pid=$1 name=$2
  alive "$pid" || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 30); do alive "$pid" || return 0; sleep 0.1; done
  echo "pulse-down: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
  kill -9 "$pid" 2>/dev/null
}

for k in keepalive-mic keepalive-spk; do
  if [ -f "$AUDIO_DIR/$k.pid" ]; then stop_pid "$(cat "$AUDIO_DIR/$k.pid")" "$k"; rm -f "$AUDIO_DIR/$k.pid"; fi
done
if [ -f "$PULSE_RUNTIME_PATH/pid" ]; then
  stop_pid "$(cat "$PULSE_RUNTIME_PATH/pid")" pulseaudio
fi
rm -f "$AUDIO_DIR/native" "$PULSE_RUNTIME_PATH/pid"
[ "${RM:-0}" = 1 ] && rm -rf "$AUDIO_DIR"
exit 0
