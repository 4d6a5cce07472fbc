"use strict";
// coldchain dashboard: polls the JSON API every 5 s and draws with inline SVG (no libraries).
const REFRESH_MS = 5000;
let BAND = null; // the limits of the worker's alarm profile's band (from /api/profile)

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const ago = (s) => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
// One time format everywhere: 24-hour local time with the zone (as the CLI prints it).
const TIME = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" });
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const local = (iso) => (iso ? TIME.format(new Date(iso)) : "-");
const TROUBLE = { alarm: 0, silent: 1, ok: 2 };

let me = null; // {name, role, permissions} of the signed-in user

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) { location.assign("/signin"); throw new Error("signed out"); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// Requests that change something: JSON only (the server refuses anything else).
const send = (method, path, document) =>
  api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(document ?? {}) });

async function whoAmI() {
  me = await api("/api/session");
  $("#who").textContent = me.name;
  $("#role").textContent = me.role;
}

async function signOut() {
  try { await send("DELETE", "/api/session"); } finally { location.assign("/signin"); }
}

// A line chart of buckets: a min–max band, the mean line, the profile's band limits.
function chart(seriesByName, { width = 420, height = 180, band = BAND } = {}) {
  const all = Object.values(seriesByName).flat();
  if (!all.length) return '<p class="muted">no readings in this window</p>';
  const times = all.map((p) => Date.parse(p.t));
  let t0 = Math.min(...times), t1 = Math.max(...times);
  if (t1 === t0) t1 = t0 + 1;
  const limits = band ?? [];
  let lo = Math.min(...limits.map((v) => v - 1), ...all.map((p) => p.min)), hi = Math.max(...limits.map((v) => v + 1), ...all.map((p) => p.max));
  const pad = 28;
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (width - pad - 4);
  const y = (v) => 4 + (1 - (v - lo) / (hi - lo)) * (height - 20);
  const colors = ["#58a6ff", "#3fb950", "#d29922", "#bc8cff", "#39c5cf", "#ff7b72", "#e3b341", "#79c0ff"];
  let svg = `<svg viewBox="0 0 ${width} ${height}" width="100%" role="img">`;
  // A y-axis scale: about five round ticks, then the band's limits dashed.
  const step = [0.5, 1, 2, 5, 10, 20].find((s) => (hi - lo) / s <= 6) ?? 50;
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    svg += `<line class="tick" x1="${pad}" x2="${width}" y1="${y(v)}" y2="${y(v)}" stroke="#263140"/><text x="0" y="${y(v) + 3}">${+v.toFixed(1)} °C</text>`;
  }
  for (const v of limits) {
    svg += `<line class="limit" x1="${pad}" x2="${width}" y1="${y(v)}" y2="${y(v)}" stroke="#f85149" stroke-dasharray="4 3"><title>band limit ${v} °C</title></line>`;
  }
  Object.entries(seriesByName).forEach(([name, points], i) => {
    if (!points.length) return;
    const color = colors[i % colors.length];
    const upper = points.map((p) => `${x(Date.parse(p.t))},${y(p.max)}`);
    const lower = points.slice().reverse().map((p) => `${x(Date.parse(p.t))},${y(p.min)}`);
    svg += `<polygon points="${upper.concat(lower).join(" ")}" fill="${color}" opacity="0.18"><title>${esc(name)}</title></polygon>`;
    const last = points[points.length - 1];
    svg += `<polyline points="${points.map((p) => `${x(Date.parse(p.t))},${y(p.avg)}`).join(" ")}" fill="none" stroke="${color}" stroke-width="1.2"><title>${esc(name)}: ${last.avg.toFixed(1)} °C at ${CLOCK.format(new Date(last.t))}</title></polyline>`;
  });
  // A time axis: the ends and the middle, 24-hour local time.
  for (const [t, anchor] of [[t0, "start"], [(t0 + t1) / 2, "middle"], [t1, "end"]]) {
    svg += `<text x="${x(t)}" y="${height - 2}" text-anchor="${anchor}">${CLOCK.format(new Date(t))}</text>`;
  }
  svg += "</svg>";
  return svg;
}

