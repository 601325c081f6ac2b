// capsid view: the page. Plain JS + Canvas; every request carries the session token.
"use strict";
(function () {
  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const $ = (id) => document.getElementById(id);
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  const api = (path, params) => {
    const q = new URLSearchParams(params || {});
    q.set("token", TOKEN);
    return path + "?" + q.toString();
  };

  const S = {
    info: null,
    axis: "z",
    index: { z: 0, y: 0, x: 0 },
    zoom: 1, panX: 0, panY: 0, fitted: false, userView: false,
    slab: 1, sigma: 0, lo: 1, hi: 99, contrast: "global", invert: false,
    img: null, imgKey: "", w: 0, h: 0,
    overlays: [], // {id, name, kind: 'labels'|'prob', cls, on, opacity, canvas}
    picks: [], missed: [], counts: {},
    showClass: {}, active: null, showPicks: true, byMatch: false,
    undo: [], redo: [], ver: 0, synced: 0, syncing: false,
    hover: -1, drag: null, pan: null,
    autoCentre: false, polarity: "dark",
    want: "", busy: false, drawnKey: "", loads: 0,
    timings: [], bytes: 0, errors: [],
  };

  const classOf = (name) => S.info.classes.find((c) => c.name === name);
  const colourOf = (name) => (classOf(name) || { colour: "#ffffff" }).colour;
  const radiusOf = (name) => (classOf(name) || { radius_vox: 10 }).radius_vox;
  const dims = () => {
    const [nx, ny, nz] = S.info.shape;
    return { z: [nx, ny, nz], y: [nx, nz, ny], x: [ny, nz, nx] }[S.axis];
  };
  // Particle (x, y, z) → plane coordinates (u, v) and depth d along the normal axis.
  const toUVD = (p) => ({ z: [p.x, p.y, p.z], y: [p.x, p.z, p.y], x: [p.y, p.z, p.x] }[S.axis]);
  const fromUVD = (u, v, d) => ({ z: { x: u, y: v, z: d }, y: { x: u, y: d, z: v }, x: { x: d, y: u, z: v } }[S.axis]);
  const toScreen = (u, v) => [S.panX + (u + 0.5) * S.zoom, S.panY + (v + 0.5) * S.zoom];
  const fromScreen = (sx, sy) => [(sx - S.panX) / S.zoom - 0.5, (sy - S.panY) / S.zoom - 0.5];
  const hexRgb = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));

  function setStatus(t) { $("status").textContent = t; }

  // ---- canvas size, fit, draw -------------------------------------------------------------
  function resize() {
    const r = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(r.width));
    canvas.height = Math.max(1, Math.round(r.height));
    // Fit again after a resize unless the user zoomed or panned.
    if (!S.fitted || !S.userView) fit();
    draw();
  }
  function fit() {
    if (!S.info) return;
    const [w, h] = dims();
    S.zoom = Math.min(canvas.width / w, canvas.height / h);
    S.panX = (canvas.width - w * S.zoom) / 2;
    S.panY = (canvas.height - h * S.zoom) / 2;
    S.fitted = true;
  }

  function circleOf(p) {
    const [u, v, d] = toUVD(p);
    const r = radiusOf(p.class);
    const dd = d - S.index[S.axis];
    if (Math.abs(dd) >= r) return null;
    return { u, v, rc: Math.sqrt(r * r - dd * dd), onPlane: Math.abs(dd) < 0.5 };
  }

  function draw() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!S.img) return;
    ctx.imageSmoothingEnabled = S.zoom < 1;
    ctx.setTransform(S.zoom, 0, 0, S.zoom, S.panX, S.panY);
    ctx.drawImage(S.img, 0, 0);
    for (const o of S.overlays) {
      if (o.on && o.canvas) {
        ctx.globalAlpha = o.opacity;
        ctx.drawImage(o.canvas, 0, 0);
        ctx.globalAlpha = 1;
      }
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (!S.showPicks) return;
    const matchColour = { tp: "#34c759", fp: "#ff3b30" };
    S.picks.forEach((p, i) => {
      if (S.showClass[p.class] === false) return;
      const c = circleOf(p);
      if (!c) return;
      const [sx, sy] = toScreen(c.u, c.v);
      ctx.strokeStyle = S.byMatch && p.status ? matchColour[p.status] : colourOf(p.class);
      ctx.lineWidth = i === S.hover ? 3 : 1.5;
      ctx.beginPath();
      ctx.arc(sx, sy, Math.max(1.5, c.rc * S.zoom), 0, 2 * Math.PI);
      ctx.stroke();
      if (c.onPlane) { ctx.fillStyle = ctx.strokeStyle; ctx.fillRect(sx - 1.5, sy - 1.5, 3, 3); }
    });
    if (S.byMatch) {
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#ffd60a";
      ctx.lineWidth = 1.5;
      for (const p of S.missed) {
        if (S.showClass[p.class] === false) continue;
        const c = circleOf(p);
        if (!c) continue;
        const [sx, sy] = toScreen(c.u, c.v);
        ctx.beginPath();
        ctx.arc(sx, sy, Math.max(1.5, c.rc * S.zoom), 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.setLineDash([]);
    }
  }

  // ---- slices -----------------------------------------------------------------------------
  function sliceKey() {
    return [S.axis, S.index[S.axis], S.slab, S.sigma, S.lo, S.hi, S.contrast, S.invert ? 1 : 0,
      S.overlays.filter((o) => o.on).map((o) => o.id).join(",")].join("|");
  }
  async function fetchImage(params) {
    const r = await fetch(api("/api/slice", params));
    if (!r.ok) throw new Error("slice: HTTP " + r.status);
    const b = await r.blob();
    S.bytes += b.size;
    return await createImageBitmap(b);
  }
  function colourise(o, bmp) {
    const c = o.canvas && o.canvas.width === bmp.width && o.canvas.height === bmp.height
      ? o.canvas : Object.assign(document.createElement("canvas"), { width: bmp.width, height: bmp.height });
    const g = c.getContext("2d", { willReadFrequently: true });
    g.clearRect(0, 0, c.width, c.height);
    g.drawImage(bmp, 0, 0);
    const im = g.getImageData(0, 0, c.width, c.height);
    const d = im.data;
    const lut = new Array(256).fill(null);
    if (o.kind === "labels") for (const k of S.info.classes) lut[k.label] = hexRgb(k.colour);
    const rgb = o.kind === "prob" ? hexRgb(colourOf(o.cls)) : null;
    for (let i = 0; i < d.length; i += 4) {
      const v = d[i];
      if (o.kind === "labels") {
        const col = v > 0 ? (lut[v] || [255, 255, 255]) : null;
        if (col) { d[i] = col[0]; d[i + 1] = col[1]; d[i + 2] = col[2]; d[i + 3] = 255; } else d[i + 3] = 0;
      } else {
        d[i] = rgb[0]; d[i + 1] = rgb[1]; d[i + 2] = rgb[2]; d[i + 3] = v;
      }
    }
    g.putImageData(im, 0, 0);
    o.canvas = c;
  }
  async function loadSlice() {
    if (S.busy) return;
    S.busy = true;
    try {
      while (S.want !== S.drawnKey) {
        const key = S.want;
        const t0 = performance.now();
        const index = S.index[S.axis];
        const base = { axis: S.axis, index };
        const jobs = [fetchImage(Object.assign({ vol: "tomo", slab: S.slab, sigma: S.sigma, lo: S.lo, hi: S.hi,
          contrast: S.contrast, invert: S.invert ? 1 : 0 }, base))];
        const ons = S.overlays.filter((o) => o.on);
        for (const o of ons) jobs.push(fetchImage(Object.assign({ vol: o.id }, base)));
        const got = await Promise.all(jobs);
        S.img = got[0];
        ons.forEach((o, k) => colourise(o, got[k + 1]));
        S.drawnKey = key;
        S.loads++;
        S.timings.push(performance.now() - t0);
        draw();
        updateLabels();
      }
    } catch (e) {
      S.errors.push(String(e));
      setStatus(String(e));
      S.drawnKey = S.want;
    } finally {
      S.busy = false;
    }
  }
  function refresh() { S.want = sliceKey(); loadSlice(); }

  function setIndex(i) {
    const n = dims()[2];
    S.index[S.axis] = Math.max(0, Math.min(n - 1, Math.round(i)));
    $("slider").value = S.index[S.axis];
    $("sliceNum").value = S.index[S.axis];
    refresh();
  }
  function setAxis(a) {
    S.axis = a;
    const n = dims()[2];
    $("slider").max = n - 1;
    $("sliceNum").max = n - 1;
    document.querySelectorAll("#planes button").forEach((b) => b.classList.toggle("on", b.dataset.axis === a));
    S.img = null;
    S.userView = false;
    fit();
    setIndex(S.index[a]);
  }
  function updateLabels() {
    const name = { z: "XY, z", y: "XZ, y", x: "YZ, x" }[S.axis];
    $("sliceLabel").textContent = `${name} = ${S.index[S.axis]} of 0–${dims()[2] - 1}`;
  }

  // ---- picks, undo, sync ------------------------------------------------------------------
  const snapshot = () => S.picks.map((p) => ({ class: p.class, x: p.x, y: p.y, z: p.z, score: p.score, src: p.src }));
  function change(fn) {
    S.undo.push(snapshot());
    if (S.undo.length > 500) S.undo.shift();
    S.redo = [];
    fn();
    S.ver++;
    sync();
    draw();
    renderClasses();
  }
  function undo() {
    if (!S.undo.length) return;
    S.redo.push(snapshot());
    S.picks = S.undo.pop();
    S.ver++; sync(); draw(); renderClasses();
  }
  function redo() {
    if (!S.redo.length) return;
    S.undo.push(snapshot());
    S.picks = S.redo.pop();
    S.ver++; sync(); draw(); renderClasses();
  }
  async function sync() {
    if (S.syncing) return;
    S.syncing = true;
    try {
      while (S.synced !== S.ver) {
        const ver = S.ver;
        const r = await fetch(api("/api/picks"), { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ picks: snapshot() }) });
        if (!r.ok) throw new Error("picks: " + (await r.text()));
        const j = await r.json();
        if (ver === S.ver) applyPicks(j);
        S.synced = ver;
      }
    } catch (e) {
      S.errors.push(String(e));
      setStatus(String(e));
    } finally {
      S.syncing = false;
    }
  }
  function applyPicks(j) {
    S.picks = j.picks;
    S.missed = j.missed || [];
    S.counts = j.counts || {};
    draw();
    renderClasses();
  }
  async function save(format) {
    await sync();
    while (S.syncing) await new Promise((r) => setTimeout(r, 20));
    const r = await fetch(api("/api/save", { format }), { method: "POST" });
    const t = await r.text();
    if (!r.ok) { setStatus("save failed: " + t); S.errors.push(t); return null; }
    const j = JSON.parse(t);
    $("saveInfo").textContent = `saved ${j.count} picks: ${j.written.join(", ")}`;
    return j;
  }

  function pickAt(sx, sy) {
    let best = -1, bd = Infinity;
    S.picks.forEach((p, i) => {
      if (S.showClass[p.class] === false || !S.showPicks) return;
      const c = circleOf(p);
      if (!c) return;
      const [px, py] = toScreen(c.u, c.v);
      const d = Math.hypot(px - sx, py - sy);
      if (d <= Math.max(6, c.rc * S.zoom) && d < bd) { bd = d; best = i; }
    });
    return best;
  }
  async function addPickAt(u, v) {
    let p = fromUVD(u, v, S.index[S.axis]);
    const cls = S.active;
    if (!cls) return;
    if (S.autoCentre) {
      try {
        const r = await fetch(api("/api/centre", { x: p.x, y: p.y, z: p.z, r: radiusOf(cls), polarity: S.polarity }));
        if (r.ok) p = await r.json();
      } catch (e) { S.errors.push(String(e)); }
    }
    change(() => S.picks.push({ class: cls, x: p.x, y: p.y, z: p.z }));
    setStatus(`added ${cls} at (${p.x.toFixed(1)}, ${p.y.toFixed(1)}, ${p.z.toFixed(1)})`);
  }
  function deletePick(i) {
    if (i < 0) return;
    change(() => S.picks.splice(i, 1));
    S.hover = -1;
    $("tip").hidden = true;
  }

  // ---- side panel -------------------------------------------------------------------------
  function renderClasses() {
    const box = $("classes");
    box.innerHTML = "";
    const n = {};
    for (const p of S.picks) n[p.class] = (n[p.class] || 0) + 1;
    S.info.classes.forEach((c, k) => {
      const row = document.createElement("div");
      row.className = "cls" + (c.name === S.active ? " active" : "");
      const vis = Object.assign(document.createElement("input"), { type: "checkbox", checked: S.showClass[c.name] !== false, title: "show" });
      vis.onchange = () => { S.showClass[c.name] = vis.checked; draw(); };
      const radio = Object.assign(document.createElement("input"), { type: "radio", name: "active", checked: c.name === S.active, title: "class of new picks (key " + (k + 1) + ")" });
      radio.onchange = () => { S.active = c.name; renderClasses(); };
      const sw = document.createElement("span");
      sw.className = "sw"; sw.style.background = c.colour;
      const t = document.createElement("span");
      const cnt = S.counts[c.name];
      t.textContent = `${k < 9 ? k + 1 + " " : ""}${c.name} (${n[c.name] || 0}; r ${c.radius_vox.toFixed(1)})` +
        (cnt ? ` TP ${cnt.tp} FP ${cnt.fp} FN ${cnt.fn}` : "");
      row.append(vis, radio, sw, t);
      box.append(row);
    });
  }
  function buildOverlays() {
    const box = $("overlays");
    if (S.info.labels) S.overlays.push({ id: "labels", name: "labels: " + S.info.labels, kind: "labels", on: true, opacity: 0.4 });
    for (const p of S.info.probs) S.overlays.push({ id: "prob:" + p.class, name: p.class + " probability", kind: "prob", cls: p.class, on: !S.info.labels, opacity: 0.6 });
    if (!S.overlays.length) { box.append(Object.assign(document.createElement("div"), { className: "muted", textContent: "none given (--labels, --prob)" })); }
    for (const o of S.overlays) {
      const l = document.createElement("label");
      const cb = Object.assign(document.createElement("input"), { type: "checkbox", checked: o.on });
      cb.onchange = () => { o.on = cb.checked; refresh(); };
      o.checkbox = cb;
      const op = Object.assign(document.createElement("input"), { type: "range", min: 0, max: 1, step: 0.05, value: o.opacity });
      op.oninput = () => { o.opacity = +op.value; draw(); };
      l.append(cb, " " + o.name + " ", op);
      box.append(l);
    }
  }

  // ---- events -----------------------------------------------------------------------------
  function bind() {
    document.querySelectorAll("#planes button").forEach((b) => (b.onclick = () => setAxis(b.dataset.axis)));
    $("slider").oninput = () => setIndex(+$("slider").value);
    $("sliceNum").onchange = () => setIndex(+$("sliceNum").value);
    const num = (id, key) => ($(id).onchange = () => { S[key] = +$(id).value; refresh(); });
    num("lo", "lo"); num("hi", "hi"); num("slab", "slab"); num("sigma", "sigma");
    $("contrast").onchange = () => { S.contrast = $("contrast").value; refresh(); };
    $("invert").onchange = () => { S.invert = $("invert").checked; refresh(); };
    $("byMatch").onchange = () => { S.byMatch = $("byMatch").checked; draw(); };
    $("autoCentre").onchange = () => { S.autoCentre = $("autoCentre").checked; };
    $("polarity").onchange = () => { S.polarity = $("polarity").value; };
    $("undo").onclick = undo;
    $("redo").onclick = redo;
    $("saveStar").onclick = () => save("star");
    $("saveCsv").onclick = () => save("csv");
    $("saveCopick").onclick = () => save("copick");
    window.addEventListener("resize", resize);

    canvas.addEventListener("contextmenu", (e) => {
      e.preventDefault();
      deletePick(pickAt(e.offsetX, e.offsetY));
    });
    canvas.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      const i = pickAt(e.offsetX, e.offsetY);
      if (i >= 0 && e.shiftKey) { deletePick(i); return; }
      if (i >= 0) {
        S.drag = { i, x0: e.offsetX, y0: e.offsetY, before: snapshot(), moved: false };
      } else {
        S.pan = { x0: e.offsetX, y0: e.offsetY, px: S.panX, py: S.panY, moved: false };
      }
    });
    canvas.addEventListener("mousemove", (e) => {
      if (S.drag) {
        const d = S.drag;
        if (Math.hypot(e.offsetX - d.x0, e.offsetY - d.y0) > 2) d.moved = true;
        if (d.moved) {
          const p = S.picks[d.i];
          const [, , dep] = toUVD(p);
          const [u, v] = fromScreen(e.offsetX, e.offsetY);
          Object.assign(p, fromUVD(u, v, dep));
          draw();
        }
        return;
      }
      if (S.pan) {
        const dx = e.offsetX - S.pan.x0, dy = e.offsetY - S.pan.y0;
        if (Math.hypot(dx, dy) > 3) S.pan.moved = true;
        if (S.pan.moved) { S.panX = S.pan.px + dx; S.panY = S.pan.py + dy; S.userView = true; draw(); }
        return;
      }
      const i = pickAt(e.offsetX, e.offsetY);
      if (i !== S.hover) { S.hover = i; draw(); }
      const tip = $("tip");
      if (i >= 0) {
        const p = S.picks[i];
        tip.textContent = `${p.class}` + (p.score != null ? `  score ${(+p.score).toFixed(3)}` : "") +
          (p.status ? `  ${p.status.toUpperCase()}` : "") + `\n(${p.x.toFixed(1)}, ${p.y.toFixed(1)}, ${p.z.toFixed(1)})`;
        tip.style.left = e.offsetX + 14 + "px";
        tip.style.top = e.offsetY + 10 + "px";
        tip.hidden = false;
      } else tip.hidden = true;
    });
    window.addEventListener("mouseup", (e) => {
      if (S.drag) {
        const d = S.drag;
        S.drag = null;
        if (d.moved) {
          const now = snapshot();
          S.picks = d.before;
          change(() => (S.picks = now));
        }
        return;
      }
      if (S.pan) {
        const p = S.pan;
        S.pan = null;
        if (!p.moved && e.target === canvas && $("editOn").checked) {
          const [u, v] = fromScreen(e.offsetX, e.offsetY);
          const [w, h] = dims();
          if (u >= -0.5 && v >= -0.5 && u < w - 0.5 && v < h - 0.5) addPickAt(u, v);
        }
      }
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const f = Math.exp(-e.deltaY * 0.0015);
      const [u, v] = fromScreen(e.offsetX, e.offsetY);
      S.zoom = Math.max(0.05, Math.min(64, S.zoom * f));
      S.userView = true;
      S.panX = e.offsetX - (u + 0.5) * S.zoom;
      S.panY = e.offsetY - (v + 0.5) * S.zoom;
      draw();
    }, { passive: false });
    window.addEventListener("keydown", (e) => {
      if (e.target.tagName === "INPUT" && e.target.type !== "checkbox" && e.target.type !== "radio" && e.target.type !== "range") return;
      const k = e.key;
      const step = e.shiftKey ? 10 : 1;
      const ctrl = e.ctrlKey || e.metaKey;
      if (ctrl && (k === "z" || k === "Z")) { e.shiftKey ? redo() : undo(); e.preventDefault(); return; }
      if (ctrl && (k === "y" || k === "Y")) { redo(); e.preventDefault(); return; }
      if (ctrl && (k === "s" || k === "S")) { save("star"); e.preventDefault(); return; }
      if (ctrl) return;
      if (k === "ArrowUp" || k === "ArrowRight" || k === "." || k === "PageUp" || k === ">") setIndex(S.index[S.axis] + step);
      else if (k === "ArrowDown" || k === "ArrowLeft" || k === "," || k === "PageDown" || k === "<") setIndex(S.index[S.axis] - step);
      else if (k === "z" || k === "y" || k === "x") setAxis(k);
      else if (k === "f" || k === "0") { S.userView = false; fit(); draw(); }
      else if (k === "+" || k === "=" || k === "-") {
        const f = k === "-" ? 0.8 : 1.25, cx = canvas.width / 2, cy = canvas.height / 2;
        S.panX = cx - (cx - S.panX) * f; S.panY = cy - (cy - S.panY) * f; S.zoom *= f; S.userView = true; draw();
      }
      else if (k === "Delete" || k === "Backspace") deletePick(S.hover);
      else if (k === "i") { $("invert").click(); }
      else if (k === "c") { $("autoCentre").click(); }
      else if (k === "p") { S.showPicks = !S.showPicks; draw(); }
      else if (k === "l") { const o = S.overlays.find((o) => o.kind === "labels") || S.overlays[0]; if (o) o.checkbox.click(); }
      else if (/^[1-9]$/.test(k)) { const c = S.info.classes[+k - 1]; if (c) { S.active = c.name; renderClasses(); } }
      else return;
      e.preventDefault();
    });
  }

  async function start() {
    const r = await fetch(api("/api/info"));
    if (!r.ok) { setStatus("cannot load: HTTP " + r.status + " (is the token in the URL?)"); return; }
    S.info = await r.json();
    const [nx, ny, nz] = S.info.shape;
    $("file").textContent = `${S.info.tomo}: ${nx} × ${ny} × ${nz}` + (S.info.voxel_size_a ? `, ${S.info.voxel_size_a.toFixed(2)} Å` : "");
    S.index = { z: Math.floor(nz / 2), y: Math.floor(ny / 2), x: Math.floor(nx / 2) };
    S.active = S.info.classes.length ? S.info.classes[0].name : null;
    S.byMatch = S.info.has_truth;
    $("byMatch").checked = S.byMatch;
    $("byMatch").disabled = !S.info.has_truth;
    $("saveInfo").textContent = "saves to " + S.info.save.star;
    // Optional view settings in the URL: &axis=z&index=30&slab=3&sigma=1&lo=1&hi=99&zoom=2
    const U = new URLSearchParams(location.search);
    for (const k of ["slab", "sigma", "lo", "hi"]) if (U.has(k) && isFinite(+U.get(k))) { S[k] = +U.get(k); $(k).value = S[k]; }
    const ax = U.get("axis");
    if (U.has("index") && isFinite(+U.get("index"))) S.index[ax === "x" || ax === "y" ? ax : "z"] = +U.get("index");
    buildOverlays();
    bind();
    const pr = await fetch(api("/api/picks"));
    if (pr.ok) applyPicks(await pr.json());
    resize();
    setAxis(["x", "y", "z"].includes(ax) ? ax : "z");
  }

  // For tests and scripts: the state and a few helpers.
  window.capsidView = {
    S,
    idle: () => !!S.info && S.want === S.drawnKey && !S.busy && !S.syncing && S.synced === S.ver,
    setAxis, setIndex, save, undo, redo,
    screenOf: (x, y, z) => { const [u, v] = toUVD({ x, y, z }); const r = canvas.getBoundingClientRect(); const [sx, sy] = toScreen(u, v); return [r.left + sx, r.top + sy]; },
  };
  start().catch((e) => { S.errors.push(String(e)); setStatus(String(e)); });
})();
