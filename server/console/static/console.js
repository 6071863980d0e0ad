// QuackML console: draws the charts (Observable Plot, vendored) from the page's data,
// keeps the models table and a training model's progress live by polling the JSON
// endpoints, and copies SQL. No network access beyond this server.
"use strict";

(function () {
  const dataEl = document.getElementById("page-data");
  const page = dataEl ? JSON.parse(dataEl.textContent) : null;

  function num(v) {
    if (v === null || v === undefined || v === "") return null;
    const n = typeof v === "number" ? v : parseFloat(v);
    return Number.isFinite(n) ? n : null;
  }

  function text(s) {
    return s === null || s === undefined ? "" : String(s);
  }

  function esc(s) {
    return text(s).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"
    }[c]));
  }

  // --- copy buttons ---------------------------------------------------------------
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button.copy");
    if (!b) return;
    const code = document.getElementById(b.dataset.copy);
    if (!code) return;
    const done = () => { b.textContent = "Copied"; setTimeout(() => { b.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent).then(done, () => select(code));
    } else {
      select(code);
    }
  });

  function select(el) {
    const r = document.createRange();
    r.selectNodeContents(el);
    const s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }

  // --- charts -----------------------------------------------------------------------
  function mount(key, plot, label) {
    const el = document.getElementById("chart-" + key);
    if (!el || !window.Plot) return;
    el.replaceChildren();
    const fig = plot();
    // one image with one label: Plot's own labels on inner groups would be read as
    // parts of an image (and aria-label is not allowed on a plain g)
    for (const inner of fig.querySelectorAll("[aria-label], [aria-description]")) {
      inner.removeAttribute("aria-label");
      inner.removeAttribute("aria-description");
    }
    fig.setAttribute("role", "img");
    fig.setAttribute("aria-label", label);
    el.appendChild(fig);
  }

  const width = () => Math.min(640, Math.max(280, (document.querySelector("main") || document.body).clientWidth - 16));

  function drawSearch(p) {
    const hist = (p && p.history) || [];
    if (!hist.length) return;
    const pts = hist.map((h) => ({ seconds: h[0], trials: h[1], best: h[2] }));
    const name = (p && p.metric_name) || "metric";
    mount("search", () => {
      const w = width();
      const wrap = document.createElement("div");
      wrap.className = "pair";
      for (const x of ["seconds", "trials"]) {
        wrap.appendChild(Plot.plot({
          width: Math.min(w, 420), height: 240, marginLeft: 60,
          x: { label: x === "seconds" ? "seconds since start" : "trials", grid: true },
          y: { label: "best " + name, grid: true },
          ariaLabel: "best " + name + " against " + x,
          marks: [
            Plot.line(pts, { x: x, y: "best", curve: "step-after", stroke: "#1a5fb4" }),
            Plot.dot(pts, { x: x, y: "best", fill: "#1a5fb4", title: (d) => `${d.seconds} s, ${d.trials} trials: ${d.best}` })
          ]
        }));
      }
      return wrap;
    }, "Best validation " + name + " against time and against trials; " + pts.length +
      " points, last " + pts[pts.length - 1].best);
  }

  function drawModel(info) {
    drawSearch(info.progress);
    const c = info.charts || {};
    if (c.importance && c.importance.values && c.importance.values.length) {
      const d = c.importance.values.slice(0, 20).map((v) => ({ feature: v[0], value: v[1] }));
      mount("importance", () => Plot.plot({
        width: width(), height: 24 * d.length + 40, marginLeft: 150,
        x: { label: "mean |SHAP|", grid: true }, y: { label: null },
        marks: [Plot.barX(d, { x: "value", y: "feature", sort: { y: "-x" }, fill: "#1a5fb4",
          title: (r) => `${r.feature}: ${r.value}` }), Plot.ruleX([0])]
      }), "Feature importance bar chart: " + d.slice(0, 5).map((r) => r.feature).join(", ") + " lead");
    }
    if (c.confusion && !c.confusion.error) {
      const cols = c.confusion.columns.slice(1);
      const d = [];
      for (const row of c.confusion.rows) {
        cols.forEach((col, i) => d.push({ expected: text(row[0]), predicted: col, count: num(row[i + 1]) }));
      }
      mount("confusion", () => Plot.plot({
        width: Math.min(width(), 420), height: 80 + 60 * c.confusion.rows.length, marginLeft: 80,
        padding: 0.05,
        x: { label: "predicted", axis: "top" }, y: { label: "expected" },
        color: { scheme: "blues" },
        marks: [Plot.cell(d, { x: "predicted", y: "expected", fill: "count", title: (r) => `${r.expected} as ${r.predicted}: ${r.count}` }),
          Plot.text(d, { x: "predicted", y: "expected", text: "count", fill: "black", stroke: "white", fontSize: 14 })]
      }), "Confusion matrix heat map: " + d.map((r) => `${r.expected} predicted ${r.predicted}: ${r.count}`).join("; "));
    }
    if (c.roc && !c.roc.error) {
      const i = c.roc.columns.indexOf("recall"), j = c.roc.columns.indexOf("false_positive_rate");
      const d = c.roc.rows.map((r) => ({ fpr: num(r[j]), tpr: num(r[i]) }));
      mount("roc", () => Plot.plot({
        width: Math.min(width(), 420), height: 380, grid: true,
        x: { label: "false positive rate", domain: [0, 1] }, y: { label: "recall (true positive rate)", domain: [0, 1] },
        marks: [Plot.line([{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }], { x: "fpr", y: "tpr", stroke: "#888", strokeDasharray: "4,4" }),
          Plot.line(d, { x: "fpr", y: "tpr", stroke: "#1a5fb4", strokeWidth: 2 })]
      }), "ROC curve with " + d.length + " thresholds");
    }
    if (c.predicted && !c.predicted.error) {
      const d = c.predicted.rows.map((r) => ({ actual: num(r[0]), predicted: num(r[1]) }))
        .filter((r) => r.actual !== null && r.predicted !== null)
        .map((r) => ({ ...r, residual: r.actual - r.predicted }));
      const lo = Math.min(...d.map((r) => Math.min(r.actual, r.predicted)));
      const hi = Math.max(...d.map((r) => Math.max(r.actual, r.predicted)));
      mount("predicted", () => {
        const wrap = document.createElement("div");
        wrap.className = "pair";
        wrap.appendChild(Plot.plot({
          width: Math.min(width(), 420), height: 340, grid: true, marginLeft: 60,
          x: { label: "actual" }, y: { label: "predicted" },
          marks: [Plot.line([{ a: lo, p: lo }, { a: hi, p: hi }], { x: "a", y: "p", stroke: "#888", strokeDasharray: "4,4" }),
            Plot.dot(d, { x: "actual", y: "predicted", r: 2, fill: "#1a5fb4", fillOpacity: 0.6 })]
        }));
        wrap.appendChild(Plot.plot({
          width: Math.min(width(), 420), height: 340, grid: true, marginLeft: 60,
          x: { label: "predicted" }, y: { label: "residual (actual - predicted)" },
          marks: [Plot.ruleY([0], { stroke: "#888" }), Plot.dot(d, { x: "predicted", y: "residual", r: 2, fill: "#c64600", fillOpacity: 0.6 })]
        }));
        return wrap;
      }, "Predicted against actual, and residuals, for " + d.length + " rows");
    }
    if (c.clusters && !c.clusters.error) {
      const d = c.clusters.rows.map((r) => ({ cluster: num(r[0]), size: num(r[1]) }));
      mount("clusters", () => Plot.plot({
        width: Math.min(width(), 480), height: 300, marginLeft: 60,
        x: { label: "cluster", type: "band" }, y: { label: "rows", grid: true },
        marks: [Plot.barY(d, { x: "cluster", y: "size", fill: "#1a5fb4", title: (r) => `cluster ${r.cluster}: ${r.size}` }), Plot.ruleY([0])]
      }), "Cluster sizes: " + d.map((r) => `cluster ${r.cluster} ${r.size} rows`).join(", "));
    }
    if (c.forecast && c.forecast.forecast && !c.forecast.forecast.error) {
      const f = c.forecast.forecast;
      const cols = f.columns;
      const pcols = cols.filter((k) => /^p\d/.test(k));
      const pval = (k) => parseFloat(k.slice(1).replace("_", "."));
      pcols.sort((a, b) => pval(a) - pval(b));
      const mid = cols.includes("p50") ? "p50" : (cols.includes("mean") ? "mean" : pcols[Math.floor(pcols.length / 2)]);
      const at = (k) => cols.indexOf(k);
      const fd = f.rows.map((r) => ({ time: new Date(r[at("time")]), lo: num(r[at(pcols[0])]), hi: num(r[at(pcols[pcols.length - 1])]), mid: num(r[at(mid)]) }));
      // the history's last four forecast lengths (at least 48 points), so the band shows
      const keep = Math.max(48, 4 * fd.length);
      const h = c.forecast.history && !c.forecast.history.error ? c.forecast.history.rows.slice(-keep).map((r) => ({ time: new Date(r[0]), value: num(r[1]) })) : [];
      mount("forecast", () => Plot.plot({
        width: width(), height: 320, marginLeft: 60, grid: true,
        x: { label: "time" }, y: { label: "value" },
        marks: [Plot.areaY(fd, { x: "time", y1: "lo", y2: "hi", fill: "#1a5fb4", fillOpacity: 0.2 }),
          Plot.line(h, { x: "time", y: "value", stroke: "#333" }),
          Plot.line(fd, { x: "time", y: "mid", stroke: "#1a5fb4", strokeWidth: 2 })]
      }), `Forecast of ${fd.length} steps with the ${pcols[0]}-${pcols[pcols.length - 1]} band after the last ${h.length} points of history`);
    }
  }

  // --- live updates -----------------------------------------------------------------
  function modelsTable(rows) {
    let out = '<table class="models"><caption>Models you may see</caption><thead><tr>' +
      '<th scope="col">Model</th><th scope="col">State</th><th scope="col">Problem type</th>' +
      '<th scope="col">Metric</th><th scope="col">Owner</th><th scope="col">Versions</th>' +
      '<th scope="col">Training progress</th></tr></thead><tbody>';
    for (const m of rows) {
      const p = m.progress;
      let bar = "", status = text(m.status);
      if (p) {
        const share = p.budget_s ? Math.min(1, p.elapsed_s / p.budget_s) : 0;
        bar = `<progress max="100" value="${(share * 100).toFixed(0)}" aria-label="elapsed against budget">${(share * 100).toFixed(0)}%</progress> `;
        const best = p.best_metric !== null && p.best_metric !== undefined ? `, best ${p.metric_name || "metric"} ${p.best_metric.toFixed(4)}` : "";
        status = `${p.phase}: ${p.elapsed_s.toFixed(0)} s of ${p.budget_s.toFixed(0)} s, ${p.trials || 0} trials${best}`;
      }
      const href = "/models/" + encodeURIComponent(m.schema) + "/" + encodeURIComponent(m.name);
      const metric = m.metric_name ? `${esc(m.metric_name)} ${esc(m.metric)}` : "";
      out += `<tr data-model="${esc(m.schema)}.${esc(m.name)}"><th scope="row"><a href="${href}">${esc(m.schema)}.${esc(m.name)}</a></th>` +
        `<td class="state">${esc(m.state)}</td><td>${esc(m.problem_type)}</td><td>${metric}</td>` +
        `<td>${esc(m.owner)}</td><td>${esc(m.versions)} (${m.active_version === null ? "none active yet" : "active: v" + esc(m.active_version)})</td>` +
        `<td class="progress">${bar}<span>${esc(status)}</span></td></tr>`;
    }
    return out + "</tbody></table>";
  }

  function pollModels() {
    const box = document.getElementById("models");
    if (!box) return;
    const tick = () => fetch("/api/models", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((d) => {
        if (!d.models.length) return;
        if (box.hidden) { location.reload(); return; }
        const focused = document.activeElement && document.activeElement.closest("#models") ?
          document.activeElement.getAttribute("href") : null;
        box.innerHTML = modelsTable(d.models);
        if (focused) {
          const again = box.querySelector(`a[href="${focused}"]`);
          if (again) again.focus();
        }
      })
      .catch((s) => { if (s === 401) location.assign("/signin"); });
    setInterval(tick, 1000);
  }

  function pollModel(info) {
    if (info.state !== "TRAINING" && info.latest_state !== "TRAINING") return;
    const url = "/api/models/" + encodeURIComponent(info.schema) + "/" + encodeURIComponent(info.name);
    const timer = setInterval(() => {
      fetch(url, { credentials: "same-origin" }).then((r) => r.json()).then((d) => {
        if (d.error) return;
        const state = document.getElementById("model-state");
        const status = document.getElementById("model-status");
        if (status) status.textContent = d.status || "";
        if (d.progress && d.progress.history) drawSearch(d.progress);   // the search, live
        if (d.state !== info.state || d.latest_state !== "TRAINING") {
          clearInterval(timer);
          location.reload();
          return;
        }
        if (state) state.textContent = d.state;
      });
    }, 1000);
  }

  if (page && page.kind === "model") {
    drawModel(page.data);
    pollModel(page.data);
    let last = width();
    window.addEventListener("resize", () => { if (Math.abs(width() - last) > 40) { last = width(); drawModel(page.data); } });
  } else if (page && page.kind === "models") {
    pollModels();
  }
})();