function bars(rows, { width = 420, height = 160 } = {}) {
  if (!rows.length) return '<p class="muted">nothing stored in the last hour</p>';
  const peak = Math.max(1, ...rows.map((r) => r.stored + r.dead_letters));
  const w = (width - 30) / rows.length;
  let svg = `<svg viewBox="0 0 ${width} ${height}" width="100%">`;
  rows.forEach((r, i) => {
    const hs = (r.stored / peak) * (height - 20), hd = (r.dead_letters / peak) * (height - 20);
    svg += `<rect x="${30 + i * w}" y="${height - 14 - hs - hd}" width="${Math.max(1, w - 1)}" height="${hs}" fill="#3fb950"><title>${esc(r.minute)}: ${r.stored} stored</title></rect>`;
    if (r.dead_letters) svg += `<rect x="${30 + i * w}" y="${height - 14 - hd}" width="${Math.max(1, w - 1)}" height="${hd}" fill="#f85149"><title>${r.dead_letters} dead letters</title></rect>`;
  });
  svg += `<text x="0" y="10">${peak}</text><text x="0" y="${height - 2}">0</text></svg>`;
  const last = rows[rows.length - 1];
  return `<div class="muted">last minute: <b id="ingest-last">${last.stored}</b> stored, ${last.dead_letters} dead letters</div>` + svg;
}

// A bar as SVG attributes, not inline styles: the Content-Security-Policy allows no inline style.
function batteryBar(pct) {
  const level = Math.max(0, Math.min(100, Number(pct) || 0));
  const color = level < 15 ? "#f85149" : level < 30 ? "#d29922" : "#3fb950";
  return `<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" width="100%" height="10"><rect width="100" height="10" rx="3" fill="#263140"/><rect width="${level}" height="10" rx="3" fill="${color}"/></svg>`;
}

async function loadBand() {
  if (BAND) return;
  const profile = await api("/api/profile");
  BAND = profile.band.filter((v) => v !== null);
}

async function refreshFleet() {
  await loadBand();
  const [health, devices, alarms, ingest, trend, dead, shipments] = await Promise.all([
    api("/api/health"), api("/api/devices"), api("/api/alarms?active=true"),
    api("/api/ingest?minutes=60"), api("/api/trend?hours=1&points=240"), api("/api/deadletters?limit=8"),
    api("/api/shipments"),
  ]);
  $("#summary").innerHTML = `<span>devices <b id="device-count">${health.devices}</b></span><span>readings <b>${health.readings.toLocaleString()}</b></span><span>active alarms <b>${health.active_alarms}</b></span><span>dead letters <b>${health.dead_letters}</b></span>`;
  $("#w-ingest .body").innerHTML = bars(ingest);
  $("#w-trend .body").innerHTML = chart(trend.series);
  $("#w-errors .body").innerHTML = `<p>dead-letter depth <b id="dlq-depth">${health.dead_letters}</b></p>` +
    (dead.length ? `<table><tr><th>kind</th><th>reason</th><th>n</th></tr>${dead.map((d) => `<tr><td>${esc(d.kind)}</td><td>${esc(d.reason)}</td><td>${d.attempts}</td></tr>`).join("")}</table>` : '<p class="ok">no dead letters</p>');
  const filter = $("#device-filter").value.trim().toLowerCase();
  const shown = devices.filter((d) => !filter || d.device_id.toLowerCase().includes(filter) || (d.fleet_id ?? "").toLowerCase().includes(filter))
    .sort((a, b) => (TROUBLE[a.status] ?? 3) - (TROUBLE[b.status] ?? 3) || a.device_id.localeCompare(b.device_id));
  $("#w-heartbeat .body").innerHTML = `<table><tr><th>device</th><th>last reading</th><th>temp</th><th>status</th></tr>${shown.map((d) =>
    `<tr data-device="${esc(d.device_id)}"><td><a href="#/device/${encodeURIComponent(d.device_id)}">${esc(d.device_id)}</a></td><td class="${d.silent ? "silent" : ""}">${ago(d.seconds_since)} ago</td><td class="temperature">${d.temperature_c.toFixed(1)} °C</td><td class="status ${d.status === "ok" ? "ok" : d.status === "silent" ? "silent" : "warning"}">${d.status}</td></tr>`).join("")}</table>`;
  $("#w-shipments .body").innerHTML = shipmentTable(shipments);
  $("#w-battery .body").innerHTML = `<table>${devices.slice().sort((a, b) => a.battery_pct - b.battery_pct).map((d) =>
    `<tr><td>${esc(d.device_id)}</td><td class="battery">${batteryBar(d.battery_pct)}</td><td>${d.battery_pct.toFixed(0)} %</td></tr>`).join("")}</table>`;
  $("#w-alarms .body").innerHTML = alarmTable(alarms, true);
  $("#updated").textContent = `updated ${TIME.format(new Date())}`;
}

