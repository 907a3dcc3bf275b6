// pitcrew console: polls /api/state (1 s) and /api/conflicts (2 s) and
// draws them. No dependencies; the token stays in this tab's session
// storage and is sent as a bearer header, never shown.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "pitcrew-console-token";
let state = null;
let selected = null; // {node, id} of the conflict shown in detail
let lastConflicts = null;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const t = token();
  if (t) headers["Authorization"] = "Bearer " + t;
  if (opts.body) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = new Error((body && body.error) || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return body;
}

// ---------- formatting ----------
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
function num(n) { return Math.round(n).toLocaleString("en-US"); }
function dur(s) {
  if (s == null || isNaN(s)) return "—";
  if (s < 0) return "unknown";
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 60) return Math.round(s) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + String(Math.round(s % 60)).padStart(2, "0") + "s";
  const h = Math.floor(m / 60);
  if (h < 48) return h + "h " + String(m % 60).padStart(2, "0") + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}
function bytes(b) {
  if (!b) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (b >= 100 || i === 0 ? b.toFixed(0) : b.toFixed(1)) + " " + u[i];
}
function ago(ts) {
  if (!ts) return "";
  const s = (Date.now() - new Date(ts).getTime()) / 1000;
  if (s < 5) return "just now";
  return dur(s) + " ago";
}
function clock(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

// ---------- banner ----------
let bannerTimer = null;
function banner(msg, ok) {
  const b = $("banner");
  b.textContent = msg;
  b.classList.toggle("ok", !!ok);
  b.classList.remove("hidden");
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => b.classList.add("hidden"), ok ? 6000 : 15000);
}

// ---------- confirmation dialog ----------
// confirmAction shows what will happen; with typed=true the person must
// type the phrase. Resolves to true only on an explicit confirm.
function confirmAction(title, text, phrase, typed, okLabel) {
  return new Promise((resolve) => {
    const d = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-phrase").textContent = phrase;
    $("confirm-type-label").classList.toggle("hidden", !typed);
    const input = $("confirm-input");
    input.value = "";
    const ok = $("confirm-ok");
    ok.textContent = okLabel || "Confirm";
    ok.disabled = typed;
    input.oninput = () => { ok.disabled = input.value !== phrase; };
    d.onclose = () => resolve(d.returnValue === "ok" && (!typed || input.value === phrase));
    d.returnValue = "";
    d.showModal();
    (typed ? input : ok).focus();
  });
}

async function act(path, body, okMsg) {
  try {
    const r = await api(path, { method: "POST", body: JSON.stringify(body) });
    banner((r && r.message) || okMsg, true);
  } catch (e) {
    banner(e.message, false);
  }
  refresh();
  refreshConflicts();
}

// ---------- auth ----------
function renderAuth() {
  const a = state ? state.auth : { token: false, valid: false };
  const st = $("auth-state");
  const unlocked = !!token() && a.valid;
  $("token-form").classList.toggle("hidden", unlocked);
  $("lock").classList.toggle("hidden", !unlocked);
  if (!a.token) {
    st.textContent = "read-only: no console_token configured, actions are off";
    $("token-form").classList.add("hidden");
  } else if (unlocked) {
    st.textContent = "actions enabled";
  } else if (token()) {
    st.textContent = "token rejected";
  } else {
    st.textContent = "read-only";
  }
  document.body.classList.toggle("can-act", unlocked);
}
function canAct() { return !!(state && state.auth.valid); }

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = $("token").value.trim();
  $("token").value = "";
  if (v) sessionStorage.setItem(TOKEN_KEY, v);
  refresh();
  refreshConflicts();
});
$("lock").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  refresh();
});

