"use strict";
// The dashboard reads the monitor's JSON endpoints with the admin key the
// user entered once (kept in localStorage) and redraws every 15 seconds.
(function () {
  const KEY = "replyrocket.adminKey";
  const $ = (id) => document.getElementById(id);
  const base = new URL(".", location.href);
  let selectedTable = "";

  // `replyrocket dev` prints the dashboard URL as /db-monitor/#key=<admin
  // key>: a fragment never reaches the server or its logs. Keep the key and
  // drop the fragment from the address bar and history.
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) {
    localStorage.setItem(KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }

  function status(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = cls || "";
  }

  async function api(path, options) {
    const key = localStorage.getItem(KEY);
    if (!key) {
      const err = new Error("Enter the admin key to load the monitor.");
      err.needKey = true;
      throw err;
    }
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers.Authorization = "Bearer " + key;
    if (opts.body) opts.headers["Content-Type"] = "application/json";
    const url = path.startsWith("/") ? path : new URL(path, base).toString();
    const res = await fetch(url, opts);
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error((body.title || res.status) + ": " + (body.detail || res.statusText));
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fill(tableId, rows, render) {
    const tbody = $(tableId).querySelector("tbody");
    tbody.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      render(tr, r);
      tbody.appendChild(tr);
    }
  }

  const num = (v, d) => (v === null || v === undefined ? null : Number(v).toFixed(d === undefined ? 1 : d));
  function bytes(n) {
    const u = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + u[i];
  }

  // drawChart plots series of numbers (null = gap) against times on a
  // canvas, with a light grid and a legend.
  function drawChart(canvas, times, series, yMin, yMax) {
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, L = 44, R = 10, T = 22, B = 24;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, W, H);
    const vals = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
    if (yMin === undefined) yMin = Math.min(0, ...vals);
    if (yMax === undefined) yMax = Math.max(1, ...vals);
    if (yMax <= yMin) yMax = yMin + 1;
    const x = (i) => L + (times.length < 2 ? (W - L - R) / 2 : (i * (W - L - R)) / (times.length - 1));
    const y = (v) => T + (1 - (v - yMin) / (yMax - yMin)) * (H - T - B);
    ctx.strokeStyle = "#d0d7de";
    ctx.fillStyle = "#57606a";
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    for (let g = 0; g <= 4; g++) {
      const v = yMin + ((yMax - yMin) * g) / 4;
      ctx.beginPath();
      ctx.moveTo(L, y(v));
      ctx.lineTo(W - R, y(v));
      ctx.stroke();
      ctx.fillText(v.toFixed(yMax - yMin < 5 ? 1 : 0), 4, y(v) + 4);
    }
    if (times.length) {
      ctx.fillText(new Date(times[0]).toLocaleTimeString(), L, H - 6);
      const last = new Date(times[times.length - 1]).toLocaleTimeString();
      ctx.fillText(last, W - R - ctx.measureText(last).width, H - 6);
    }
    let lx = L;
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        if (pen) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
        pen = true;
      });
      ctx.stroke();
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        ctx.beginPath();
        ctx.arc(x(i), y(v), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      });
      ctx.fillRect(lx, 6, 10, 10);
      ctx.fillStyle = "#1f2328";
      ctx.fillText(s.label, lx + 14, 15);
      lx += 24 + ctx.measureText(s.label).width;
    }
  }

  function renderPerformance(p) {
    $("dbline").textContent = "Database " + p.database + ": " + bytes(p.size_bytes) +
      " · pool " + p.pool.acquired_conns + " busy / " + p.pool.total_conns + " open / " + p.pool.max_conns + " max";
    fill("checks", p.checks, (tr, c) => {
      cell(tr, c.name.replace(/_/g, " "));
      cell(tr, c.status, c.status);
      cell(tr, c.message);
    });
    const links = $("links");
    links.replaceChildren();
    for (const [name, href] of Object.entries(p.links || {})) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = name.replace(/_/g, " ");
      links.append(a, " ");
    }
    const times = p.history.map((h) => h.at);
    const pct = (v) => (v === null || v === undefined ? null : 100 * v);
    const floor = (series) => {
      const vals = series.flatMap((s) => s.values).filter((v) => v !== null);
      return vals.length ? Math.min(90, ...vals) : 90;
    };
    const queryCache = [
      { label: "query cache", color: "#1a7f37", values: p.history.map((h) => pct(h.query_cache_hit_rate)) },
    ];
    drawChart($("hitchart"), times, queryCache, floor(queryCache), 100);
    const buffers = [
      { label: "tables", color: "#0969da", values: p.history.map((h) => pct(h.table_hit_rate)) },
      { label: "indexes", color: "#8250df", values: p.history.map((h) => pct(h.index_hit_rate)) },
    ];
    drawChart($("bufferchart"), times, buffers, floor(buffers), 100);
    drawChart($("poolchart"), times, [
      { label: "busy", color: "#cf222e", values: p.history.map((h) => h.acquired_conns) },
      { label: "idle", color: "#1a7f37", values: p.history.map((h) => h.idle_conns) },
      { label: "max", color: "#57606a", values: p.history.map((h) => h.max_conns) },
    ], 0);
    fill("tables", p.tables, (tr, t) => {
      const td = cell(tr, "");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.textContent = t.name;
      b.addEventListener("click", () => { selectedTable = t.name; loadTable().catch(show); });
      td.appendChild(b);
      cell(tr, bytes(t.total_bytes), "num");
      cell(tr, t.estimated_rows, "num");
      cell(tr, t.partitions, "num");
    });
    if (!selectedTable && p.tables.length) {
      const part = p.tables.find((t) => t.partitions > 0);
      selectedTable = (part || p.tables[0]).name;
    }
  }

  function renderSlow(s) {
    const pgss = s.pg_stat_statements;
    $("pgss").textContent = pgss.available
      ? (s.window ? "Window " + s.window.requested + " (" + Math.round(s.window.seconds) + " s of snapshots)" : "Since statistics were reset") +
        " · slow = mean ≥ " + s.slow_rule.mean_ms_at_least + " ms over ≥ " + s.slow_rule.calls_at_least + " calls"
      : "pg_stat_statements unavailable: " + pgss.reason + ". " + pgss.how_to_enable;
    fill("slow", s.by_total_time || [], (tr, q) => {
      cell(tr, num(q.total_ms), "num");
      cell(tr, num(q.share_pct) + " %", "num");
      cell(tr, q.calls, "num");
      cell(tr, num(q.mean_ms, 2), q.slow ? "num warning" : "num");
      cell(tr, q.rows, "num");
      cell(tr, q.query, "sql");
    });
    fill("appq", s.app_queries, (tr, q) => {
      cell(tr, q.name);
      cell(tr, q.calls, "num");
      cell(tr, q.errors, q.errors ? "num error" : "num");
      cell(tr, num(q.p50_ms, 2), "num");
      cell(tr, num(q.p95_ms, 2), "num");
      cell(tr, num(q.p99_ms, 2), "num");
      cell(tr, q.cache_hit_rate === null ? "no cache" : num(100 * q.cache_hit_rate) + " %", "num");
    });
  }

  async function loadTable() {
    if (!selectedTable) return;
    const t = await api("table-stats/" + encodeURIComponent(selectedTable));
    $("tstitle").textContent = t.name + " (" + t.kind + "): " + bytes(t.total_bytes) + ", ~" + t.estimated_rows +
      " rows, " + t.indexes.length + " indexes" + (t.partitions ? ", " + t.partitions.length + " partitions" : "");
    fill("parts", t.partitions || [t], (tr, p) => {
      cell(tr, p.name);
      cell(tr, p.bounds || "");
      cell(tr, p.estimated_rows, "num");
      cell(tr, bytes(p.total_bytes), "num");
      cell(tr, p.seq_scans, "num");
      cell(tr, p.idx_scans, "num");
      cell(tr, p.dead_rows, "num");
    });
  }

  async function loadHealth(p) {
    const h = await fetch("/health/db").then((r) => r.json()).catch(() => null);
    let text = h ? "Health: " + h.status + " (" + num(h.latency_ms, 2) + " ms)" : "Health: no answer";
    if (p.links && p.links.cache) {
      const c = await api(p.links.cache).catch(() => null);
      if (c && typeof c.hit_rate === "number") text += " · query cache hit rate " + num(100 * c.hit_rate) + " %";
    }
    $("health").textContent = text;
  }

  function show(err) {
    status(err.message, err.needKey ? "" : "error");
  }

  async function refresh() {
    try {
      status("Loading…");
      const p = await api("performance");
      renderPerformance(p);
      const w = $("window").value;
      renderSlow(await api("slow-queries" + (w ? "?window=" + encodeURIComponent(w) : "")));
      await loadTable();
      await loadHealth(p);
      status("Updated " + new Date().toLocaleTimeString(), "ok");
    } catch (err) {
      show(err);
    }
  }

  async function explain(kind) {
    const advice = $("advice");
    advice.replaceChildren();
    $("result").textContent = "";
    try {
      const r = await api(kind, { method: "POST", body: JSON.stringify({ sql: $("sql").value }) });
      const items = kind === "analyze-query"
        ? r.recommendations.map((x) => x.message)
        : [r.note].concat(r.suggestions.map((s) => s.statements[0] + " — " + s.reason));
      for (const text of items) {
        const li = document.createElement("li");
        li.textContent = text;
        advice.appendChild(li);
      }
      $("result").textContent = JSON.stringify(r, null, 2);
    } catch (err) {
      $("result").textContent = err.message;
    }
  }

  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("key").value.trim();
    if (v) localStorage.setItem(KEY, v);
    $("key").value = "";
    refresh();
  });
  $("forget").addEventListener("click", () => { localStorage.removeItem(KEY); status("Key forgotten."); });
  $("window").addEventListener("change", refresh);
  $("analyze").addEventListener("click", () => explain("analyze-query"));
  $("optimize").addEventListener("click", () => explain("optimize-query"));
  refresh();
  setInterval(refresh, 15000);
})();