const STAGE = { active: 0, planned: 1, ended: 2 };

function shipmentTable(shipments) {
  if (!shipments.length) return '<p class="muted">no shipments (coldchain shipment create ...)</p>';
  const rows = shipments.slice().sort((a, b) => STAGE[a.status] - STAGE[b.status] || a.id.localeCompare(b.id));
  return `<table class="shipments"><tr><th>shipment</th><th>status</th><th>product</th><th>route</th><th>devices</th><th>decision</th><th></th></tr>${rows.map((s) =>
    `<tr data-shipment="${esc(s.id)}"><td class="id">${esc(s.id)}</td><td>${esc(s.status)}</td><td>${esc(s.product)}</td><td>${esc(s.origin)} → ${esc(s.destination)}</td><td>${s.devices.map((d) => `<a href="#/device/${encodeURIComponent(d)}">${esc(d)}</a>`).join(" ")}</td><td>${s.decision ? `${esc(s.decision.decision)} (${esc(s.decision.by)})` : s.status === "ended" ? '<span class="warning">pending</span>' : "-"}</td><td>${shipmentAction(s)}</td></tr>`).join("")}</table>`;
}

const may = (permission) => Boolean(me && me.permissions.includes(permission));

// The next step of a shipment, for a user allowed to take it (the server checks again).
function shipmentAction(s) {
  const button = (step, label) => `<button class="shipment-step" data-id="${esc(s.id)}" data-step="${step}">${label}</button>`;
  if (s.status === "planned" && may("manage shipments")) return button("start", "start");
  if (s.status === "active" && may("manage shipments")) return button("end", "end");
  if (s.status === "ended" && may("decide release")) return button("decision", s.decision ? "correct decision" : "decide");
  return "";
}

async function shipmentStep(id, step) {
  const path = `/api/shipments/${encodeURIComponent(id)}/${step}`;
  try {
    if (step === "decision") {
      const decision = window.prompt("Decision: release, quarantine or reject?");
      if (decision === null) return;
      const reason = window.prompt("Reason (required; it goes into the audit trail):");
      if (reason === null) return;
      await send("POST", path, { decision: decision.trim().toLowerCase(), reason });
    } else {
      if (!window.confirm(`${step} shipment ${id} now?`)) return;
      await send("POST", path, {});
    }
  } catch (e) { window.alert(e.message); }
  refresh();
}

const canAcknowledge = () => Boolean(me && me.permissions.includes("acknowledge alarms"));

