// The status page: sign-in, refresh loop and drawing. Data comes from ./data.js. The read
// key lives in sessionStorage only and leaves the page only as an Authorization header.
// Everything is drawn with textContent and DOM/SVG elements: nothing from the API is ever
// parsed as HTML.

import {
  ApiError,
  RUNS_SHOWN,
  STATES,
  groupAccounts,
  lastFailure,
  loadModel,
  stateOf,
} from "./data.js";

const KEY_STORAGE = "token-manager.read-key";
const REFRESH_SECONDS = 30;
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

let timer = null;
let loading = false;
let lastModel = null;

// ---------------------------------------------------------------------------------------
// Small DOM helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== ""));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function svgTitle(text) {
  const title = svg("title");
  title.textContent = text;
  return title;
}

// ---------------------------------------------------------------------------------------
// Words for times and numbers

const pad = (n) => String(n).padStart(2, "0");

function clock(d) {
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

function clockSeconds(d) {
  return `${clock(d)}:${pad(d.getSeconds())}`;
}

/** "45 s", "52 min", "2 h 5 min", "3 d 4 h". */
function span(seconds) {
  const s = Math.round(Math.abs(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

function relative(d, now) {
  const seconds = (d - now) / 1000;
  return seconds >= 0 ? `in ${span(seconds)}` : `${span(seconds)} ago`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

const KIND_WORDS = {
  sync: "sync",
  cleanup: "cleanup",
  reencrypt: "re-encrypt",
  restore: "restore",
  renew: "renewal",
};
const kindWord = (kind) => KIND_WORDS[kind] ?? kind;
const OUTCOME_MARK = { succeeded: "✓", failed: "✕", running: "…" };

/** What a run's outcome adds to its status, in words: a suspected Redis loss, a partial restore. */
function outcomeNote(run) {
  const notes = { redis_loss_suspected: "Redis loss suspected", partial: "partial" };
  const note = notes[run.outcome];
  return note ? el("span", { class: "outcome-note" }, ` (${note})`) : null;
}

function counts(run) {
  const parts = [
    ["tokens_seen", "seen"],
    ["inserted", "new"],
    ["updated", "changed"],
    ["unchanged", "unchanged"],
    ["deactivated", "deactivated"],
    ["skipped", "skipped"],
    ["cleaned", "cleaned"],
    ["restored", "restored"],
    ["already_present", "already present"],
  ]
    .filter(([field]) => run[field] !== null && run[field] !== undefined)
    .map(([field, word]) => `${run[field]} ${word}`);
  return parts.length ? parts.join(" · ") : "—";
}

// ---------------------------------------------------------------------------------------
// Sign-in and session

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

function showSignin(message = "", kind = "") {
  stopTimer();
  lastModel = null;
  $("dashboard").hidden = true;
  $("session").hidden = true;
  for (const id of ["counts", "lastsync", "lasterror", "timeline", "timeline-legend", "runs-chart", "runs-legend"]) {
    $(id).replaceChildren();
  }
  $("runs-table").tBodies[0].replaceChildren();
  $("signin").hidden = false;
  const box = $("signin-message");
  box.textContent = message;
  box.className = `message ${kind}`;
  $("key").value = "";
  $("key").focus();
}

function signOut(message, kind = "") {
  try {
    sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage unavailable: nothing was kept.
  }
  showSignin(message, kind);
}

function refusedMessage(error) {
  return `This key was refused (${error.status} ${error.code}). Paste the read key ` +
    "(TOKEN_MANAGER_READ_KEY) or the admin key of this Worker.";
}

async function signIn(event) {
  event.preventDefault();
  const input = $("key");
  const key = input.value.trim();
  const box = $("signin-message");
  if (!key) {
    box.textContent = "Paste the read key first.";
    box.className = "message bad";
    return;
  }
  const button = $("signin-button");
  button.disabled = true;
  box.textContent = "Checking the key…";
  box.className = "message";
  try {
    const model = await loadModel(key);
    sessionStorage.setItem(KEY_STORAGE, key);
    input.value = "";
    box.textContent = "";
    showDashboard();
    render(model);
    startTimer();
  } catch (error) {
    input.value = "";
    box.textContent = error instanceof ApiError && error.status === 401
      ? refusedMessage(error)
      : `Could not sign in: ${error.message}`;
    box.className = "message bad";
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function showDashboard() {
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("session").hidden = false;
}

function startTimer() {
  stopTimer();
  timer = setInterval(refresh, REFRESH_SECONDS * 1000);
}

function stopTimer() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

async function refresh() {
  const key = storedKey();
  if (!key) {
    showSignin();
    return;
  }
  if (loading) return;
  loading = true;
  $("refresh").disabled = true;
  try {
    render(await loadModel(key));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut(`Signed out: ${refusedMessage(error)}`, "bad");
      return;
    }
    const when = clockSeconds(new Date());
    $("updated").textContent = `Update failed at ${when}: ${error.message}` +
      (lastModel ? ` (showing ${clockSeconds(lastModel.loadedAt)})` : "");
    $("updated").className = "updated bad";
  } finally {
    loading = false;
    $("refresh").disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// Drawing

function render(model) {
  lastModel = model;
  const now = model.loadedAt;
  $("updated").textContent = `Updated at ${clockSeconds(now)} · every ${REFRESH_SECONDS} s`;
  $("updated").className = "updated";
  renderProblems(model);
  renderCounts(model);
  renderLastError(model, now);
  renderTimeline(model, now);
  renderRuns(model, now);
}

function renderProblems(model) {
  const box = $("problems");
  const problems = model.errors.map(({ source, error }) =>
    el("span", { class: "problem" }, `Could not read ${source}: ${error.message}`));
  const status = model.status;
  if (status?.redis_loss_suspected) {
    const since = status.redis_loss_since ? ` since ${clockSeconds(new Date(status.redis_loss_since))}` : "";
    problems.push(el("span", { class: "problem" },
      `Redis may have lost its keys${since}: ${status.redis_loss_missing} active tokens' keys are missing. ` +
      "Syncs deactivate nothing until Redis looks healthy again; restore writes the tokens back."));
  }
  box.replaceChildren(...problems);
  box.hidden = problems.length === 0;
}

function renderCounts(model) {
  const status = model.status;
  const dl = $("counts");
  if (!status) {
    dl.replaceChildren(el("div", { class: "count" }, el("dt", {}, "Counts"), el("dd", {}, "—")));
    $("lastsync").textContent = "";
    return;
  }
  const minutes = Math.round(model.expiringWithinSeconds / 60);
  const item = (label, value, cls = "", note = "") =>
    el("div", { class: `count ${cls}`, "data-count": label },
      el("dt", {}, label),
      el("dd", {}, String(value)),
      note ? el("span", { class: "note" }, note) : null);
  dl.replaceChildren(
    item("Supabase", status.supabase_tokens, "", "tokens stored"),
    item("Redis", status.redis_tokens, "",
      status.redis_tokens_source === "last_sync" ? "token keys at the last sync" : "no sync yet"),
    item("Active", status.active_tokens, "", "in Supabase"),
    item("Expiring soon", status.expiring_soon, status.expiring_soon > 0 ? "warn" : "", `within ${minutes} min`),
    item("Sync needed", status.sync_needed ? "yes" : "no", status.sync_needed ? "warn" : "ok",
      status.sync_needed ? "last sync failed, or Redis and Supabase differ" : "Redis and Supabase agree"),
  );
  const last = status.last_sync;
  $("lastsync").textContent = last
    ? `Last sync: ${last.status} ${relative(new Date(last.started_at), model.loadedAt)} ` +
      `(${last.trigger}, ${clockSeconds(new Date(last.started_at))})` +
      (last.tokens_synced !== null ? `, ${last.tokens_synced} tokens read from Redis` : "")
    : "No sync has run yet.";
}

function renderLastError(model, now) {
  const box = $("lasterror");
  box.className = "lasterror";
  if (!model.runs) {
    const last = model.status?.last_sync;
    box.textContent = last?.error ? `Last sync failed: ${last.error}` : "Runs could not be read.";
    return;
  }
  const failure = lastFailure(model.runs);
  if (!failure) {
    box.textContent = `No failed run among the last ${model.runs.length} runs.`;
    box.classList.add("ok");
    return;
  }
  const { run, recoveredBy } = failure;
  box.replaceChildren(...[
    el("strong", {}, `${kindWord(run.kind)} (${run.trigger}) failed ${relative(run.startedAt, now)}, ` +
      `at ${clockSeconds(run.startedAt)}: `),
    el("span", { class: "error-text" }, run.error ?? "no error recorded"),
    recoveredBy
      ? el("span", { class: "recovered" },
        ` Since then a ${kindWord(recoveredBy.kind)} succeeded (${clockSeconds(recoveredBy.startedAt)}).`)
      : null,
  ].filter(Boolean));
  box.classList.add(recoveredBy ? "was" : "bad");
}

// Timeline ----------------------------------------------------------------------------------

const TIMELINE_BAR_HEIGHT = 22;

/** The time range drawn: every bar and now, with a margin, at most 12 h either side of now. */
function timeRange(accounts, model, now) {
  const t = now.getTime();
  let lo = t - 10 * 60e3;
  let hi = t + 20 * 60e3;
  for (const a of accounts) {
    if (a.since) lo = Math.min(lo, a.since.getTime());
    if (a.expiresAt) hi = Math.max(hi, a.expiresAt.getTime() + 5 * 60e3);
  }
  lo = Math.max(lo - 5 * 60e3, t - 12 * 3600e3);
  hi = Math.min(hi, t + 12 * 3600e3);
  return { lo, hi };
}

function position(range, time) {
  const f = (time - range.lo) / (range.hi - range.lo);
  return Math.min(1, Math.max(0, f)) * 100;
}

const pct = (x) => `${x.toFixed(3)}%`;

function tickStep(range) {
  const minutes = (range.hi - range.lo) / 60e3;
  for (const step of [5, 10, 15, 30, 60, 120, 180, 360]) {
    if (minutes / step <= 8) return step * 60e3;
  }
  return 720 * 60e3;
}

function axis(range, now) {
  const chart = svg("svg", { class: "tl-svg tl-axis-svg", height: 30, "aria-hidden": "true" });
  const step = tickStep(range);
  const offset = new Date(range.lo).getTimezoneOffset() * 60e3;
  for (let t = Math.ceil((range.lo - offset) / step) * step + offset; t <= range.hi; t += step) {
    const x = position(range, t);
    chart.append(svg("line", { class: "tick", x1: pct(x), x2: pct(x), y1: 20, y2: 30 }));
    if (x > 3 && x < 97) {
      const label = svg("text", { x: pct(x), y: 14, "text-anchor": "middle", class: "tick-label" });
      label.textContent = clock(new Date(t));
      chart.append(label);
    }
  }
  const x = position(range, now.getTime());
  chart.append(svg("line", { class: "now", x1: pct(x), x2: pct(x), y1: 18, y2: 30 }));
  const label = svg("text", { x: pct(x), y: 28, "text-anchor": x > 90 ? "end" : "start", dx: x > 90 ? -4 : 4, class: "now-label" });
  label.textContent = "now";
  chart.append(label);
  return chart;
}

function stateText(account, state, now) {
  const words = STATES[state].label;
  if (state === "inactive") {
    return account.expiresAt ? `${words} · expiry was ${clock(account.expiresAt)}` : words;
  }
  if (!account.expiresAt) return `${words} · no expiry in Redis or the token`;
  const at = clock(account.expiresAt);
  return state === "expired"
    ? `${words} · ${at} (${relative(account.expiresAt, now)})`
    : `${words} · expires ${at} (${relative(account.expiresAt, now)})`;
}

function bar(account, state, range, model, now) {
  const chart = svg("svg", {
    class: "tl-svg",
    height: TIMELINE_BAR_HEIGHT,
    role: "img",
    "aria-label": `${account.name}: ${stateText(account, state, now)}`,
  });
  chart.append(svg("rect", { class: "track", x: 0, y: 0, width: "100%", height: TIMELINE_BAR_HEIGHT }));
  const start = position(range, (account.since ?? now).getTime());
  if (account.expiresAt) {
    const end = position(range, account.expiresAt.getTime());
    if (end > start) {
      chart.append(svg("rect", {
        class: `life state-${state}`, x: pct(start), y: 5, width: pct(end - start), height: 12, rx: 2,
      }));
    }
    // Renewal concerns live tokens only: an expired or inactive one has nothing left to renew.
    if (state !== "expired" && state !== "inactive") {
      const windowStart = position(range, account.expiresAt.getTime() - model.renewBeforeSeconds * 1000);
      chart.append(svg("rect", {
        class: "renew", x: pct(windowStart), y: 2, width: pct(Math.max(end - windowStart, 0.2)), height: 18,
      }));
    }
    // The expiry itself, visible even when the token expired before it was stored.
    chart.append(svg("rect", { class: `expiry state-${state}`, x: pct(end), y: 3, width: 3, height: 16, transform: "translate(-1.5 0)" }));
  } else {
    chart.append(svg("rect", {
      class: `life state-${state}`, x: pct(start), y: 5, width: pct(Math.max(100 - start, 0.4)), height: 12, rx: 2,
    }));
  }
  const x = position(range, now.getTime());
  chart.append(svg("line", { class: "now", x1: pct(x), x2: pct(x), y1: 0, y2: TIMELINE_BAR_HEIGHT }));
  const since = account.since ? `stored ${clockSeconds(account.since)}` : "";
  chart.append(svgTitle(`${account.name} — ${stateText(account, state, now)}${since ? `; ${since}` : ""}`));
  return chart;
}

function row(account, role, range, model, now) {
  const state = stateOf(account, now, model);
  return el("div", { class: `tl-row state-${state}`, "data-account": account.name, "data-state": state },
    el("div", { class: "tl-label" },
      el("span", { class: "tl-name" }, account.name),
      el("span", { class: "tl-role" }, role),
      el("span", { class: `tl-state state-${state}` }, stateText(account, state, now))),
    bar(account, state, range, model, now));
}

function groupSummary(accounts, now, model) {
  const byState = new Map();
  for (const a of accounts) {
    const s = stateOf(a, now, model);
    byState.set(s, (byState.get(s) ?? 0) + 1);
  }
  const parts = [...byState.entries()]
    .sort((a, b) => STATES[a[0]].rank - STATES[b[0]].rank)
    .map(([s, n]) => `${n} ${STATES[s].label}`);
  const noun = accounts.length === 1 ? "account" : "accounts";
  return `${accounts.length} ${noun}: ${parts.join(", ")}`;
}

function renderTimeline(model, now) {
  const box = $("timeline");
  const legend = $("timeline-legend");
  const windowMinutes = Math.round(model.renewBeforeSeconds / 60);
  legend.replaceChildren(
    ...["active", "renewal", "soon", "expired", "inactive"].map((s) =>
      el("span", { class: "key" }, el("span", { class: `swatch state-${s}` }), STATES[s].label)),
    el("span", { class: "key" }, el("span", { class: "swatch renew" }), `renewal window (${windowMinutes} min before expiry)`),
    el("span", { class: "key" }, el("span", { class: "swatch now" }), "now"),
  );
  if (!model.accounts) {
    box.replaceChildren(el("p", { class: "empty" }, "Token metadata could not be read."));
    return;
  }
  if (model.accounts.length === 0) {
    box.replaceChildren(el("p", { class: "empty" }, "No tokens stored yet: run a sync."));
    return;
  }
  const range = timeRange(model.accounts, model, now);
  const groups = groupAccounts(model.accounts);
  const rows = [el("div", { class: "tl-row tl-axis" }, el("div", { class: "tl-label" }), axis(range, now))];
  for (const group of groups) {
    const members = [group.own, ...group.subs].filter(Boolean);
    const section = el("div", { class: "tl-group", "data-main": group.main },
      el("div", { class: "tl-group-head" },
        el("h3", {}, group.main),
        el("span", { class: "tl-group-summary" }, groupSummary(members, now, model))));
    if (group.own) section.append(row(group.own, "main", range, model, now));
    for (const sub of group.subs) section.append(row(sub, "sub-account", range, model, now));
    rows.push(section);
  }
  box.replaceChildren(...rows);
  $("timeline-hint").textContent =
    `Each bar runs from when the current token was stored to its expiry; the shaded end is ` +
    `the renewal window. ${model.accounts.length} tokens in ${groups.length} main accounts, ` +
    `${clock(new Date(range.lo))}–${clock(new Date(range.hi))}.`;
}

// Runs ----------------------------------------------------------------------------------------

const KIND_LETTER = { sync: "S", cleanup: "C", reencrypt: "E", restore: "R", renew: "N" };

function renderRunsChart(runs) {
  const box = $("runs-chart");
  if (runs.length === 0) {
    box.replaceChildren(el("p", { class: "empty" }, "No runs recorded yet."));
    return;
  }
  const height = 120;
  const top = 18;
  const base = height - 18;
  const ordered = [...runs].reverse(); // oldest left, newest right
  const longest = Math.max(...ordered.map((r) => r.duration_ms ?? 0), 1);
  // One slot per run the page asks for, newest at the right edge, so bars keep their width.
  const slots = Math.max(ordered.length, RUNS_SHOWN);
  const slot = 100 / slots;
  const first = slots - ordered.length;
  const chart = svg("svg", { class: "runs-svg", height, role: "img", "aria-label": `Durations of the last ${runs.length} runs` });
  chart.append(svg("line", { class: "base", x1: 0, x2: "100%", y1: base, y2: base }));
  const scale = svg("text", { x: 0, y: 11, class: "scale" });
  scale.textContent = `longest ${duration(longest)}`;
  chart.append(scale);
  ordered.forEach((run, i) => {
    const h = Math.max(3, ((run.duration_ms ?? 0) / longest) * (base - top));
    const x = (first + i) * slot + slot * 0.15;
    const group = svg("g", { class: `run run-${run.status}` });
    group.append(svg("rect", { x: pct(x), y: base - h, width: pct(slot * 0.7), height: h, rx: 1.5 }));
    const mark = svg("text", { x: pct(x + slot * 0.35), y: base - h - 3, "text-anchor": "middle", class: "mark" });
    mark.textContent = run.status === "failed" ? "✕" : run.status === "running" ? "…" : "";
    const letter = svg("text", { x: pct(x + slot * 0.35), y: height - 4, "text-anchor": "middle", class: "letter" });
    letter.textContent = KIND_LETTER[run.kind] ?? "?";
    group.append(mark, letter, svgTitle(
      `${kindWord(run.kind)} (${run.trigger}) ${run.status} at ${clockSeconds(run.startedAt)}, ${duration(run.duration_ms)}` +
      (run.error ? `: ${run.error}` : ""),
    ));
    chart.append(group);
  });
  box.replaceChildren(chart);
}

function renderRuns(model, now) {
  $("runs-legend").replaceChildren(
    ...["succeeded", "failed", "running"].map((s) =>
      el("span", { class: "key" }, el("span", { class: `swatch run-${s}` }), `${OUTCOME_MARK[s]} ${s}`)),
    el("span", { class: "key" }, "height: duration, newest on the right · S sync, C cleanup, E re-encrypt, R restore, N renewal"),
  );
  const body = $("runs-table").tBodies[0];
  if (!model.runs) {
    $("runs-chart").replaceChildren(el("p", { class: "empty" }, "Runs could not be read."));
    body.replaceChildren();
    return;
  }
  renderRunsChart(model.runs);
  body.replaceChildren(...model.runs.map((run) =>
    el("tr", { class: `run-${run.status}`, "data-run": run.run_id, "data-status": run.status },
      el("td", { title: run.started_at, "data-label": "Started" }, `${clockSeconds(run.startedAt)}`,
        el("span", { class: "ago" }, ` ${relative(run.startedAt, now)}`)),
      el("td", { "data-label": "Kind" }, kindWord(run.kind)),
      el("td", { "data-label": "Trigger" }, run.trigger),
      el("td", { class: "outcome", "data-label": "Outcome" }, `${OUTCOME_MARK[run.status] ?? ""} ${run.status}`,
        outcomeNote(run)),
      el("td", { class: "num", "data-label": "Duration" }, duration(run.duration_ms)),
      el("td", { class: "counts-cell", "data-label": "Counts" }, counts(run)),
      el("td", { class: "error-text", "data-label": "Error" }, run.error ?? ""))));
  if (model.runs.length === RUNS_SHOWN) {
    body.append(el("tr", { class: "more" }, el("td", { colspan: 7 }, `The last ${RUNS_SHOWN} runs; older ones are in sync_runs.`)));
  }
}

// ---------------------------------------------------------------------------------------

function start() {
  $("signin-form").addEventListener("submit", signIn);
  $("refresh").addEventListener("click", refresh);
  $("signout").addEventListener("click", () => signOut("Signed out. The key was removed from this tab."));
  if (storedKey()) {
    showDashboard();
    $("updated").textContent = "Loading…";
    refresh().then(() => {
      if (storedKey()) startTimer();
    });
  } else {
    showSignin();
  }
}

start();
