// talkinghead web page: portrait, options (built from /api/options), video jobs, live sessions.
"use strict";

const SAMPLE_RATE = 16000;
const CHUNK_SAMPLES = 320;            // 20 ms of audio per WebSocket message
const JOB_POLL_MS = 500;
const JOB_KEY = "talkinghead.job";
const OPTIONS_KEY = "talkinghead.options";
const PLAYBACK_MARGIN_S = 0.06;       // extra delay of the synced voice + face beyond what frames need

const $ = (id) => document.getElementById(id);

const state = {
  portrait: null,       // Blob
  portraitName: "",
  audio: null,          // Blob
  audioName: "",
  optionDefs: [],
  values: {},           // option name -> value the user changed
  limits: {},
  tts: false,
};

// ------------------------------------------------------------------------------------------------
// helpers
// ------------------------------------------------------------------------------------------------

async function fetchJson(url, init) {
  const response = await fetch(url, init);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && (body.detail || body.error);
    const error = new Error(typeof detail === "string" ? detail : `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.code = body && body.error;
    throw error;
  }
  return body;
}

function setStatus(element, text, kind) {
  element.textContent = text;
  element.className = element.className.replace(/\b(error|ok|busy)\b/g, "").trim();
  if (kind) element.classList.add(kind);
}

// ------------------------------------------------------------------------------------------------
// portrait
// ------------------------------------------------------------------------------------------------

function setPortrait(blob, name) {
  state.portrait = blob;
  state.portraitName = name;
  const preview = $("portrait-preview");
  if (preview.dataset.url) URL.revokeObjectURL(preview.dataset.url);
  preview.dataset.url = URL.createObjectURL(blob);
  preview.src = preview.dataset.url;
  $("portrait-name").textContent = name;
  drawPortraitOnStage();
}

async function useDemoPortrait() {
  const response = await fetch("/api/demo/portrait");
  setPortrait(await response.blob(), "demo portrait (astronaut.png)");
}

async function drawPortraitOnStage() {
  if (live.socket || !state.portrait) return;
  const bitmap = await createImageBitmap(state.portrait);
  const canvas = $("live-canvas");
  const scale = Math.min(1, 512 / Math.max(bitmap.width, bitmap.height));
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
}

// ------------------------------------------------------------------------------------------------
// options: one control per option from /api/options (the config dataclasses)
// ------------------------------------------------------------------------------------------------

function buildOptions() {
  const common = $("options-common"), more = $("options-more");
  common.textContent = "";
  more.textContent = "";
  const commonDefs = state.optionDefs.filter((o) => o.common);
  const order = ["motion.seed", "motion.blink_rate", "motion.head_amplitude", "motion.mouth_amplitude", "motion.lookahead_frames"];
  commonDefs.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  for (const def of commonDefs) common.appendChild(optionControl(def));
  let section = null;
  for (const def of state.optionDefs.filter((o) => !o.common)) {  // grouped by config dataclass
    if (def.section !== section) {
      section = def.section;
      const heading = document.createElement("h3");
      heading.textContent = section ? section.charAt(0).toUpperCase() + section.slice(1).replace(/\./g, " › ") : "Output";
      more.appendChild(heading);
    }
    more.appendChild(optionControl(def));
  }
}

function optionControl(def) {
  const row = document.createElement("div");
  row.className = "option";
  row.title = def.help || "";
  const label = document.createElement("label");
  label.textContent = def.label;
  const id = "opt-" + def.name.replace(/\./g, "-");
  label.htmlFor = id;
  row.appendChild(label);
  const current = def.name in state.values ? state.values[def.name] : def.default;
  let input;
  if (def.kind === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = !!current;
    input.addEventListener("change", () => setOption(def, input.checked));
  } else if (def.kind === "choice") {
    input = document.createElement("select");
    const liveValue = livePreset(def);
    const choices = liveValue === undefined ? def.choices : [""].concat(def.choices);
    for (const choice of choices) {
      const opt = document.createElement("option");
      opt.value = choice;
      opt.textContent = choice === "" ? `default (video: ${def.default}, live: ${liveValue})` : choice;
      input.appendChild(opt);
    }
    input.value = def.name in state.values ? state.values[def.name] : (liveValue === undefined ? def.default : "");
    input.addEventListener("change", () => setOption(def, input.value === "" ? undefined : input.value));
  } else if (def.kind === "text") {
    input = document.createElement("input");
    input.type = "text";
    input.value = current === null ? "" : current;
    if (def.nullable) input.placeholder = "not set";
    input.addEventListener("change", () => setOption(def, input.value === "" && def.nullable ? null : input.value));
  } else {
    const slider = def.minimum !== null && def.maximum !== null && def.maximum - def.minimum <= 100;
    input = document.createElement("input");
    input.type = slider ? "range" : "number";
    if (def.minimum !== null) input.min = def.minimum;
    if (def.maximum !== null) input.max = def.maximum;
    input.step = def.kind === "int" ? "1" : (slider ? String((def.maximum - def.minimum) / 100) : "any");
    input.value = current === null ? "" : current;
    if (def.nullable) input.placeholder = "not set";
    const shown = document.createElement("output");
    shown.textContent = current;
    input.addEventListener("input", () => {
      shown.textContent = input.value;
      if (input.value === "" && def.nullable) return setOption(def, null);
      setOption(def, def.kind === "int" ? parseInt(input.value, 10) : parseFloat(input.value));
    });
    row.appendChild(input);
    input.id = id;
    if (slider) row.appendChild(shown);
    return row;
  }
  input.id = id;
  row.appendChild(input);
  return row;
}

// The live preset's value of an option where it differs from the default (undefined elsewhere).
function livePreset(def) {
  const live = (state.presets || {}).live || {};
  return def.name in live ? live[def.name] : undefined;
}

function setOption(def, value) {
  // A value equal to the default is dropped, unless live sessions start from another value: then
  // choosing the default is a real choice (e.g. the speech mouth in a live session).
  const pinned = livePreset(def) !== undefined;
  if (value === undefined || Number.isNaN(value) || (value === def.default && !pinned)) delete state.values[def.name];
  else state.values[def.name] = value;
  localStorage.setItem(OPTIONS_KEY, JSON.stringify(state.values));
}

async function loadOptions() {
  const info = await fetchJson("/api/options");
  state.optionDefs = info.options.filter((o) => !o.needs_driving);  // the page uploads no driving video
  state.presets = info.presets || {};
  state.limits = info.limits;
  state.tts = info.tts;
  const known = new Set(state.optionDefs.map((o) => o.name));
  try {
    const saved = JSON.parse(localStorage.getItem(OPTIONS_KEY) || "{}");
    for (const [name, value] of Object.entries(saved)) if (known.has(name)) state.values[name] = value;
  } catch (e) { /* ignore a corrupt saved value */ }
  buildOptions();
  $("tts-note").textContent = info.tts ? "" : "This server has no text-to-speech module: text jobs are refused. Upload audio instead.";
}

// ------------------------------------------------------------------------------------------------
// video jobs (REST): the job id is kept in the URL and localStorage, so a refresh finds it again
// ------------------------------------------------------------------------------------------------

let pollTimer = null;

function rememberJob(id) {
  if (id) {
    localStorage.setItem(JOB_KEY, id);
    history.replaceState(null, "", "#job=" + id);
  } else {
    localStorage.removeItem(JOB_KEY);
    history.replaceState(null, "", location.pathname);
  }
}

async function submitJob() {
  const kind = document.querySelector("input[name=input-kind]:checked").value;
  const form = new FormData();
  if (!state.portrait) return showJobError("choose a portrait first");
  form.append("portrait", state.portrait, "portrait");
  if (kind === "audio") {
    if (!state.audio) return showJobError("choose an audio file (or use the demo speech)");
    form.append("audio", state.audio, "audio");
  } else {
    const text = $("text").value.trim();
    if (!text) return showJobError("type some text first");
    form.append("text", text);
  }
  form.append("options", JSON.stringify(state.values));
  $("generate").disabled = true;
  showJob({status: "uploading", progress: 0});
  try {
    const job = await fetchJson("/api/jobs", {method: "POST", body: form});
    rememberJob(job.id);
    showJob(job);
    pollJob(job.id);
  } catch (error) {
    showJobError(error.status === 503 ? "server busy: " + error.message : error.message);
  } finally {
    $("generate").disabled = false;
  }
}

function pollJob(id) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => {
    try {
      const job = await fetchJson("/api/jobs/" + id);
      showJob(job);
      if (job.status === "queued" || job.status === "running") pollJob(id);
    } catch (error) {
      if (error.status === 404) { rememberJob(null); showJobError("that job no longer exists (expired or deleted)"); }
      else pollJob(id);  // the server may be restarting: keep trying
    }
  }, JOB_POLL_MS);
}

function showJob(job) {
  $("job").hidden = false;
  const progress = $("job-progress"), status = $("job-status"), video = $("job-video");
  progress.value = job.progress || 0;
  const frames = job.frames_total ? ` (${job.frames_done}/${job.frames_total} frames)` : "";
  const text = {
    uploading: "uploading…", queued: "waiting in the queue…", running: "generating" + frames,
    done: "done", failed: "failed: " + job.error,
  }[job.status] || job.status;
  setStatus(status, text, job.status === "failed" ? "error" : (job.status === "done" ? "ok" : ""));
  $("job-delete").hidden = !job.id;
  $("job-delete").dataset.id = job.id || "";
  if (job.status === "done" && job.video_url) {
    if (video.dataset.src !== job.video_url) {
      video.dataset.src = job.video_url;
      video.src = job.video_url;
    }
    video.hidden = false;
    $("job-download").href = job.video_url;
    $("job-download").download = "talkinghead.mp4";
    $("job-download").hidden = false;
  } else {
    video.hidden = true;
    video.removeAttribute("src");
    delete video.dataset.src;
    $("job-download").hidden = true;
  }
}

function showJobError(message) {
  $("job").hidden = false;
  $("job-progress").value = 0;
  setStatus($("job-status"), message, "error");
}

async function deleteJob() {
  const id = $("job-delete").dataset.id;
  if (!id) return;
  clearTimeout(pollTimer);
  try { await fetchJson("/api/jobs/" + id, {method: "DELETE"}); } catch (e) { /* already gone */ }
  rememberJob(null);
  $("job").hidden = true;
  $("job-video").removeAttribute("src");
}

function resumeJob() {
  const fromUrl = (location.hash.match(/job=([A-Za-z0-9_-]+)/) || [])[1];
  const id = fromUrl || localStorage.getItem(JOB_KEY);
  if (!id) return;
  rememberJob(id);
  showJob({id, status: "queued", progress: 0});
  pollJob(id);
}

// ------------------------------------------------------------------------------------------------
// live session (WebSocket): microphone PCM out, timestamped frames in, shown on one clock
// ------------------------------------------------------------------------------------------------

const live = {
  socket: null, context: null, stream: null, node: null, sink: null,
  pending: new Int16Array(CHUNK_SAMPLES), pendingLength: 0,
  samplesSent: 0, chunkSentAt: new Map(), nextChunk: 0,
  captureStart: null,            // AudioContext time of sample 0
  delay: 0.2,                    // seconds from capture to display/playback when the voice is played
  queue: [],                     // decoded frames waiting for their display time
  playback: false,
  framesReceived: 0, framesShown: 0, lastIndex: -1, arrivals: [], roundTrips: [],
  decodeChain: Promise.resolve(), resampleCarry: 0, lastStats: null, ended: false,
};
window.talkingheadLive = live;  // read by tests and handy in the console

function frameHeader(buffer) {
  const view = new DataView(buffer);
  return {index: view.getUint32(0, true), chunk: view.getUint32(4, true), pts: view.getFloat64(8, true)};
}

async function startLive() {
  if (live.socket) return;
  if (!state.portrait) return setStatus($("live-status"), "choose a portrait first", "error");
  Object.assign(live, {queue: [], framesReceived: 0, framesShown: 0, lastIndex: -1, arrivals: [], roundTrips: [],
                       samplesSent: 0, pendingLength: 0, nextChunk: 0, chunkSentAt: new Map(), captureStart: null,
                       resampleCarry: 0, lastStats: null, ended: false, decodeChain: Promise.resolve()});
  live.playback = $("live-playback").checked;
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
  setStatus($("live-status"), "connecting…");
  try {
    live.stream = await navigator.mediaDevices.getUserMedia(
      {audio: {channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true}});
  } catch (error) {
    stopLive();
    return setStatus($("live-status"), "no microphone: " + error.message, "error");
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/live`);
  live.socket = socket;
  socket.binaryType = "arraybuffer";
  socket.onopen = async () => {
    socket.send(JSON.stringify({type: "start", options: state.values, audio_format: "s16",
                                sample_rate: SAMPLE_RATE, image_format: "jpeg", quality: 80}));
    // set before the await: a "busy" answer may arrive meanwhile, and must not be overwritten
    setStatus($("live-status"), "preparing the portrait…");
    const portrait = await state.portrait.arrayBuffer();
    if (socket.readyState === WebSocket.OPEN) socket.send(portrait);
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") return onLiveMessage(JSON.parse(event.data));
    onLiveFrame(event.data);
  };
  socket.onclose = (event) => {
    if (live.socket !== socket) return;
    const reason = event.reason || (event.code === 1000 ? "" : `connection closed (${event.code})`);
    if (reason) setStatus($("live-status"), reason.startsWith("busy") ? "Server busy — " + reason : reason,
                          event.code === 1000 ? "" : (event.code === 1013 ? "busy" : "error"));
    else if (live.ended) setStatus($("live-status"), `stopped after ${live.framesReceived} frames`);
    teardownLive();
  };
}