function alarmTable(alarms, withDevice) {
  if (!alarms.length) return '<p class="ok">no active alarms</p>';
  return `<table class="alarms"><tr>${withDevice ? "<th>device</th>" : ""}<th>rule</th><th>severity</th><th>state</th><th>started</th><th>duration</th><th>peak</th><th>ack</th></tr>${alarms.map((a) =>
    `<tr data-alarm="${esc(a.id)}">${withDevice ? `<td><a href="#/device/${encodeURIComponent(a.device_id)}">${esc(a.device_id)}</a></td>` : ""}<td>${esc(a.rule)}</td><td class="${esc(a.severity)}">${esc(a.severity)}</td><td>${esc(a.state)}</td><td>${local(a.started_at)}</td><td>${ago(a.duration_s)}</td><td>${a.peak} ${esc(a.unit)}</td><td>${a.acknowledgement ? `${esc(a.acknowledgement.by)}: ${esc(a.acknowledgement.comment)}` : (canAcknowledge() ? `<button class="ack" data-id="${esc(a.id)}">acknowledge</button>` : '<span class="muted">operator needed</span>')}</td></tr>`).join("")}</table>`;
}

async function acknowledge(id) {
  const comment = window.prompt("Acknowledge: what was done? (required)");
  if (comment === null) return;
  if (!comment.trim()) { window.alert("A comment is required."); return; }
  try {
    // The server records the signed-in user as the one who acknowledged.
    await send("POST", `/api/alarms/${encodeURIComponent(id)}/ack`, { comment });
  } catch (e) { window.alert(e.message); }
  refresh();
}

// Elements built from data: every string goes in as a text node, never parsed as HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (name === "class") node.className = value; else node.setAttribute(name, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

const has = (object, key) => Boolean(object) && Object.hasOwn(object, key);
const shown = (value) => (value === undefined ? "-" : typeof value === "string" ? value : JSON.stringify(value));
const pairs = (object) => (object && Object.keys(object).length ? Object.entries(object).map(([k, v]) => `${k}: ${shown(v)}`).join(", ") : "-");
const STATUS_CLASS = { succeeded: "ok", completed: "ok", failed: "critical", rejected: "critical", aborted: "critical", timed_out: "warning", expired: "warning", canceled: "warning" };
const statusCell = (value) => el("td", { class: `status ${STATUS_CLASS[value] ?? "muted"}` }, value);

// The shadow: each field desired against reported; a field still in the delta is pending.
function configurationPanel(config) {
  if (!config) return [el("p", { class: "muted" }, "no configuration stored for this device (coldchain config set ...)")];
  const fields = [...new Set([...Object.keys(config.desired), ...Object.keys(config.reported)])].sort();
  const pending = fields.filter((f) => has(config.delta, f));
  const summary = `version ${config.version} · updated ${local(config.updated_at)} · ${pending.length ? `${pending.length} pending: ${pending.join(", ")}` : "the device is in step"}`;
  const rows = fields.map((f) => {
    const state = has(config.delta, f) ? "pending" : has(config.desired, f) ? "applied" : "reported only";
    return el("tr", { "data-field": f, class: state === "pending" ? "pending" : null },
      el("td", {}, f), el("td", {}, has(config.desired, f) ? shown(config.desired[f]) : "-"),
      el("td", {}, has(config.reported, f) ? shown(config.reported[f]) : "-"), el("td", { class: "state" }, state));
  });
  return [el("p", { id: "d-config-summary", class: pending.length ? "warning" : "muted" }, summary),
    el("table", { class: "configuration" }, el("tr", {}, el("th", {}, "field"), el("th", {}, "desired"), el("th", {}, "reported"), el("th", {}, "")), rows)];
}

function commandsPanel(commands) {
  if (!commands.length) return [el("p", { class: "muted" }, "no commands sent to this device")];
  return [el("table", { class: "commands" },
    el("tr", {}, el("th", {}, "command"), el("th", {}, "status"), el("th", {}, "issued"), el("th", {}, "result")),
    commands.map((c) => el("tr", { "data-command": c.command_id },
      el("td", { class: "name" }, Object.keys(c.args).length ? `${c.name} (${pairs(c.args)})` : c.name),
      statusCell(c.status), el("td", {}, local(c.issued_at)), el("td", { class: "result" }, pairs(c.result)))))];
}

