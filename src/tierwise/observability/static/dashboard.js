// tierwise dashboard: polls the gateway's JSON endpoints and reads the live request stream.
// The key comes from the URL fragment (#key=..., never sent to a server) or the key box, stays in
// this tab's sessionStorage and goes out only as a header to this same origin. All text from the
// gateway is inserted with textContent, never as HTML.
"use strict";
(function () {
  const MAX_ROWS = 200;
  const KEY = "tierwise.dashboard.key";
  const $ = (id) => document.getElementById(id);
  const state = { key: null, routes: {}, charts: {}, streamAbort: null, lastSeries: [] };

  function takeKeyFromFragment() {
    const m = /(?:^#|&)key=([^&]+)/.exec(location.hash || "");
    if (m) {
      sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    state.key = sessionStorage.getItem(KEY);
  }

  function headers() {
    return state.key ? { authorization: "Bearer " + state.key } : {};
  }

  async function api(path) {
    const r = await fetch(path, { headers: headers(), credentials: "omit", cache: "no-store" });
    if (r.status === 401) { needKey(); throw new Error("key needed"); }
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  function needKey() {
    $("keybox").hidden = false;
    setConn("a key is needed", "down");
  }

  function setConn(text, cls) {
    const c = $("conn");
    c.textContent = text;
    c.className = "conn " + (cls || "");
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.appendChild(c instanceof Node ? wrap(c) : el("td", c));
    return tr;
  }

  function wrap(node) { const td = document.createElement("td"); td.appendChild(node); return td; }

  function usd(v) { return v == null ? "-" : "$" + Number(v).toFixed(6); }
  function num(v, d) { return v == null ? "-" : Number(v).toFixed(d); }

  // ------------------------------------------------------------------ topology

  function renderTopology(t) {
    const body = $("deployments").tBodies[0];
    body.replaceChildren(...t.deployments.map((d) => row([
      d.name, d.provider, d.model, el("span", d.locality, d.locality),
      el("span", d.breaker, "badge " + d.breaker), d.calls_1m,
      d.error_rate_1m == null ? "-" : (100 * d.error_rate_1m).toFixed(1) + "%", num(d.latency_ms_1m, 1),
    ])));
    state.routes = {};
    state.online = {};
    for (const r of t.routes) {
      state.routes[r.name] = r.policy || "";
      // a learned route's online estimate from judged shadow pairs (text only: textContent, never HTML)
      if (r.online) state.online[r.name] = r.online.sentence;
    }
    const ws = $("workers");
    const note = $("presence-note");
    if (!t.presence) note.textContent = "no presence source configured (observability.dashboard.presence_redis_url)";
    else if (t.presence_error) note.textContent = t.presence_error;
    else note.textContent = t.workers.length + " online";
    ws.replaceChildren(...t.workers.map((w) => {
      const li = el("li");
      li.dataset.worker = w.id;
      li.appendChild(el("span", w.status, "badge " + (w.status === "online" ? "online" : "half-open")));
      const load = w.capacity ? " (" + (w.locality || "") + " " + (w.in_flight || 0) + "/" + w.capacity + ")" : "";
      li.appendChild(document.createTextNode(" " + w.id + (w.capabilities.length ? " — " + w.capabilities.join(", ") : "") + load));
      return li;
    }));
  }

  // ------------------------------------------------------------------ charts and totals

  function chart(id, series, width, digits) {
    const y = { stroke: "#8a96a3", grid: { stroke: "#222b36" }, size: 84 };
    if (digits) y.values = (u, vals) => vals.map((v) => v.toFixed(digits));
    const opts = {
      width: width, height: 200, series: [{}].concat(series),
      axes: [{ stroke: "#8a96a3", grid: { stroke: "#222b36" } }, y],
      legend: { live: false },
    };
    const data = [[]].concat(series.map(() => []));
    return new uPlot(opts, data, $(id));
  }

  function ensureCharts() {
    if (state.charts.rps || typeof uPlot === "undefined") return;
    const w = Math.max(300, $("chart-rps").clientWidth || 500);
    state.charts.rps = chart("chart-rps", [
      { label: "local", stroke: "#58a6ff" }, { label: "remote", stroke: "#bc8cff" }, { label: "errors", stroke: "#f85149" },
    ], w);
    state.charts.cost = chart("chart-cost", [
      { label: "cost", stroke: "#d29922" }, { label: "reference", stroke: "#8a96a3" }, { label: "saved", stroke: "#3fb950" },
    ], w, 6);
  }

  function renderSummary(s) {
    const t = s.totals;
    $("t-n").textContent = t.n;
    $("t-errors").textContent = t.errors;
    $("t-cost").textContent = usd(t.cost);
    $("t-ref").textContent = usd(t.ref_cost);
    $("t-learning").textContent = usd(t.learning_cost || 0);
    $("t-saved").textContent = usd(t.ref_cost - t.cost - (t.learning_cost || 0));
    const series = s.series;
    const now = Math.floor(Date.now() / 1000);
    const recent = series.filter((x) => x.t >= now - 10);
    const n10 = recent.reduce((a, x) => a + x.n, 0);
    $("t-rps").textContent = (n10 / 10).toFixed(1);
    ensureCharts();
    if (state.charts.rps) {
      const xs = series.map((x) => x.t);
      state.charts.rps.setData([xs, series.map((x) => x.local), series.map((x) => x.remote), series.map((x) => x.errors)]);
      let c = 0, r = 0;
      const cc = [], rr = [], sv = [];
      for (const x of series) { c += x.cost + (x.learning_cost || 0); r += x.ref_cost; cc.push(c); rr.push(r); sv.push(r - c); }
      state.charts.cost.setData([xs, cc, rr, sv]);
    }
    const per = {}, dec = {};
    for (const x of recent) {
      for (const [k, v] of Object.entries(x.routes)) per[k] = (per[k] || 0) + v;
      for (const [route, d] of Object.entries(x.decisions || {})) {
        const into = dec[route] || (dec[route] = {});
        for (const [why, n] of Object.entries(d)) into[why] = (into[why] || 0) + n;
      }
    }
    const decText = (r) => Object.entries(dec[r] || {}).map(([k, v]) => k + " " + (v / 10).toFixed(1)).join(", ") || "-";
    const names = Object.keys(state.routes).length ? Object.keys(state.routes) : Object.keys(per);
    for (const k of Object.keys(per)) if (!names.includes(k)) names.push(k);
    $("routes").tBodies[0].replaceChildren(...names.map((n) => row([n, state.routes[n] || "-", ((per[n] || 0) / 10).toFixed(1), decText(n), (state.online || {})[n] || "-"])));
    const rows = [];
    const ex = s.extras || {};
    for (const [what, list] of Object.entries(ex)) {
      for (const v of list) rows.push(row([what, Object.entries(v.labels).map(([a, b]) => a + "=" + b).join(" "), num(v.value, 4)]));
    }
    const cache = ex.cache || [];
    const hits = cache.filter((v) => /hit/.test(v.labels.result || "")).reduce((a, v) => a + v.value, 0);
    const all = cache.filter((v) => /hit|miss/.test(v.labels.result || "")).reduce((a, v) => a + v.value, 0);
    if (all) rows.unshift(row(["cache hit rate", "", (100 * hits / all).toFixed(1) + "%"]));
    if (!rows.length) rows.push(row(["-", ex.cache ? "nothing recorded yet" : "turn on observability.metrics to see these", ""]));
    $("extras").tBodies[0].replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ live stream

  function addRows(rows, skipped) {
    const body = $("live").tBodies[0];
    const frag = document.createDocumentFragment();
    for (const r of rows.slice().reverse()) {
      const tr = row([
        new Date(r.t * 1000).toLocaleTimeString(), r.id, r.route, r.api + (r.stream ? " (stream)" : ""),
        el("span", r.model || "-", r.locality || ""), el("span", r.status, r.status >= 400 ? "err" : ""),
        num(r.latency_ms, 1), r.cost ? Number(r.cost).toFixed(6) : "0", r.summary,
      ]);
      tr.dataset.id = r.id;
      tr.addEventListener("click", () => openTrace(r.id));
      frag.appendChild(tr);
    }
    body.insertBefore(frag, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    $("sampled").textContent = skipped ? "(sampled: " + skipped + " not shown in the last update)" : "";
  }

  async function stream() {
    for (;;) {
      const ctrl = new AbortController();
      state.streamAbort = ctrl;
      try {
        const r = await fetch("/dashboard/api/stream", { headers: headers(), credentials: "omit", signal: ctrl.signal });
        if (r.status === 401) { needKey(); return; }
        if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
        setConn("live", "live");
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (data) { const m = JSON.parse(data); addRows(m.rows, m.skipped); }
          }
        }
      } catch (e) {
        if (ctrl.signal.aborted) return;
      }
      setConn("reconnecting…", "down");
      await new Promise((res) => setTimeout(res, 1000));
    }
  }

  // ------------------------------------------------------------------ trace

  function tokens(u) {
    if (!u) return "";
    const cr = u.cache_read_tokens || 0, cw = u.cache_write_tokens || 0;
    return (u.input_tokens || 0) + cr + cw + (cr ? " (" + cr + " cached)" : "") + "/" + (u.output_tokens || 0);
  }

  async function openTrace(id) {
    let t;
    try { t = await api("/dashboard/api/trace?id=" + encodeURIComponent(id)); } catch (e) { return; }
    $("trace").hidden = false;
    $("trace-id").textContent = t.request_id || id;
    $("trace-summary").textContent = "route " + t.route + " · status " + t.status + " · answered by " +
      (t.decision || t.model || "-") + " · " + num(t.latency_ms, 1) + " ms · reason: " + (t.reason || "-");
    $("trace-steps").tBodies[0].replaceChildren(...(t.steps || []).map((s, i) => row([
      i + 1, s.kind, s.name, s.ok == null ? "-" : (s.ok ? "yes" : "no"), s.status == null ? "" : s.status,
      s.latency_ms == null ? "" : Number(s.latency_ms).toFixed(0), tokens(s.usage),
      s.cost == null ? "" : Number(s.cost).toFixed(6), s.reason || "",
    ])));
    $("trace").scrollIntoView({ block: "nearest" });
  }

  // ------------------------------------------------------------------ start

  async function poll() {
    if (state.ownOnly) return;  // a gateway key: its own requests only, no gateway-wide totals to ask for
    try {
      const [t, s] = await Promise.all([api("/dashboard/api/topology"), api("/dashboard/api/summary?seconds=300")]);
      renderTopology(t);
      renderSummary(s);
    } catch (e) { /* shown in the status line */ }
  }

  async function start() {
    $("keybox").hidden = true;
    try {  // a gateway key reads its own requests only: the gateway-wide panels are not asked for
      state.ownOnly = !(await api("/dashboard/api/role")).gateway_wide;
    } catch (e) { state.ownOnly = false; }
    $("own-only").hidden = !state.ownOnly;
    poll();
    stream();
  }

  document.addEventListener("DOMContentLoaded", () => {
    takeKeyFromFragment();
    $("key-ok").addEventListener("click", () => {
      const v = $("key").value.trim();
      if (!v) return;
      sessionStorage.setItem(KEY, v);
      state.key = v;
      $("key").value = "";
      if (state.streamAbort) state.streamAbort.abort();
      start();
    });
    $("trace-close").addEventListener("click", () => { $("trace").hidden = true; });
    start();
    setInterval(poll, 1000);
  });
})();