async function onLiveMessage(message) {
  if (message.type === "ready") {
    const canvas = $("live-canvas");
    canvas.width = message.width;
    canvas.height = message.height;
    live.decisionDelay = message.decision_delay_ms / 1000;
    live.delay = live.decisionDelay + 0.1 + PLAYBACK_MARGIN_S;
    $("stat-delay").textContent = `${Math.round(message.decision_delay_ms)} ms (${message.lookahead_frames} fr)`;
    try {
      await startCapture();
    } catch (error) {
      setStatus($("live-status"), "microphone failed: " + error.message, "error");
      return stopLive();
    }
    setStatus($("live-status"), "live: talk now", "ok");
    $("live-badge").hidden = false;
    requestAnimationFrame(showFrames);
  } else if (message.type === "stats") {
    live.lastStats = message;
    if (message.latency_ms_median !== null) $("stat-latency").textContent = `${Math.round(message.latency_ms_median)} ms`;
  } else if (message.type === "end") {
    live.ended = true;
    live.lastStats = message;
  } else if (message.type === "error") {
    setStatus($("live-status"), (message.error === "busy" ? "Server busy — " : "") + message.detail,
              message.error === "busy" ? "busy" : "error");
  }
}

async function startCapture() {
  let context;
  try { context = new AudioContext({sampleRate: SAMPLE_RATE}); } catch (e) { context = new AudioContext(); }
  live.context = context;
  const source = context.createMediaStreamSource(live.stream);
  const sink = context.createGain();
  sink.gain.value = 0;  // keeps the capture node pulled without playing the raw microphone
  sink.connect(context.destination);
  live.sink = sink;
  if (context.audioWorklet) {
    await context.audioWorklet.addModule("/static/capture-worklet.js");
    const node = new AudioWorkletNode(context, "talkinghead-capture");
    node.port.onmessage = (event) => onCapture(event.data.samples, event.data.time);
    source.connect(node).connect(sink);
    live.node = node;
  } else {  // older browsers
    const node = context.createScriptProcessor(1024, 1, 1);
    node.onaudioprocess = (event) => onCapture(event.inputBuffer.getChannelData(0).slice(0), event.playbackTime);
    source.connect(node).connect(sink);
    live.node = node;
  }
  if (context.state === "suspended") await context.resume();
}

