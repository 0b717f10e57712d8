// steerd e2e player: loads hls.js or dash.js from node_modules, plays ?src=URL and records
// what the test runner checks in window.e2e:
//   started, startMs (ms from page start to the first "playing"), currentTime,
//   maxTime (highest currentTime seen), paused, ended, readyState,
//   fatal: [{source, code, details}]  errors after which the player gives up,
//   errors: [{source, code, details}] recoverable ones (retries, failed downloads),
//   frags: [{url, host, kind, t}]      segments the player loaded (URL after any redirect when
//                                       the player knows it), host = "host:port",
//   steering: [{t, url, priority, ttl}] Content Steering answers the player took in (hls.js
//                                       STEERING_MANIFEST_LOADED, dash.js
//                                       CONTENT_STEERING_REQUEST_COMPLETED),
//   stalls ("waiting" events), freezes: [{at, ms}] spells of >= 300 ms in which currentTime did
//   not move while the video was meant to play (at = currentTime; the last one may be open),
//   events, libVersion.
// Query: player=hls|dash, src=URL (required), buf=seconds of forward buffer (default 4).
"use strict";

(function () {
  const q = new URLSearchParams(window.location.search);
  const kind = q.get("player");
  const src = q.get("src");
  const buf = Number(q.get("buf") || "4");
  const t0 = performance.now();
  const video = document.getElementById("video");
  video.muted = true;

  const e2e = {
    player: kind,
    src: src,
    libVersion: null,
    started: false,
    startMs: null,
    currentTime: 0,
    maxTime: 0,
    paused: true,
    ended: false,
    readyState: 0,
    fatal: [],
    errors: [],
    frags: [],
    steering: [],
    stalls: 0,
    freezes: [],
    events: [],
  };
  window.e2e = e2e;

  const now = () => Math.round(performance.now() - t0);
  const note = (what) => {
    if (e2e.events.length < 200) e2e.events.push(now() + " " + what);
  };
  const hostOf = (u) => {
    try {
      return new URL(u, window.location.href).host;
    } catch (e) {
      return "";
    }
  };
  const fatal = (source, code, details) => {
    e2e.fatal.push({ source: source, code: String(code), details: String(details || ""), t: now() });
    note("FATAL " + source + " " + code + " " + (details || ""));
  };
  const recoverable = (source, code, details) => {
    note("error " + source + " " + code + " " + (details || ""));
    if (e2e.errors.length < 200)
      e2e.errors.push({ source: source, code: String(code), details: String(details || ""), t: now() });
  };
  const steering = (url, answer) => {
    const a = answer || {};
    const prio = Array.isArray(a["PATHWAY-PRIORITY"]) ? a["PATHWAY-PRIORITY"].map(String) : [];
    if (e2e.steering.length < 200) e2e.steering.push({ t: now(), url: String(url || ""), priority: prio, ttl: a.TTL });
    note("steering answer " + prio.join(","));
  };
  const frag = (url, kindName) => {
    if (e2e.frags.length < 1000) e2e.frags.push({ url: url, host: hostOf(url), kind: kindName, t: now() });
  };

  // Freeze tracking: time since currentTime last moved, while playing is wanted (started, not
  // paused or ended). Spells of FREEZE_MIN_MS or longer are kept; the open one is updated live.
  const FREEZE_MIN_MS = 300;
  let lastPos = -1;
  let lastMove = performance.now();
  let openFreeze = null;
  const trackFreeze = () => {
    const t = performance.now();
    if (video.currentTime !== lastPos || !e2e.started || video.paused || video.ended) {
      lastPos = video.currentTime;
      lastMove = t;
      openFreeze = null;
      return;
    }
    const ms = Math.round(t - lastMove);
    if (ms < FREEZE_MIN_MS) return;
    if (openFreeze === null) {
      if (e2e.freezes.length >= 200) return;
      openFreeze = { at: video.currentTime, ms: ms, t: now() };
      e2e.freezes.push(openFreeze);
    }
    openFreeze.ms = ms;
  };

  const tick = () => {
    e2e.currentTime = video.currentTime;
    if (video.currentTime > e2e.maxTime) e2e.maxTime = video.currentTime;
    e2e.paused = video.paused;
    e2e.ended = video.ended;
    e2e.readyState = video.readyState;
  };
  video.addEventListener("timeupdate", tick);
  video.addEventListener("playing", () => {
    if (!e2e.started) e2e.startMs = now();
    e2e.started = true;
    note("playing");
    tick();
  });
  video.addEventListener("waiting", () => {
    e2e.stalls += 1;
    note("waiting at " + video.currentTime.toFixed(2));
  });
  video.addEventListener("ended", () => {
    note("ended");
    tick();
  });
  video.addEventListener("error", () => {
    const err = video.error;
    fatal("video", err ? err.code : "?", err ? err.message : "");
  });
  setInterval(() => {
    tick();
    trackFreeze();
  }, 100);

  const loadScript = (path) =>
    new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = path;
      s.onload = resolve;
      s.onerror = () => reject(new Error("cannot load " + path));
      document.head.appendChild(s);
    });

  const startHls = () => {
    const Hls = window.Hls;
    e2e.libVersion = Hls.version;
    if (!Hls.isSupported()) {
      fatal("hls", "unsupported", "MSE not available");
      return;
    }
    const hls = new Hls({
      maxBufferLength: buf,
      maxMaxBufferLength: buf,
      backBufferLength: 10,
      enableWorker: true,
    });
    window.e2ePlayer = hls;
    hls.on(Hls.Events.ERROR, (ev, data) => {
      if (data.fatal) fatal("hls", data.type, data.details);
      else recoverable("hls", data.type, data.details);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, (ev, data) =>
      note("manifest parsed, levels " + data.levels.length + ", pathways " + (hls.pathways || []).join(" ")),
    );
    hls.on(Hls.Events.FRAG_LOADED, (ev, data) => {
      const f = data.frag;
      frag(f.url, (f.type === "main" ? "video" : f.type) + (f.sn === "initSegment" ? "-init" : ""));
    });
    hls.on(Hls.Events.STEERING_MANIFEST_LOADED, (ev, data) => steering(data.url, data.steeringManifest));
    hls.on(Hls.Events.LEVEL_SWITCHED, (ev, data) => {
      const l = hls.levels[data.level];
      note("level " + data.level + (l ? " pathway " + l.pathwayId + " " + l.url : ""));
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    hls.on(Hls.Events.MEDIA_ATTACHED, () => {
      video.play().catch((e) => note("play() rejected: " + e));
    });
  };

  // dash.js reports failed downloads it retries (or moves past) as "error" events too: only
  // these codes are recoverable; MPD, parse, MSE and capability errors are fatal.
  const DASH_RECOVERABLE = new Set([12, 17, 18, 26, 27, 28, 29]);

  const startDash = () => {
    const dashjs = window.dashjs;
    const player = dashjs.MediaPlayer().create();
    e2e.libVersion = player.getVersion();
    window.e2ePlayer = player;
    player.updateSettings({
      debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
      streaming: {
        buffer: {
          bufferTimeDefault: buf,
          bufferTimeAtTopQuality: buf,
          bufferTimeAtTopQualityLongForm: buf,
        },
      },
    });
    const E = dashjs.MediaPlayer.events;
    player.on(E.ERROR, (e) => {
      const err = e.error || {};
      const code = err.code !== undefined ? err.code : "?";
      if (DASH_RECOVERABLE.has(Number(code))) recoverable("dash", code, err.message);
      else fatal("dash", code, err.message);
    });
    player.on(E.PLAYBACK_ERROR, (e) => fatal("dash-playback", "playbackError", e.error ? e.error.message || e.error : ""));
    player.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
      const r = e.request || {};
      if (r.url) frag(r.url, r.mediaType + (r.type === "InitializationSegment" ? "-init" : ""));
    });
    player.on(E.MANIFEST_LOADED, () => note("manifest loaded"));
    player.on(E.CONTENT_STEERING_REQUEST_COMPLETED, (e) => {
      const d = e.currentSteeringResponseData || {};
      // dash.js keeps the answer in camelCase (pathwayPriority, ttl); the raw names as well.
      steering(e.url, {
        "PATHWAY-PRIORITY": d.pathwayPriority || d["PATHWAY-PRIORITY"],
        TTL: d.ttl !== undefined ? d.ttl : d.TTL,
      });
    });
    player.initialize(video, src, true);
  };

  if (!src || (kind !== "hls" && kind !== "dash")) {
    fatal("page", "usage", "player.html?player=hls|dash&src=URL");
    return;
  }
  const lib =
    kind === "hls" ? "node_modules/hls.js/dist/hls.min.js" : "node_modules/dashjs/dist/modern/umd/dash.all.min.js";
  loadScript(lib)
    .then(() => (kind === "hls" ? startHls() : startDash()))
    .catch((e) => fatal("page", "load", e.message || e));
})();
