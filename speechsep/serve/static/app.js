// speechsep live separation page.
//
// Audio path: microphone (or a dropped file) -> AudioWorklet capture (128-sample blocks) -> 16 ms
// frames -> WebSocket /ws/separate (protocol: speechsep/serve/protocol.py) -> separated frames ->
// one scheduled AudioBufferSourceNode per source and frame (each source on its own gain and pan),
// plus a scrolling spectrogram and a level meter per source.
//
// Test hooks: with ?record=1 (or ?autostart=mic) the page keeps every sample it sent and received;
// window.speechsepTest holds the session's progress and window.speechsepSamples() returns them as
// base64 float32. ?autostart=mic&seconds=N streams the microphone for N seconds, then stops.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const FRAME_MS = 16;
  const RECORD = params.has("record") || params.has("autostart");
  const $ = (id) => document.getElementById(id);
  const COLORS = ["#b0bec5", "#4fc3f7", "#ffb74d", "#aed581", "#f06292", "#9575cd"];

  const test = {
    state: "idle", ready: null, end: null, errors: [], stats: null,
    framesSent: 0, framesReceived: 0, sent: [], received: [],
  };
  window.speechsepTest = test;
  window.speechsepSamples = () => ({
    sampleRate: ctx ? ctx.sampleRate : 0,
    sent: toBase64(concat(test.sent)),
    received: test.received.map((chunks) => toBase64(concat(chunks))),
  });

  // ---------------------------------------------------------------- helpers
  function concat(chunks) {
    const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    return out;
  }
  function toBase64(f32) {
    const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }
  function percentile(values, p) {
    if (!values.length) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  }
  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").style.color = isError ? "#ef5350" : "";
  }
  function wavBlob(samples, rate) { // 16-bit PCM mono WAV, for the offline downloads
    const buf = new ArrayBuffer(44 + samples.length * 2);
    const v = new DataView(buf);
    const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
    str(0, "RIFF"); v.setUint32(4, 36 + samples.length * 2, true); str(8, "WAVE"); str(12, "fmt ");
    v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true);
    v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, "data");
    v.setUint32(40, samples.length * 2, true);
    for (let i = 0; i < samples.length; i++) {
      v.setInt16(44 + 2 * i, Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767))), true);
    }
    return new Blob([buf], { type: "audio/wav" });
  }

  // In-place radix-2 FFT (re, im of power-of-two length).
  function fft(re, im) {
    const n = re.length;
    for (let i = 1, j = 0; i < n; i++) {
      let bit = n >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
    }
    for (let len = 2; len <= n; len <<= 1) {
      const ang = (-2 * Math.PI) / len;
      for (let i = 0; i < n; i += len) {
        for (let k = 0; k < len / 2; k++) {
          const wr = Math.cos(ang * k), wi = Math.sin(ang * k);
          const a = i + k, b = a + len / 2;
          const xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
          re[b] = re[a] - xr; im[b] = im[a] - xi; re[a] += xr; im[a] += xi;
        }
      }
    }
  }

  // ------------------------------------------------------------------ tracks
  // One row per signal: spectrogram (scrolls one column per FFT_SIZE samples), level meter, and for
  // separated sources a volume slider and pan so each speaker can be heard on its own.
  const FFT_SIZE = 512;
  const HANN = Float32Array.from({ length: FFT_SIZE }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / FFT_SIZE));
  // a full-scale sine peaks at |X| = sum(window) / 2: dividing by its square puts the bins in dBFS
  const FULL_SCALE = (HANN.reduce((a, b) => a + b, 0) / 2) ** 2;

  class Track {
    constructor(name, color, index) {
      this.index = index;
      const row = document.createElement("div");
      row.className = "track";
      row.innerHTML = `<div class="label"><b style="color:${color}">${name}</b></div>
        <canvas class="spec" width="640" height="110"></canvas><canvas class="meter" width="26" height="110"></canvas>`;
      $("tracks").appendChild(row);
      this.label = row.querySelector(".label");
      this.spec = row.querySelector("canvas.spec");
      this.meter = row.querySelector("canvas.meter");
      this.buffer = new Float32Array(0);
      this.columns = [];
      this.level = -100;
      this.peak = -100;
      this.volume = 1;
      if (index > 0) {
        const slider = document.createElement("input");
        Object.assign(slider, { type: "range", min: 0, max: 1.5, step: 0.05, value: 1, title: "volume" });
        slider.oninput = () => { this.volume = Number(slider.value); if (this.gain) this.gain.gain.value = this.volume; };
        this.label.appendChild(slider);
      }
    }
    connect(ctx, count) {
      // each speaker gets its own gain and a place in the stereo image
      this.gain = ctx.createGain();
      this.gain.gain.value = this.volume;
      const pan = ctx.createStereoPanner();
      pan.pan.value = count > 1 ? -0.8 + (1.6 * (this.index - 1)) / (count - 1) : 0;
      this.gain.connect(pan).connect(ctx.destination);
    }
    push(samples, maxFreq, rate) {
      let sum = 0;
      for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
      if (samples.length) this.level = 10 * Math.log10(sum / samples.length + 1e-10);
      this.peak = Math.max(this.level, this.peak - 0.5);
      const joined = new Float32Array(this.buffer.length + samples.length);
      joined.set(this.buffer); joined.set(samples, this.buffer.length);
      let o = 0;
      const bins = Math.min(FFT_SIZE / 2, Math.round((maxFreq / rate) * FFT_SIZE));
      for (; o + FFT_SIZE <= joined.length; o += FFT_SIZE) {
        const re = new Float32Array(FFT_SIZE), im = new Float32Array(FFT_SIZE);
        for (let i = 0; i < FFT_SIZE; i++) re[i] = joined[o + i] * HANN[i];
        fft(re, im);
        const col = new Float32Array(bins);
        for (let k = 0; k < bins; k++) col[k] = 10 * Math.log10((re[k] * re[k] + im[k] * im[k]) / FULL_SCALE + 1e-12);
        this.columns.push(col);
      }
      this.buffer = joined.slice(o);
      if (this.columns.length > 400) this.columns.splice(0, this.columns.length - 400);
    }
    draw() {
      const g = this.spec.getContext("2d");
      const w = this.spec.width, h = this.spec.height;
      const n = this.columns.length;
      if (n) {
        g.drawImage(this.spec, -n, 0); // scroll left by the new columns
        for (let c = 0; c < n; c++) {
          const col = this.columns[c];
          const x = w - n + c;
          for (let y = 0; y < h; y++) {
            const v = col[Math.floor(((h - 1 - y) / h) * col.length)];
            const t = Math.max(0, Math.min(1, (v + 90) / 80)); // -90..-10 dBFS
            g.fillStyle = `hsl(${260 - 220 * t}, 90%, ${8 + 55 * t}%)`;
            g.fillRect(x, y, 1, 1);
          }
        }
        this.columns = [];
      }
      const m = this.meter.getContext("2d");
      const mh = this.meter.height;
      m.clearRect(0, 0, this.meter.width, mh);
      const frac = (db) => Math.max(0, Math.min(1, (db + 60) / 60));
      const lv = frac(this.level) * mh;
      m.fillStyle = this.level > -6 ? "#ef5350" : this.level > -20 ? "#ffb74d" : "#66bb6a";
      m.fillRect(4, mh - lv, this.meter.width - 8, lv);
      m.fillStyle = "#fff";
      m.fillRect(4, mh - frac(this.peak) * mh, this.meter.width - 8, 2);
    }
  }

  let tracks = [];
  function buildTracks(count) {
    $("tracks").innerHTML = "";
    tracks = [new Track("mixture (sent)", COLORS[0], 0)];
    for (let i = 1; i <= count; i++) tracks.push(new Track(`speaker ${i}`, COLORS[i % COLORS.length], i));
  }
  function drawLoop() {
    for (const t of tracks) t.draw();
    requestAnimationFrame(drawLoop);
  }

  // ----------------------------------------------------------------- session
  let ctx = null, ws = null, capture = null, input = null, mic = null;
  let frameSamples = 0, pending = [], pendingLen = 0, seq = 0, sentSamples = 0, stopAfter = Infinity;
  let sendTimes = [], sentEnds = [], frameLat = [], sampleLat = [], playAt = 0, ready = null, stopping = null;

  async function ensureContext() {
    if (!ctx) {
      const rate = Number(params.get("rate")) || undefined;
      ctx = new AudioContext({ latencyHint: "interactive", ...(rate ? { sampleRate: rate } : {}) });
      await ctx.audioWorklet.addModule("/static/capture-worklet.js");
    }
    if (ctx.state === "suspended") await ctx.resume();
    return ctx;
  }

  function resetSession() {
    pending = []; pendingLen = 0; seq = 0; sentSamples = 0;
    sendTimes = []; sentEnds = []; frameLat = []; sampleLat = []; playAt = 0;
    test.sent = []; test.received = []; test.errors = []; test.end = null; test.stats = null;
    test.framesSent = 0; test.framesReceived = 0;
  }

  async function openSession() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/separate`;
    ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("cannot connect")); });
    ws.send(JSON.stringify({ type: "start", sample_rate: ctx.sampleRate, format: "f32" }));
    ready = await new Promise((resolve, reject) => {
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === "ready") resolve(msg); else reject(new Error(msg.message || msg.type));
      };
      ws.onclose = () => reject(new Error("the server closed the connection"));
    });
    test.ready = ready;
    test.received = Array.from({ length: ready.num_sources }, () => []);
    if (tracks.length !== ready.num_sources + 1) buildTracks(ready.num_sources);
    for (const t of tracks.slice(1)) t.connect(ctx, ready.num_sources);
    frameSamples = Math.round((ctx.sampleRate * FRAME_MS) / 1000);
    ws.onmessage = onMessage;
    ws.onclose = () => { if (test.state === "running" || test.state === "stopping") finish("connection closed"); };
    $("m-algo").textContent = `${ready.latency_ms.toFixed(1)} + ${ready.resampler_delay_ms.toFixed(1)} ms`;
  }

  function sendFrame(frame) {
    const buf = new ArrayBuffer(4 + 4 * frame.length);
    new DataView(buf).setUint32(0, seq, true);
    new Float32Array(buf, 4).set(frame);
    sendTimes.push(performance.now());
    sentSamples += frame.length;
    sentEnds.push(sentSamples);
    ws.send(buf);
    seq += 1;
    test.framesSent = seq;
    if (RECORD) test.sent.push(frame);
    tracks[0].push(frame, ready.model_sample_rate / 2, ctx.sampleRate);
  }

  function onCapture(block) {
    if (test.state !== "running") return;
    pending.push(block); pendingLen += block.length;
    while (pendingLen >= frameSamples) {
      const all = concat(pending);
      sendFrame(all.slice(0, frameSamples));
      const rest = all.slice(frameSamples);
      pending = rest.length ? [rest] : []; pendingLen = rest.length;
      if (sentSamples >= stopAfter) { stop(); return; }
    }
  }

  function onMessage(ev) {
    if (typeof ev.data === "string") {
      const msg = JSON.parse(ev.data);
      if (msg.type === "stats") { test.stats = msg; showServerStats(msg); }
      else if (msg.type === "error") { test.errors.push(msg); setStatus(`server: ${msg.message}`, true); }
      else if (msg.type === "end") { test.end = msg.stats; showServerStats(msg.stats); finish("done"); }
      return;
    }
    const now = performance.now();
    const v = new DataView(ev.data);
    const frameSeq = v.getUint32(0, true), start = v.getUint32(4, true), count = v.getUint16(8, true);
    const samples = new Float32Array(ev.data, 16);
    const m = samples.length / count;
    test.framesReceived += 1;
    if (frameSeq < sendTimes.length) frameLat.push(now - sendTimes[frameSeq]);
    // the input frame that holds the same stream position as this frame's last sample
    const last = start + m - 1;
    let lo = 0, hi = sentEnds.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (sentEnds[mid] <= last) lo = mid + 1; else hi = mid; }
    if (lo < sendTimes.length) sampleLat.push(now - sendTimes[lo]);
    if (frameLat.length > 500) frameLat.splice(0, 250);
    if (sampleLat.length > 500) sampleLat.splice(0, 250);
    // a small jitter margin: the resamplers deliver in bursts
    playAt = Math.max(playAt, ctx.currentTime + 0.04);
    for (let c = 0; c < count; c++) {
      const src = samples.slice(c * m, (c + 1) * m);
      if (RECORD) test.received[c].push(src);
      tracks[c + 1].push(src, ready.model_sample_rate / 2, ctx.sampleRate);
      if (m > 0) {
        const buf = ctx.createBuffer(1, m, ctx.sampleRate);
        buf.copyToChannel(src, 0);
        const node = ctx.createBufferSource();
        node.buffer = buf;
        node.connect(tracks[c + 1].gain);
        node.start(playAt);
      }
    }
    playAt += m / ctx.sampleRate;
  }

  function showServerStats(s) {
    $("m-rtf").textContent = s.rtf.toFixed(3);
    $("m-drop").textContent = `${s.dropped_in} / ${s.dropped_out}, ${s.rejected}`;
    $("m-sec").textContent = `${s.seconds_in.toFixed(1)} s`;
  }

  function showLatency() {
    const fmt = (xs) => (xs.length ? `${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 95).toFixed(1)} ms` : "-");
    $("m-frame").textContent = fmt(frameLat);
    $("m-sample").textContent = fmt(sampleLat);
  }

  async function begin(connectSource) {
    if (test.state === "running" || test.state === "stopping") return;
    try {
      await ensureContext();
      resetSession();
      await openSession();
      capture = new AudioWorkletNode(ctx, "speechsep-capture", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: "explicit" });
      capture.port.onmessage = (ev) => onCapture(ev.data);
      const silent = ctx.createGain();
      silent.gain.value = 0; // the worklet must be pulled by the graph, but its input is not for the ears
      capture.connect(silent).connect(ctx.destination);
      input = await connectSource(capture);
      test.state = "running";
      $("mic").disabled = true; $("stop").disabled = false;
      setStatus("streaming");
    } catch (err) {
      test.state = "error";
      test.errors.push({ code: "client", message: String(err.message || err) });
      setStatus(String(err.message || err), true);
      cleanupAudio();
    }
  }

  async function startMic() {
    const seconds = Number(params.get("seconds"));
    await ensureContext();
    stopAfter = seconds > 0 ? Math.round(seconds * ctx.sampleRate) : Infinity;
    await begin(async (node) => {
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      const src = ctx.createMediaStreamSource(mic);
      src.connect(node);
      return src;
    });
  }

  async function streamFile(file) {
    await ensureContext();
    const decoded = await ctx.decodeAudioData(await file.arrayBuffer());
    // stop once every sample of the file is sent; "ended" fires while the worklet's last blocks are
    // still on their way to this thread, so it is only a fallback (a block lost in the graph)
    stopAfter = decoded.length;
    await begin(async (node) => {
      const src = ctx.createBufferSource();
      src.buffer = decoded;
      src.connect(node);
      src.onended = () => setTimeout(() => { if (test.state === "running") stop(); }, 500);
      src.start();
      return src;
    });
  }

  async function separateOffline(file) {
    setStatus(`uploading ${file.name}...`);
    const resp = await fetch("/api/separate", { method: "POST", body: file });
    if (!resp.ok) { setStatus(`upload failed: ${(await resp.json()).detail || resp.status}`, true); return; }
    await ensureContext();
    const decoded = await ctx.decodeAudioData(await resp.arrayBuffer());
    const list = $("download-list");
    list.innerHTML = "";
    for (let c = 0; c < decoded.numberOfChannels; c++) {
      const url = URL.createObjectURL(wavBlob(decoded.getChannelData(c), decoded.sampleRate));
      const li = document.createElement("li");
      li.innerHTML = `<a download="speaker${c + 1}.wav" href="${url}">speaker ${c + 1}.wav</a> <audio controls src="${url}"></audio>`;
      list.appendChild(li);
    }
    $("downloads").hidden = false;
    setStatus(`separated ${file.name} (${decoded.duration.toFixed(1)} s)`);
  }

  function cleanupAudio() {
    if (input) { try { input.disconnect(); } catch (_) { /* already gone */ } input = null; }
    if (capture) { capture.port.onmessage = null; capture.disconnect(); capture = null; }
    if (mic) { for (const t of mic.getTracks()) t.stop(); mic = null; }
  }

  function stop() {
    if (test.state !== "running") return;
    test.state = "stopping";
    if (pendingLen) { sendFrame(concat(pending)); pending = []; pendingLen = 0; }
    cleanupAudio();
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
    setStatus("finishing...");
  }

  function finish(reason) {
    cleanupAudio();
    test.state = reason === "done" ? "done" : "closed";
    $("mic").disabled = false; $("stop").disabled = true;
    setStatus(reason === "done" ? "done" : reason, reason !== "done");
    if (ws && ws.readyState === WebSocket.OPEN) ws.close();
  }

  // ------------------------------------------------------------------- wiring
  $("mic").onclick = () => startMic();
  $("stop").onclick = () => stop();
  const drop = $("drop");
  const handleFile = (file) => (file ? ($("offline").checked ? separateOffline(file) : streamFile(file)) : null);
  drop.ondragover = (ev) => { ev.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (ev) => { ev.preventDefault(); drop.classList.remove("over"); handleFile(ev.dataTransfer.files[0]); };
  $("file").onchange = (ev) => handleFile(ev.target.files[0]);
  setInterval(showLatency, 250);
  requestAnimationFrame(drawLoop);

  fetch("/api/info").then((r) => r.json()).then((i) => {
    $("model").textContent = `${i.model} · ${i.num_sources} sources · ${i.sample_rate} Hz · ` +
      `model latency ${i.latency_ms.toFixed(1)} ms · ${i.sessions.active}/${i.limits.max_sessions} sessions`;
    buildTracks(i.num_sources);
    if (params.get("autostart") === "mic") startMic();
  }).catch((err) => setStatus(`cannot reach the server: ${err}`, true));
})();