function resampleTo16k(samples, rate) {
  if (rate === SAMPLE_RATE) return samples;
  const step = rate / SAMPLE_RATE;
  const out = [];
  let position = live.resampleCarry;
  for (; position < samples.length - 1; position += step) {
    const i = Math.floor(position), frac = position - i;
    out.push(samples[i] * (1 - frac) + samples[i + 1] * frac);
  }
  live.resampleCarry = position - samples.length;  // keeps the phase across blocks
  return Float32Array.from(out);
}

function onCapture(block, time) {
  if (!live.socket || live.socket.readyState !== WebSocket.OPEN || live.stopping) return;
  const samples = resampleTo16k(block, live.context.sampleRate);
  if (live.captureStart === null) live.captureStart = time;
  for (let i = 0; i < samples.length; i++) {
    live.pending[live.pendingLength++] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767)));
    if (live.pendingLength === CHUNK_SAMPLES) sendChunk();
  }
}

function sendChunk() {
  const chunk = live.pending.slice(0, live.pendingLength);
  live.pendingLength = 0;
  live.chunkSentAt.set(live.nextChunk++, performance.now());
  if (live.chunkSentAt.size > 2000) live.chunkSentAt.delete(live.chunkSentAt.keys().next().value);
  live.socket.send(chunk.buffer);
  if (live.playback) playChunk(chunk, live.samplesSent);
  live.samplesSent += chunk.length;
}

