// The magoo control page: one WebSocket (/api/ws) for the snapshot, the events, the levels and the
// commands; GET /api/status for the backends' health. No framework, no build step, nothing from
// elsewhere. Text from the assistant (what was heard and answered) is only ever set as textContent.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const FLOOR_DB = -60; // the input bar's left end, in dBFS
  const STEPS = [
    ["started", "detected", "detection"], ["detected", "speech_end", "command"],
    ["speech_end", "transcript", "transcript"], ["transcript", "reply", "reply"],
    ["reply", "first_audio", "first sound"], ["first_audio", "ended", "spoken"],
  ];
  const KEPT = 20;
  const turns = new Map();
  const asked = new Map(); // command id -> what was asked, for the result line
  let ws = null;
  let nextId = 1;
  let retry = 500;
  let muted = false;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/api/ws`);
    ws.onopen = () => { retry = 500; connection("connected", false); };
    ws.onmessage = (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      handle(data);
    };
    ws.onclose = () => {
      connection("not connected: trying again…", true);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  function handle(data) {
    if (data.type === "snapshot") snapshot(data);
    else if (data.type === "levels") levels(data);
    else if (data.type === "event") onEvent(data);
    else if (data.type === "result") onResult(data);
  }

  function snapshot(data) {
    $("name").textContent = data.name;
    document.title = `${data.name} · magoo`;
    status(data);
    levels(data.levels);
    turns.clear();
    for (const turn of data.last_turns) turns.set(turn.turn, turn);
    renderTurns();
  }

  function status(data) {
    setState(data.state);
    setMuted(data.muted);
    $("summary").textContent =
      `Up ${duration(data.uptime)} · ${data.turns} turn${data.turns === 1 ? "" : "s"} · ${data.errors} error${data.errors === 1 ? "" : "s"}`;
    const body = $("backends");
    body.replaceChildren();
    for (const [key, backend] of Object.entries(data.backends || {})) {
      const row = body.insertRow();
      row.insertCell().textContent = key;
      const health = row.insertCell();
      health.textContent = backend.health;
      health.className = `health-${backend.health}`;
    }
  }

  function refreshStatus() {
    fetch("api/status", { credentials: "same-origin", cache: "no-store" })
      .then((response) => (response.ok ? response.json() : null))
      .then((data) => { if (data) status(data); })
      .catch(() => {});
  }

  function setState(state) { $("state").textContent = state; }

  function setMuted(value) {
    muted = Boolean(value);
    $("muted").hidden = !muted;
    const button = $("mute");
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? "Unmute microphone" : "Mute microphone";
  }

  function connection(text, down) {
    const element = $("connection");
    element.textContent = text;
    element.classList.toggle("down", down);
  }

  function decibels(level) {
    return level > 0 ? Math.max(FLOOR_DB, 20 * Math.log10(level)) : FLOOR_DB;
  }

  function percentOf(db) { return ((db - FLOOR_DB) / -FLOOR_DB) * 100; }

  function levels(data) {
    if (!data) return;
    setState(data.state);
    setMuted(data.muted);
    const rms = decibels(data.input);
    const peak = decibels(data.peak);
    $("input-fill").style.width = `${percentOf(rms)}%`;
    $("input-peak").style.left = `${percentOf(peak)}%`;
    $("input-bar").setAttribute("aria-valuenow", rms.toFixed(1));
    $("input-value").textContent = `${rms.toFixed(0)} dBFS (peak ${peak.toFixed(0)})`;
    $("input-bar").setAttribute("aria-valuetext", $("input-value").textContent);
    $("input-value").dataset.rms = String(data.input);
    $("clipping").hidden = !data.clipping;
    for (const [label, wake] of Object.entries(data.wake || {})) wakeRow(label, wake);
  }

  function wakeRow(label, wake) {
    const id = `wake-${label}`;
    let row = document.getElementById(id);
    if (!row) {
      row = document.createElement("div");
      row.className = "row";
      row.id = id;
      const name = document.createElement("span");
      name.className = "label";
      name.id = `${id}-label`;
      name.textContent = label;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.setAttribute("role", "meter");
      bar.setAttribute("aria-labelledby", name.id);
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "1");
      bar.append(Object.assign(document.createElement("div"), { className: "fill" }),
                 Object.assign(document.createElement("div"), { className: "threshold", title: "threshold" }));
      const value = Object.assign(document.createElement("span"), { className: "value" });
      row.append(name, bar, value);
      $("wake").append(row);
    }
    const [, bar, value] = row.children;
    bar.children[0].style.width = `${Math.min(1, wake.score) * 100}%`;
    bar.children[1].style.left = `${Math.min(1, wake.threshold) * 100}%`;
    bar.setAttribute("aria-valuenow", String(wake.score));
    bar.classList.toggle("fired", wake.score >= wake.threshold);
    value.textContent = `${wake.score.toFixed(2)} / ${wake.threshold.toFixed(2)}`;
    bar.setAttribute("aria-valuetext", `score ${wake.score.toFixed(2)}, threshold ${wake.threshold.toFixed(2)}`);
    value.dataset.score = String(wake.score);
  }

  function entry(turn) {
    if (!turns.has(turn)) turns.set(turn, { turn });
    return turns.get(turn);
  }

  function onEvent(data) {
    const turn = data.turn;
    switch (data.event) {
      case "state_change": setState(data.new); break;
      case "muted": setMuted(data.muted); break;
      case "wake": if (turn != null) entry(turn).wake = { label: data.wake.label, score: data.wake.score }; break;
      case "transcript": if (turn != null && data.transcript.final) entry(turn).heard = data.transcript.text; break;
      case "reply": if (turn != null && data.reply.final) entry(turn).answered = data.reply.text; break;
      case "turn_end":
        entry(data.timeline.turn).timeline = data.timeline;
        renderTurns();
        refreshStatus();
        break;
      case "heartbeat": case "error": case "recovered": refreshStatus(); break;
      case "shutdown": connection("magoo is stopping", true); break;
      default: break;
    }
  }

  function renderTurns() {
    const done = [...turns.values()].filter((t) => t.timeline).sort((a, b) => b.turn - a.turn).slice(0, KEPT);
    for (const key of [...turns.keys()].sort((a, b) => a - b).slice(0, Math.max(0, turns.size - 2 * KEPT))) turns.delete(key);
    const list = $("turns");
    list.replaceChildren();
    for (const turn of done) {
      const item = document.createElement("li");
      item.value = turn.turn;
      const timeline = turn.timeline;
      const title = document.createElement("strong");
      title.textContent = `Turn ${turn.turn}: ${timeline.outcome}${timeline.error ? ` (${timeline.error})` : ""}`;
      item.append(title);
      if (turn.wake) line(item, "Wake word", `${turn.wake.label} (${Number(turn.wake.score).toFixed(2)})`);
      else if (timeline.follow_up) line(item, "Wake word", "none: a follow-up");
      if (turn.heard !== undefined) line(item, "Heard", turn.heard);
      if (turn.answered !== undefined) line(item, "Answered", turn.answered);
      const steps = STEPS.filter(([a, b]) => timeline[a] != null && timeline[b] != null)
        .map(([a, b, name]) => `${name} ${Math.round((timeline[b] - timeline[a]) * 1000)} ms`);
      if (timeline.ended != null) steps.push(`in all ${Math.round((timeline.ended - timeline.started) * 1000)} ms`);
      const timing = document.createElement("div");
      timing.className = "steps";
      timing.textContent = steps.join(" · ");
      item.append(timing);
      list.append(item);
    }
  }

  function line(parent, label, text) {
    const row = document.createElement("div");
    const name = document.createElement("span");
    name.textContent = `${label}: `;
    const value = document.createElement("span");
    value.textContent = text;
    row.append(name, value);
    parent.append(row);
  }

  function send(command, what) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      $("result").textContent = `${what}: not connected`;
      return;
    }
    const id = nextId++;
    asked.set(id, what);
    ws.send(JSON.stringify({ ...command, id }));
  }

  function onResult(data) {
    const what = asked.get(data.id) || "command";
    asked.delete(data.id);
    $("result").textContent = data.ok
      ? `${what}: done${data.said ? ` (${data.said})` : ""}`
      : `${what}: ${data.error}`;
  }

  function duration(seconds) {
    const s = Math.floor(seconds || 0);
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  $("listen").addEventListener("click", () => send({ command: "listen" }, "Listen"));
  $("stop").addEventListener("click", () => send({ command: "stop" }, "Stop"));
  $("mute").addEventListener("click", () => send({ command: muted ? "unmute" : "mute" }, muted ? "Unmute" : "Mute"));
  $("say-form").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const text = $("say-text").value.trim();
    if (!text) return;
    send({ command: "say", text }, `Say “${text.length > 40 ? `${text.slice(0, 40)}…` : text}”`);
    $("say-text").value = "";
  });
  connect();
})();
