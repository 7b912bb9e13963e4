// The page's script (dope/view3d/page.py inlines it): reads the JSON in #dope-data, builds the
// plotly scene (backdrop, floor, camera: drawn once; bones and joints: per frame) and the controls.
// Axes: x right, y forward (depth), z up. Coordinates arrive as integers of D.unit, base64-packed.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("dope-data").textContent);
  const plot = document.getElementById("dope-plot");
  const slider = document.getElementById("dope-slider");
  const play = document.getElementById("dope-play");
  const label = document.getElementById("dope-label");
  const info = document.getElementById("dope-info");
  const state = { ready: false, frame: 0, frames: D.frames, playing: false, shown: -1 };
  window.dope = state;

  function unpack(b64, dtype) {
    const s = atob(b64);
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return dtype === "i2" ? new Int16Array(bytes.buffer) : new Int32Array(bytes.buffer);
  }

  // Per part: packed coordinates, first detection of each frame, and the part's bone traces.
  const parts = D.parts.map(function (p) {
    const det = D.detections[p.name];
    const first = [0];
    det.count.forEach(function (n, f) { first.push(first[f] + n); });
    const colors = Array.from(new Set(p.bone_colors));
    return { table: p, det: det, xyz: unpack(det.xyz, det.dtype), missing: det.dtype === "i2" ? -32768 : -2147483648,
             first: first, colors: colors, J: p.joints.length };
  });

  function personColor(id) {
    return id < 0 ? D.no_person_color : D.person_colors[id % D.person_colors.length];
  }
  function personText(id, part) {
    if (id >= 0) return "person " + id + (D.tracked ? "" : " (detection index)");
    return D.tracked ? "no track" : part + " alone";
  }

  // Traces: [backdrop, floor, camera, frustum], then per part its bone traces (one per colour), then one
  // marker trace per part.
  const statics = 4;
  const boneTrace = [];   // [part][colour] -> trace index
  const jointTrace = [];  // [part] -> trace index

  function lines(segments, color, width, name) {
    const x = [], y = [], z = [];
    segments.forEach(function (s) {
      x.push(s[0][0], s[1][0], null); y.push(s[0][1], s[1][1], null); z.push(s[0][2], s[1][2], null);
    });
    return { type: "scatter3d", mode: "lines", x: x, y: y, z: z, name: name, hoverinfo: "skip",
             line: { color: color, width: width }, showlegend: false };
  }

  function cameraTrace() {
    const c = D.camera, apex = c[0], s = [];
    for (let k = 1; k <= 4; k++) { s.push([apex, c[k]]); s.push([c[k], c[k % 4 + 1]]); }
    const t = lines(s, "#222", 4, "camera");
    t.hoverinfo = "text";
    t.text = t.x.map(function () { return "camera" + (D.focal ? " (focal " + D.focal + " px)" : ""); });
    return t;
  }

  // The backdrop: the image's pixels as a mesh of two flat-coloured triangles per pixel on the plane.
  const backdropCache = {};
  function emptyBackdrop() {
    const c = D.plane;
    return { type: "mesh3d", x: c.map(function (p) { return p[0]; }), y: c.map(function (p) { return p[1]; }),
             z: c.map(function (p) { return p[2]; }), i: [0, 0], j: [1, 2], k: [2, 3], color: "#eeeeee",
             flatshading: true, hoverinfo: "skip", showscale: false,
             lighting: { ambient: 1, diffuse: 0, specular: 0, roughness: 1, fresnel: 0 } };
  }
  function backdropMesh(index) {
    if (index < 0) return Promise.resolve(emptyBackdrop());
    if (backdropCache[index]) return backdropCache[index];
    backdropCache[index] = new Promise(function (resolve, reject) {
      const img = new Image();
      img.onload = function () {
        const w = img.naturalWidth, h = img.naturalHeight;
        const canvas = document.createElement("canvas");
        canvas.width = w; canvas.height = h;
        const ctx = canvas.getContext("2d", { willReadFrequently: true });
        ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, w, h).data;
        // One vertex per pixel centre (the grid stretched half a pixel to the plane's edges), coloured
        // by its pixel: the colours blend smoothly between pixels of a small backdrop.
        const c = D.plane;  // top-left, top-right, bottom-right, bottom-left
        const x = [], y = [], z = [], I = [], J = [], K = [], colors = [];
        for (let r = 0; r < h; r++) {
          for (let q = 0; q < w; q++) {
            const a = w > 1 ? q / (w - 1) : 0.5, b = h > 1 ? r / (h - 1) : 0.5;
            for (let d = 0; d < 3; d++) {
              const top = c[0][d] + a * (c[1][d] - c[0][d]), bottom = c[3][d] + a * (c[2][d] - c[3][d]);
              (d === 0 ? x : d === 1 ? y : z).push(top + b * (bottom - top));
            }
            const o = 4 * (r * w + q);
            colors.push("rgb(" + px[o] + "," + px[o + 1] + "," + px[o + 2] + ")");
          }
        }
        for (let r = 0; r + 1 < h; r++) {
          for (let q = 0; q + 1 < w; q++) {
            const v = r * w + q;  // top-left, top-right, bottom-right / top-left, bottom-right, bottom-left
            I.push(v, v); J.push(v + 1, v + w + 1); K.push(v + w + 1, v + w);
          }
        }
        const m = emptyBackdrop();
        Object.assign(m, { x: x, y: y, z: z, i: I, j: J, k: K, vertexcolor: colors });
        delete m.color;
        resolve(m);
      };
      img.onerror = function () { reject(new Error("the backdrop image does not decode")); };
      img.src = "data:image/jpeg;base64," + D.backdrops[index];
    });
    return backdropCache[index];
  }

  // One frame's bones (per part and colour) and joints (per part), as restyle arrays.
  function frameData(f) {
    const out = { x: [], y: [], z: [], joints: [] };
    parts.forEach(function (p) {
      const u = D.unit, xyz = p.xyz, det = p.det, bones = p.table.bones, J = p.J;
      const bx = {}, by = {}, bz = {};
      p.colors.forEach(function (c) { bx[c] = []; by[c] = []; bz[c] = []; });
      const jx = [], jy = [], jz = [], jt = [], jc = [];
      for (let d = p.first[f]; d < p.first[f + 1]; d++) {
        const base = d * J * 3;
        const point = function (j) {
          const i = base + 3 * j;
          return xyz[i] === p.missing ? null : [xyz[i] * u, xyz[i + 1] * u, xyz[i + 2] * u];
        };
        const mid = function (a, b) {
          const pa = point(a), pb = point(b);
          return pa && pb ? [(pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2, (pa[2] + pb[2]) / 2] : null;
        };
        bones.forEach(function (bone, k) {
          if (k === p.table.neck && det.face_linked[d]) return;  // the face stands in for the neck
          const a = mid(bone[0], bone[1]), b = mid(bone[2], bone[3]);
          if (!a || !b) return;
          const c = p.table.bone_colors[k];
          bx[c].push(a[0], b[0], null); by[c].push(a[1], b[1], null); bz[c].push(a[2], b[2], null);
        });
        const id = det.person[d], score = det.score[d];
        const who = personText(id, p.table.name), color = personColor(id);
        const scoreText = score === null ? "n/a" : (score * D.score_unit).toFixed(3);
        for (let j = 0; j < J; j++) {
          const q = point(j);
          if (!q) continue;
          jx.push(q[0]); jy.push(q[1]); jz.push(q[2]); jc.push(color);
          jt.push(p.table.name + " \u00b7 " + p.table.joints[j] + "<br>" + who + "<br>score " + scoreText);
        }
      }
      p.colors.forEach(function (c) {
        out.x.push(bx[c]); out.y.push(by[c]); out.z.push(bz[c]);
      });
      out.joints.push({ x: jx, y: jy, z: jz, text: jt, color: jc });
    });
    return out;
  }

  function initialTraces(backdrop) {
    const traces = [backdrop, lines(D.grid, "#b8b8b8", 2, "floor"), cameraTrace(),
                    lines(D.frustum, "#999", 1, "frustum")];
    parts.forEach(function (p, k) {
      boneTrace[k] = {};
      p.colors.forEach(function (c) {
        boneTrace[k][c] = traces.length;
        const t = lines([], c, p.table.line_width, p.table.name + " bones");
        traces.push(t);
      });
    });
    parts.forEach(function (p, k) {
      jointTrace[k] = traces.length;
      traces.push({ type: "scatter3d", mode: "markers", x: [], y: [], z: [], text: [], name: p.table.name,
                    hovertemplate: "%{text}<extra></extra>", showlegend: false,
                    marker: { size: p.table.marker_size, color: [], opacity: 1 } });
    });
    return traces;
  }

  function layout() {
    const r = D.range, a = D.aspect;
    const axis = function (k) {
      return { range: r[k], visible: false, showgrid: false, zeroline: false, showspikes: false };
    };
    return {
      margin: { l: 0, r: 0, t: 0, b: 0 }, showlegend: false, uirevision: "dope", paper_bgcolor: "#ffffff",
      hoverlabel: { align: "left" },
      scene: { xaxis: axis(0), yaxis: axis(1), zaxis: axis(2), aspectmode: "manual",
               aspectratio: { x: a[0], y: a[1], z: a[2] }, dragmode: "turntable",
               camera: defaultCamera() },
    };
  }
  // The first view (as --visu3d's: from the front-left, above), and the view from the drawn camera.
  function defaultCamera() {
    const e = D.eye;
    return { eye: { x: e[0], y: e[1], z: e[2] }, center: { x: 0, y: 0, z: 0 }, up: { x: 0, y: 0, z: 1 } };
  }
  function cameraView() {
    const e = D.camera_eye, c = D.camera_center;
    return { eye: { x: e[0], y: e[1], z: e[2] }, center: { x: c[0], y: c[1], z: c[2] }, up: { x: 0, y: 0, z: 1 } };
  }

  // plotly.js converts every trace of a 3D scene again on each restyle, and the backdrop's mesh (tens of
  // thousands of triangles) costs most of that although it never changes between frames: its update is
  // skipped while the scene's data scale stays the same. This uses plotly's gl3d internals
  // (scene.traces[uid].update), only where they are present; elsewhere the page is just slower.
  function freezeBackdrop() {
    const scene = plot._fullLayout && plot._fullLayout.scene && plot._fullLayout.scene._scene;
    const full = plot._fullData && plot._fullData[0];
    const trace = scene && scene.traces && full ? scene.traces[full.uid] : null;
    if (!trace || typeof trace.update !== "function") return false;
    if (trace.dopeFrozen) return true;
    const update = trace.update.bind(trace);
    let scale = String(scene.dataScale);
    trace.update = function (data) {
      if (String(scene.dataScale) !== scale) {
        scale = String(scene.dataScale);
        update(data);
      } else {
        trace.data = data;
      }
    };
    trace.dopeFrozen = true;
    return true;
  }

  // Backdrop swaps (image lists) run one at a time; one that a later frame has made stale is skipped.
  let wantedBackdrop = null, shownBackdrop = null, backdropQueue = Promise.resolve();
  function setBackdrop(b) {
    backdropQueue = backdropQueue.then(function () {
      if (b !== wantedBackdrop || b === shownBackdrop) return null;
      return backdropMesh(b).then(function (mesh) {
        if (b !== wantedBackdrop) return null;
        return Plotly.deleteTraces(plot, 0)
          .then(function () { return Plotly.addTraces(plot, mesh, 0); })
          .then(function () { shownBackdrop = b; state.fastBackdrop = freezeBackdrop(); });
      });
    });
    return backdropQueue;
  }
  function show(f) {
    f = Math.max(0, Math.min(D.frames - 1, f | 0));
    state.frame = f;
    slider.value = String(f);
    label.textContent = D.labels[f] + "  (" + (f + 1) + " / " + D.frames + ")";
    const data = frameData(f);
    const indices = [];
    parts.forEach(function (p, k) {
      p.colors.forEach(function (c) { indices.push(boneTrace[k][c]); });
    });
    const jIdx = [], jx = [], jy = [], jz = [], jt = [], jc = [];
    data.joints.forEach(function (j, k) {
      jIdx.push(jointTrace[k]); jx.push(j.x); jy.push(j.y); jz.push(j.z); jt.push(j.text); jc.push(j.color);
    });
    let chain = Plotly.restyle(plot, { x: data.x, y: data.y, z: data.z }, indices)
      .then(function () {
        return Plotly.restyle(plot, { x: jx, y: jy, z: jz, text: jt, "marker.color": jc }, jIdx);
      });
    const b = D.frame_backdrop[f];
    if (b !== wantedBackdrop) {
      wantedBackdrop = b;
      chain = chain.then(function () { return setBackdrop(b); });
    }
    return chain.then(function () { state.shown = f; });
  }
  state.show = show;

  let timer = null;
  function stop() {
    state.playing = false;
    play.innerHTML = "&#9654; Play";
    if (timer !== null) { clearTimeout(timer); timer = null; }
  }
  function tick() {
    if (!state.playing) return;
    const started = performance.now();
    const next = state.frame + 1 >= D.frames ? 0 : state.frame + 1;
    show(next).then(function () {
      if (!state.playing) return;
      const wait = Math.max(0, 1000 / D.fps - (performance.now() - started));
      timer = setTimeout(tick, wait);
    });
  }
  play.addEventListener("click", function () {
    if (state.playing) { stop(); return; }
    state.playing = true;
    play.innerHTML = "&#10074;&#10074; Pause";
    tick();
  });
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
  document.getElementById("dope-reset").addEventListener("click", function () {
    Plotly.relayout(plot, { "scene.camera": defaultCamera() });
  });
  document.getElementById("dope-view").addEventListener("click", function () {
    Plotly.relayout(plot, { "scene.camera": cameraView() });
  });

  slider.max = String(Math.max(0, D.frames - 1));
  if (D.frames < 2) document.getElementById("dope-controls").setAttribute("data-single", "");
  info.textContent = (D.mode === "camera" ? "camera space, metres" : "placed as --visu3d, image heights") +
    (D.tracked ? " \u00b7 colours: tracks" : "") + " \u00b7 drag: turn, right-drag: pan, wheel: zoom";

  wantedBackdrop = shownBackdrop = D.frame_backdrop[0];
  backdropMesh(shownBackdrop)
    .then(function (mesh) {
      return Plotly.newPlot(plot, initialTraces(mesh), layout(), { displaylogo: false, responsive: true });
    })
    .then(function () { state.fastBackdrop = freezeBackdrop(); return show(0); })
    .then(function () { state.ready = true; document.body.setAttribute("data-ready", ""); })
    .catch(function (err) { console.error("DOPE page: " + (err && err.message ? err.message : err)); });
})();