function playChunk(chunk, offset) {
  // the voice is scheduled on the same clock as the frames: capture time + delay
  const context = live.context;
  const buffer = context.createBuffer(1, chunk.length, SAMPLE_RATE);
  const data = buffer.getChannelData(0);
  for (let i = 0; i < chunk.length; i++) data[i] = chunk[i] / 32768;
  const node = context.createBufferSource();
  node.buffer = buffer;
  node.connect(context.destination);
  const when = live.captureStart + offset / SAMPLE_RATE + live.delay;
  node.start(Math.max(when, context.currentTime));
}

function onLiveFrame(buffer) {
  const header = frameHeader(buffer);
  const arrived = performance.now();
  live.framesReceived += 1;
  live.lastIndex = header.index;
  live.arrivals.push(arrived);
  if (live.arrivals.length > 100) live.arrivals.shift();
  const sentAt = live.chunkSentAt.get(header.chunk);
  if (sentAt !== undefined) {
    live.roundTrips.push(arrived - sentAt);
    if (live.roundTrips.length > 250) live.roundTrips.shift();
  }
  const blob = new Blob([new Uint8Array(buffer, 16)], {type: "image/jpeg"});
  // decode in order, then queue for display at its time
  live.decodeChain = live.decodeChain.then(() => createImageBitmap(blob)).then((bitmap) => {
    live.queue.push({...header, bitmap});
  }).catch(() => {});
  updateLiveStats();
}