// ---------- charts ----------
const SVGNS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
// lagChart draws seconds behind (line) and transactions behind (area, own
// scale) over the history's time span.
function lagChart(svg, pts) {
  svg.replaceChildren();
  // Drawn at the element's pixel size, so text is never stretched.
  const W = Math.max(200, svg.clientWidth || 600), H = Math.max(80, svg.clientHeight || 130), L = 40, R = 58, T = 10, B = 18;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const now = pts.length ? pts[pts.length - 1].t : Date.now() / 1000;
  const span = Math.max(60, pts.length ? now - pts[0].t : 60);
  const t0 = now - span;
  const lagMax = niceMax(Math.max(1, ...pts.map((p) => p.lag)));
  const behMax = niceMax(Math.max(1, ...pts.map((p) => p.behind)));
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const y = (v, m) => T + (1 - v / m) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    const yy = T + f * (H - T - B);
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: yy, y2: yy, stroke: "#e6e8ec", "stroke-width": 1 }));
  }
  const tl = (x0, y0, s, anchor) => { const t = svgEl("text", { x: x0, y: y0, "text-anchor": anchor || "start" }); t.textContent = s; svg.append(t); };
  tl(L - 4, T + 8, dur(lagMax).replace(".0 s", " s"), "end");
  tl(L - 4, H - B, "0", "end");
  tl(W - R + 4, T + 8, num(behMax) + " tx");
  tl(W - R + 4, H - B, "0");
  tl(L, H - 4, "-" + dur(span).replace(".0 s", " s"));
  tl(W - R, H - 4, "now", "end");
  if (pts.length > 1) {
    let area = `M ${x(pts[0].t)} ${y(0, behMax)} `;
    for (const p of pts) area += `L ${x(p.t).toFixed(1)} ${y(p.behind, behMax).toFixed(1)} `;
    area += `L ${x(pts[pts.length - 1].t)} ${y(0, behMax)} Z`;
    svg.append(svgEl("path", { d: area, fill: "#c9d3e3", "fill-opacity": 0.6, stroke: "none", class: "behind-area" }));
    const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.lag, lagMax).toFixed(1)}`).join(" ");
    svg.append(svgEl("polyline", { points: line, fill: "none", stroke: "#2563c9", "stroke-width": 2, class: "lag-line" }));
  }
}
function barChart(svg, pts, key, color) {
  svg.replaceChildren();
  const W = Math.max(100, svg.clientWidth || 300), H = Math.max(40, svg.clientHeight || 70), L = 4, B = 4;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const vals = pts.map((p) => Math.max(0, p[key]));
  const m = niceMax(Math.max(1, ...vals));
  const n = Math.max(vals.length, 1);
  const bw = (W - L * 2) / n;
  vals.forEach((v, i) => {
    const h = (v / m) * (H - 16 - B);
    svg.append(svgEl("rect", { x: L + i * bw + 0.5, y: H - B - h, width: Math.max(1, bw - 1), height: Math.max(v > 0 ? 1 : 0, h), fill: color }));
  });
  const t = svgEl("text", { x: W - 4, y: 11, "text-anchor": "end" });
  t.textContent = "max " + num(m);
  svg.append(t);
  svg.append(svgEl("line", { x1: 0, x2: W, y1: H - B, y2: H - B, stroke: "#cfd4db" }));
}

// ---------- channels ----------
// behind: the channel has a backlog worth saying so (under a steady
// workload a few transactions are always in flight).
function behind(c) { return c.transactions_behind > 0 && c.seconds_behind_source >= 1; }
function stateClass(c) {
  switch (c.state) {
    case "streaming": return behind(c) ? "pill-info" : "pill-ok";
    case "caught-up": return "pill-ok";
    case "starting": return "pill-info";
    case "retrying": return "pill-warn";
    case "failed": case "stopped": return "pill-bad";
  }
  return "pill-unknown";
}
function stateText(c) {
  if (c.state === "streaming" && behind(c)) return "streaming · catching up";
  if (c.state === "streaming") return "streaming · in sync";
  return c.state;
}
function stat(cls, key, value, title) {
  const s = el("div", { class: "stat " + cls }, el("div", { class: "v", text: value }), el("div", { class: "k", text: key }));
  if (title) s.title = title;
  return s;
}
function channelCard(c, maxLag) {
  const card = el("div", { class: "card channel", "data-channel": c.channel });
  card.append(el("div", { class: "ch-head" },
    el("span", { class: "ch-name", text: c.channel }),
    el("span", { class: "pill state " + stateClass(c), text: stateText(c) }),
    el("span", { class: "since muted small", text: c.started_at ? "since " + clock(c.started_at) : "" })));
  const lagCls = maxLag > 0 && c.seconds_behind_source > maxLag ? "bad" : c.seconds_behind_source >= 10 ? "warn" : "";
  let eta = "—";
  if (c.transactions_behind > 0) eta = c.catch_up_in_seconds < 0 ? "unknown" : dur(c.catch_up_in_seconds);
  else if (c.state === "streaming" || c.state === "caught-up") eta = "caught up";
  card.append(el("div", { class: "stats" },
    stat("lag " + lagCls, "lag", dur(c.seconds_behind_source), "age of the last applied source transaction while behind"),
    stat("behind", "behind", num(c.transactions_behind) + " tx", "source transactions not yet applied"),
    stat("rate", "apply rate", num(c.apply_rate || 0) + " tx/s"),
    stat("eta", "ETA", eta, "estimated time to apply the backlog")));
  const svg = svgEl("svg", { class: "chart lag-chart", role: "img", "aria-label": "lag over time" });
  svg.history = c.history || [];
  card.append(svg);
  card.append(el("div", { class: "legend" },
    el("span", {}, el("i", { class: "lg-lag" }), "seconds behind"),
    el("span", {}, el("i", { class: "lg-beh" }), "transactions behind")));
  // relay
  const relay = el("div", { class: "row relay" }, el("span", { class: "k", text: "relay" }));
  if (!c.relay_state || c.relay_state === "off") {
    relay.append(el("span", { class: "val muted", text: "off (relay: false)" }));
  } else {
    const q = c.relay_quota_bytes || 0;
    const f = q > 0 ? Math.min(1, c.relay_bytes / q) : 0;
    const bar = el("div", { class: "bar" + (f > 0.9 ? " bad" : f > 0.7 ? " warn" : "") }, el("div"));
    bar.firstChild.style.width = (f * 100).toFixed(1) + "%";
    relay.append(bar, el("span", { class: "val small", text: `${bytes(c.relay_bytes)} of ${q ? bytes(q) : "?"} (${(f * 100).toFixed(0)}%) · ${c.relay_state}` }));
  }
  card.append(relay);
  // retention
  const ret = el("div", { class: "row retention" }, el("span", { class: "k", text: "retention" }));
  if (c.retention_warning) ret.append(el("span", { class: "pill pill-bad", text: "at risk" }));
  else ret.append(el("span", { class: "pill pill-ok", text: "ok" }));
  const exp = c.binlog_expires_in_seconds;
  ret.append(el("span", { class: "val small muted", text: exp < 0 ? "the source keeps its binlogs (no expiry by age)" : "oldest binlog still needed may be purged in " + dur(exp) }));
  card.append(ret);
  if (c.retention_warning) card.append(el("div", { class: "warnbox", text: c.retention_warning }));
  const last = c.last_source_commit ? " · last source commit " + clock(c.last_source_commit) : "";
  card.append(el("div", { class: "counts" }, document.createTextNode(
    `${num(c.transactions_applied)} tx · ${num(c.rows_applied)} rows applied · ${num(c.reconnects)} reconnects` +
    (c.conflicts ? ` · ${num(c.conflicts)} conflict${c.conflicts === 1 ? "" : "s"}` : "") + (c.echoes_dropped ? ` · ${num(c.echoes_dropped)} echoes dropped` : "") + last)));
  if (c.last_error) {
    card.append(el("div", { class: "err" }, el("b", { text: c.state === "retrying" ? "Last error (retrying):" : "Error:" }), document.createTextNode(c.last_error)));
  }
  if (c.skipped_gtids && c.skipped_gtids.length) {
    card.append(el("div", { class: "counts", text: "skipped by the operator: " + c.skipped_gtids.join(", ") }));
  }
  return card;
}
function renderChannels() {
  const box = $("channels");
  const chs = state.channels || [];
  if (!chs.length) {
    box.replaceChildren(el("p", { class: "muted", text: state.runbook ? "No channel runs at this step." : "No channel yet." }));
    return;
  }
  box.replaceChildren(...chs.map((c) => channelCard(c, state.max_lag || 0)));
  for (const svg of box.querySelectorAll("svg.lag-chart")) lagChart(svg, svg.history);
}

// ---------- conflicts ----------
function keyText(k) {
  if (!k) return "";
  return Object.entries(k).map(([a, b]) => `${a}=${b}`).join(" ");
}
function outcomePill(o) {
  const cls = o === "parked" ? "pill-warn" : o.startsWith("resolved") ? "pill-ok" : "pill-unknown";
  return el("span", { class: "pill " + cls, text: o });
}
function renderConflicts(cv) {
  lastConflicts = cv;
  $("conflicts").classList.toggle("hidden", !cv.enabled);
  if (!cv.enabled) return;
  const p = $("parked");
  p.textContent = cv.parked + " parked";
  p.className = "pill " + (cv.parked > 0 ? "pill-warn" : "pill-ok");
  const rows = cv.list.map((c) => {
    const tr = el("tr", { "data-node": c.node, "data-id": String(c.id) },
      el("td", { text: String(c.id) }), el("td", { text: c.node }), el("td", { text: c.channel }),
      el("td", { text: c.table }), el("td", { text: c.op }), el("td", { class: "key mono", text: keyText(c.key) }),
      el("td", { text: c.policy }), el("td", {}, outcomePill(c.outcome)), el("td", { class: "muted", text: ago(c.created) }));
    if (selected && selected.node === c.node && selected.id === c.id) tr.classList.add("sel");
    tr.addEventListener("click", () => showConflict(c.node, c.id));
    return tr;
  });
  $("conflict-rows").replaceChildren(...rows);
  $("conflicts-empty").classList.toggle("hidden", cv.list.length > 0);
}
function imageTable(title, img, other) {
  const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "column" }), el("th", { text: title }))));
  const body = el("tbody");
  if (!img) body.append(el("tr", {}, el("td", { class: "muted", text: "(no row)" }), el("td")));
  else for (const k of Object.keys(img).sort()) {
    const v = img[k] === null ? "NULL" : String(img[k]);
    const tr = el("tr", {}, el("td", { class: "mono", text: k }), el("td", { class: "mono", text: v }));
    if (other && String(other[k]) !== String(img[k])) tr.classList.add("diff");
    body.append(tr);
  }
  t.append(body);
  return el("div", {}, t);
}
async function showConflict(node, id) {
  selected = { node, id };
  let c;
  try {
    c = await api(`api/conflicts/${encodeURIComponent(node)}/${id}`);
  } catch (e) { banner(e.message); return; }
  const box = $("conflict-detail");
  const head = el("div", { class: "cd-head" },
    el("b", { text: `Conflict ${c.id} on node ${c.node}` }), outcomePill(c.outcome),
    el("span", { class: "muted small", text: `${c.op} on ${c.table} · ${c.reason} · channel ${c.channel} · GTID ${c.gtid} · ${clock(c.created)}` }));
  if (c.outcome === "parked") {
    const acts = el("div", { class: "actions" });
    for (const take of ["source", "target"]) {
      const b = el("button", { id: "take-" + take, type: "button", class: take === "source" ? "primary" : "", text: take === "source" ? "Take source's row" : "Keep target's row" });
      if (!canAct()) { b.disabled = true; b.title = "enter the console token at the top to act"; }
      b.addEventListener("click", () => resolveConflict(c, take));
      acts.append(b);
    }
    head.append(acts);
  }
  box.replaceChildren(head, el("div", { class: "images" },
    imageTable("incoming (source)", c.source_image, c.target_image),
    imageTable("on the target now", c.target_image, c.source_image)));
  if (c.outcome === "parked" && !canAct()) {
    box.append(el("p", { class: "muted small", text: state && state.auth.token ? "Enter the console token at the top of the page to settle this conflict." : "Actions are off: set console_token in the config (or PITCREW_CONSOLE_TOKEN) and restart." }));
  }
  box.classList.remove("hidden");
  if (lastConflicts) renderConflicts(lastConflicts);
}
async function resolveConflict(c, take) {
  const phrase = `resolve ${c.node}/${c.id} take ${take}`;
  const what = take === "source"
    ? `Write the source's row into ${c.table} on node ${c.node} (it replicates onwards like any write) and mark conflict ${c.id} resolved.`
    : `Keep the row node ${c.node} has in ${c.table} and mark conflict ${c.id} resolved.`;
  if (!(await confirmAction(`Resolve conflict ${c.id}?`, what, phrase, false, take === "source" ? "Take source" : "Keep target"))) return;
  await act(`api/conflicts/${encodeURIComponent(c.node)}/${c.id}/resolve`, { take, confirm: phrase }, "resolved");
  showConflict(c.node, c.id);
}