function firmwarePanel(device) {
  const version = el("p", {}, "firmware ", el("b", { id: "d-firmware-version" }, device.firmware_version ?? "-"), el("span", { class: "muted" }, " (as of the latest reading)"));
  if (!device.jobs.length) return [version, el("p", { class: "muted" }, "no firmware jobs for this device")];
  return [version, el("table", { class: "jobs" },
    el("tr", {}, el("th", {}, "job"), el("th", {}, "target version"), el("th", {}, "job status"), el("th", {}, "this device"), el("th", {}, "details"), el("th", {}, "updated")),
    device.jobs.map((j) => el("tr", { "data-job": j.job_id },
      el("td", { class: "id" }, j.job_id), el("td", {}, j.target_version), statusCell(j.job_status), statusCell(j.execution_status),
      el("td", {}, pairs(j.details)), el("td", {}, local(j.updated_at ?? j.started_at)))))];
}

async function runSelfTest() {
  const id = deviceInView();
  if (!id) return;
  const button = $("#d-self-test");
  button.disabled = true;
  try {
    // The server records the signed-in user as the sender; the list shows it as sent until
    // the control service hands it over and the device answers.
    await send("POST", `/api/devices/${encodeURIComponent(id)}/commands`, { name: "self-test" });
  } catch (e) { window.alert(e.message); } finally { button.disabled = false; }
  refresh();
}

async function refreshDevice(id) {
  await loadBand();
  const hours = $("#d-window").value;
  const [device, readings] = await Promise.all([
    api(`/api/devices/${encodeURIComponent(id)}`), api(`/api/readings?device=${encodeURIComponent(id)}&hours=${hours}&points=300`),
  ]);
  $("#d-title").textContent = `Device ${device.device_id}`;
  const position = device.latitude != null ? `last position ${device.latitude.toFixed(4)}, ${device.longitude.toFixed(4)}` : "no GPS fix";
  $("#d-info").innerHTML = `<p>fleet ${esc(device.fleet_id ?? "-")} · last reading ${local(device.last_ts)} (${ago(device.seconds_since)} ago) · ${device.temperature_c.toFixed(2)} °C · battery ${device.battery_pct.toFixed(0)} % · ${position} · firmware ${esc(device.firmware_version ?? "-")}</p>`;
  $("#d-chart").innerHTML = chart({ [device.device_id]: readings.points }, { width: 900, height: 260 });
  $("#d-alarms").innerHTML = alarmTable(device.alarms, false);
  $("#d-configuration .body").replaceChildren(...configurationPanel(device.configuration));
  $("#d-commands .body").replaceChildren(...commandsPanel(device.commands));
  $("#d-self-test").classList.toggle("hidden", !may("send commands"));
  $("#d-firmware .body").replaceChildren(...firmwarePanel(device));
}

function deviceInView() {
  const match = location.hash.match(/^#\/device\/(.+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

async function refresh() {
  const id = deviceInView();
  $("#fleet").classList.toggle("hidden", id !== null);
  $("#device").classList.toggle("hidden", id === null);
  try {
    if (id !== null) await refreshDevice(id); else await refreshFleet();
  } catch (e) { $("#updated").textContent = `error: ${e.message}`; }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.ack");
  if (button) acknowledge(button.dataset.id);
  const step = event.target.closest("button.shipment-step");
  if (step) shipmentStep(step.dataset.id, step.dataset.step);
  if (event.target.closest("#d-self-test")) runSelfTest();
});
$("#d-window").addEventListener("change", refresh);
$("#device-filter").addEventListener("input", refresh);
$("#sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", refresh);
whoAmI().then(refresh, (e) => { $("#updated").textContent = `error: ${e.message}`; });
setInterval(refresh, REFRESH_MS);