function showFrames() {
  if (!live.socket && live.queue.length === 0) return;
  const context = live.context;
  let frame = null;
  if (live.playback && context && live.captureStart !== null) {
    // show the newest frame whose time has come on the audio clock; late frames raise the delay
    const now = context.currentTime;
    while (live.queue.length && live.captureStart + live.queue[0].pts + live.delay <= now) {
      const next = live.queue.shift();
      const late = now - (live.captureStart + next.pts + live.delay);
      if (late > 0.04) live.delay += Math.min(late, 0.1) / 4;  // slowly re-sync if frames come late
      if (frame) frame.bitmap.close();
      frame = next;
    }
  } else {
    while (live.queue.length) {  // no voice to match: show the newest frame at once
      if (frame) frame.bitmap.close();
      frame = live.queue.shift();
    }
  }
  if (frame) {
    const canvas = $("live-canvas");
    canvas.getContext("2d").drawImage(frame.bitmap, 0, 0, canvas.width, canvas.height);
    frame.bitmap.close();
    live.framesShown += 1;
  }
  requestAnimationFrame(showFrames);
}

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function updateLiveStats() {
  $("stat-frames").textContent = live.framesReceived;
  const a = live.arrivals;
  if (a.length > 10) $("stat-fps").textContent = ((a.length - 1) * 1000 / (a[a.length - 1] - a[0])).toFixed(1);
  const rt = median(live.roundTrips);
  if (rt !== null) $("stat-roundtrip").textContent = `${Math.round(rt)} ms`;
}