// ---------- runbook ----------
function renderRunbook() {
  const rb = state.runbook;
  $("runbook").classList.toggle("hidden", !rb);
  if (!rb) return;
  $("rb-name").textContent = rb.name;
  const wait = $("rb-wait");
  if (rb.error) {
    wait.replaceChildren(el("span", { class: "what", text: "Cannot read the runbook: " + rb.error }));
    wait.classList.remove("hidden");
  } else if (rb.waiting || rb.confirm) {
    const kids = [el("span", { class: "what" }, el("b", { text: rb.running ? rb.running + " waits for: " : "Waiting for: " }), document.createTextNode(rb.waiting || "the operator's confirmation"))];
    if (rb.confirm) {
      const phrase = rb.confirm === "rollback" ? "the application writes to the source again" : "the application writes to the target now";
      const b = el("button", { id: "rb-confirm", type: "button", class: "primary", text: rb.confirm === "rollback" ? "Confirm: application moved back" : "Confirm: application moved" });
      if (!canAct()) { b.disabled = true; b.title = "enter the console token at the top to act"; }
      b.addEventListener("click", async () => {
        const to = rb.confirm === "rollback" ? "source" : "target";
        if (!(await confirmAction("Confirm the move", `Only confirm once every application writer uses the ${to}: the run then fences the other side.`, phrase, true, "Confirm"))) return;
        act("api/runbook/confirm", { phase: rb.confirm, confirm: phrase }, "confirmed");
      });
      kids.push(b);
    }
    wait.replaceChildren(...kids);
    wait.classList.remove("hidden");
  } else wait.classList.add("hidden");
  const steps = (rb.steps || []).map((s, i) => {
    const li = el("li", { class: s.state, "data-step": s.id });
    li.append(el("span", { class: "n", text: s.state === "done" ? "✓" : s.state === "failed" ? "!" : String(i + 1) }));
    li.append(el("div", {}, el("div", { class: "sid", text: s.id + (s.attempts > 1 ? ` (attempt ${s.attempts})` : "") }), el("div", { class: "stitle", text: s.title })));
    let when = s.state;
    if (s.finished) when = s.state + " " + ago(s.finished);
    else if (s.started) when = s.state + " since " + ago(s.started).replace(" ago", "");
    li.append(el("span", { class: "when", text: when }));
    let detail = "", cls = "detail";
    if (s.error) { detail = s.error; cls += " error"; }
    else if (s.note) detail = s.note;
    else if (s.outputs) detail = Object.entries(s.outputs).sort().map(([k, v]) => `${k}=${v}`).join("  ");
    if (detail) li.append(el("div", { class: cls + " mono", text: detail }));
    return li;
  });
  $("rb-steps").replaceChildren(...steps);
  const g = rb.guardrails || [];
  $("rb-guards").replaceChildren(...(g.length ? g.map((x) => el("li", { class: x.ok ? "ok" : "no" },
    el("span", { class: "mark", text: x.ok ? "✓" : "✗" }), el("span", {}, el("b", { text: x.name }), document.createTextNode(x.detail ? " — " + x.detail : ""))))
    : [el("li", { class: "muted", text: "not checked yet (the cut-over step checks them)" })]));
  const d = rb.drain || [];
  barChart($("drain-req"), d.map((p) => ({ v: p.requests })), "v", "#7d93b8");
  barChart($("drain-ses"), d, "sessions", "#b8907d");
  const lastD = d[d.length - 1];
  $("drain-note").textContent = d.length
    ? `${d.length} looks, last ${ago(lastD.at)}: ${lastD.requests < 0 ? "requests not read" : num(lastD.requests) + " requests"}, ${lastD.sessions} client sessions${lastD.clients ? " (" + lastD.clients + ")" : ""}`
    : "take-down has not looked at the old side yet";
  const rbb = $("rb-rollback");
  rbb.disabled = !rb.can_rollback || !canAct();
  $("rb-rollback-why").textContent = rb.can_rollback
    ? "Moves the application back to the source: DNS back, target fenced, reverse channel drained, source unfenced." + (canAct() ? "" : " Enter the console token to enable.")
    : rb.rollback_why || "";
}
$("rb-rollback").addEventListener("click", async () => {
  const rb = state && state.runbook;
  if (!rb) return;
  const phrase = "roll back " + rb.name;
  if (!(await confirmAction("Roll the migration back?", "The run stops, DNS goes back to the old load balancer, the target is fenced, the reverse channel drains, and the application is moved back to the source.", phrase, true, "Roll back"))) return;
  act("api/runbook/rollback", { confirm: phrase }, "rollback started");
});