function stopLive() {
  const socket = live.socket;
  live.stopping = true;
  if (live.pendingLength && socket && socket.readyState === WebSocket.OPEN) sendChunk();
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({type: "stop"}));  // the server sends the last frames, then closes
    setStatus($("live-status"), "finishing…");
  } else {
    teardownLive();
  }
  stopCapture();
}

function stopCapture() {
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  if (live.node) live.node.disconnect();
  live.stream = null;
  live.node = null;
}

function teardownLive() {
  stopCapture();
  if (live.context) {
    const context = live.context;
    setTimeout(() => context.close(), 1000 * (live.delay + 0.5));  // let scheduled voice finish
  }
  live.context = null;
  live.socket = null;
  live.stopping = false;
  $("live-badge").hidden = true;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
}

// ------------------------------------------------------------------------------------------------
// page
// ------------------------------------------------------------------------------------------------

function selectTab(name) {
  for (const button of document.querySelectorAll(".tabs button")) button.classList.toggle("active", button.dataset.tab === name);
  $("tab-video").hidden = name !== "video";
  $("tab-live").hidden = name !== "live";
  if (name === "live") drawPortraitOnStage();
}

async function refreshServerStatus() {
  try {
    const s = await fetchJson("/api/status");
    setStatus($("server-status"), `live sessions ${s.live_sessions}/${s.max_live_sessions} · jobs waiting ${s.queued_jobs}/${s.max_queued_jobs}`,
              s.live_sessions >= s.max_live_sessions ? "busy" : "ok");
  } catch (error) {
    setStatus($("server-status"), "server unreachable", "error");
  }
}

function init() {
  for (const button of document.querySelectorAll(".tabs button")) button.addEventListener("click", () => selectTab(button.dataset.tab));
  $("portrait-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) setPortrait(file, file.name);
  });
  $("demo-portrait").addEventListener("click", useDemoPortrait);
  $("audio-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) { state.audio = file; $("audio-name").textContent = file.name; }
  });
  $("demo-speech").addEventListener("click", async () => {
    state.audio = await (await fetch("/api/demo/speech")).blob();
    $("audio-name").textContent = "demo speech (demo_speech.wav, 8 s)";
  });
  for (const radio of document.querySelectorAll("input[name=input-kind]")) {
    radio.addEventListener("change", () => {
      const text = document.querySelector("input[name=input-kind]:checked").value === "text";
      $("text-input").hidden = !text;
      $("audio-input").hidden = text;
    });
  }
  $("generate").addEventListener("click", submitJob);
  $("job-delete").addEventListener("click", deleteJob);
  $("options-reset").addEventListener("click", () => {
    state.values = {};
    localStorage.removeItem(OPTIONS_KEY);
    buildOptions();
  });
  $("live-start").addEventListener("click", startLive);
  $("live-stop").addEventListener("click", stopLive);
  loadOptions().catch((error) => setStatus($("server-status"), "options: " + error.message, "error"));
  useDemoPortrait();
  resumeJob();
  refreshServerStatus();
  setInterval(refreshServerStatus, 5000);
}

init();