// ---------- polling ----------
let failures = 0;
async function refresh() {
  try {
    state = await api("api/state");
    failures = 0;
    $("title").textContent = state.title;
    document.title = "pitcrew · " + state.title;
    $("version").textContent = "pitcrew " + state.version;
    const h = $("health");
    const chs = state.channels || [];
    const behind = chs.reduce((a, c) => Math.max(a, c.seconds_behind_source || 0), 0);
    h.textContent = state.healthy ? (chs.length ? "healthy · max lag " + dur(behind) : "healthy") : "unhealthy";
    h.className = "pill " + (state.healthy ? "pill-ok" : "pill-bad");
    h.title = state.health;
    $("updated").textContent = "updated " + clock(state.now);
    renderAuth();
    renderChannels();
    renderRunbook();
    if (!$("banner").classList.contains("ok") && $("banner").dataset.kind === "conn") $("banner").classList.add("hidden");
  } catch (e) {
    failures++;
    if (e.status === 401) {
      $("health").textContent = "locked";
      $("health").className = "pill pill-unknown";
      $("auth-state").textContent = "enter the console token to read";
      $("token-form").classList.remove("hidden");
      banner(e.message);
    } else if (failures > 2) {
      $("health").textContent = "no answer";
      $("health").className = "pill pill-bad";
      banner("The pitcrew process does not answer (" + e.message + "): it may have stopped.");
      $("banner").dataset.kind = "conn";
    }
  }
}
async function refreshConflicts() {
  if (state && !state.conflicts) { renderConflicts({ enabled: false }); return; }
  try { renderConflicts(await api("api/conflicts")); } catch (e) { /* shown by refresh */ }
}
refresh().then(refreshConflicts);
setInterval(refresh, 1000);
setInterval(refreshConflicts, 2000);
