/* ECS Scheduler console: a small static app over the REST API (no library, no build step).
 * Every byte of data comes from the API with the user's token (sessionStorage) as a bearer, so
 * the console can do exactly what that token may do. Pages are rendered with DOM calls only
 * (never innerHTML with data), and every request stays on this server (see the page's CSP). */
"use strict";

const TOKEN_KEY = "ecss-token";
const PAGE_SIZE = 20;
const state = { me: null, canWrite: false, canRun: false, runRoute: false, jobsCache: null };

/* ---------- helpers ---------- */

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined && node !== false));
  const heading = main.querySelector("h1");
  if (heading) document.title = heading.textContent + " · ECS Scheduler";
}

function notify(message, bad) {
  const box = document.getElementById("notice");
  box.className = bad ? "bad" : "";
  box.textContent = message || "";
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (isNaN(date)) return iso;
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
}

function enc(value) { return encodeURIComponent(value); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || "HTTP " + status);
    this.status = status;
    this.errors = (body && body.errors) || {};
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const reply = await fetch(path, init);
  let data = null;
  const text = await reply.text();
  if (text) { try { data = JSON.parse(text); } catch (e) { data = { message: text }; } }
  if (reply.status === 401) {
    login("Your token was refused: " + ((data && data.message) || "unauthorised"));
    throw new ApiError(401, data);
  }
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

function failed(error) {
  if (error.status === 401) return;
  notify(error.message, true);
}

/* ---------- who am I, what may I do ---------- */

async function boot() {
  try {
    state.me = await api("GET", "/me");
  } catch (error) {
    if (error.status === 401) return;
    if (error.status !== 404) { notify(error.message, true); }
    // A server without /me has no authentication: everyone may do everything.
    state.me = { name: "anonymous", roles: ["admin"], authMode: "none" };
  }
  const roles = state.me.roles || [];
  state.canWrite = roles.includes("admin") || roles.includes("write");
  state.canRun = roles.includes("admin") || roles.includes("run");
  try {
    const spec = await api("GET", "/spec");
    state.runRoute = Object.entries(spec.paths || {}).some(
      ([path, ops]) => /^\/jobs\/\{[^}]+\}\/runs$/.test(path) && ops.post);
  } catch (error) { state.runRoute = false; }
  document.getElementById("nav-new").hidden = !state.canWrite;
  const who = document.getElementById("who");
  who.replaceChildren(h("span", { id: "whoami" }, state.me.name + " (" + roles.join(", ") + ")"));
  if (state.me.authMode === "tokens" || sessionStorage.getItem(TOKEN_KEY)) {
    who.append(h("button", { type: "button", onclick: signOut }, "Sign out"));
  }
  window.addEventListener("hashchange", route);
  route();
}

function login(message) {
  document.getElementById("nav-new").hidden = true;
  document.getElementById("who").replaceChildren();
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const form = h("form", { class: "login", onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    notify("");
    window.removeEventListener("hashchange", route);
    boot();
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, message || "This server needs an API token."),
  h("p", { class: "muted" }, "The token is kept in this tab's session storage only."),
  h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")));
  show(form);
  input.focus();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  window.removeEventListener("hashchange", route);
  login("Signed out.");
}

/* ---------- routing ---------- */

/* Navigate, with a message to show on the page arrived at. */
function go(hash, message) {
  state.flash = message || "";
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  notify(state.flash || "");
  state.flash = "";
  const hash = location.hash.replace(/^#/, "") || "/jobs";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  let match;
  if (path === "/jobs") return listPage(params);
  if (path === "/new") return formPage(null);
  if ((match = path.match(/^\/jobs\/([^/]+)\/edit$/))) return formPage(decodeURIComponent(match[1]));
  if ((match = path.match(/^\/jobs\/([^/]+)$/))) return jobPage(decodeURIComponent(match[1]));
  show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/jobs" }, "Back to the jobs")));
}

function focusMain() { document.getElementById("main").focus({ preventScroll: true }); }

/* ---------- jobs list ---------- */

function lastRunOf(job) {
  if (!job.lastRun) return { text: "never", cls: "muted", key: "never" };
  if (job.lastRunStatus) {
    const failed = ["failed", "timedOut", "partially_launched"].includes(job.lastRunStatus);
    return { text: job.lastRunStatus, cls: statusClass(job.lastRunStatus), key: failed ? "failed" : "ok" };
  }
  const failures = (job.lastRunFailures || []).length;
  const tasks = (job.lastRunTasks || []).length;
  if (failures && tasks) return { text: "partial", cls: "status-warn", key: "failed" };
  if (failures) return { text: "failed", cls: "status-bad", key: "failed" };
  return { text: "ok", cls: "status-ok", key: "ok" };
}

async function allJobs() {
  const jobs = [];
  let skip = 0;
  for (;;) {
    const page = await api("GET", "/jobs?skip=" + skip + "&count=1000");
    jobs.push(...page.jobs);
    if (!page.next) return jobs;
    skip += 1000;
  }
}

async function listPage(params) {
  const text = params.get("q") || "";
  const status = params.get("status") || "";
  const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
  const search = h("input", { id: "filter-text", type: "search", value: text, placeholder: "id, task definition, schedule" });
  const select = h("select", { id: "filter-status" },
    [["", "All"], ["active", "Active"], ["suspended", "Suspended"], ["failed", "Last run failed"], ["ok", "Last run ok"], ["never", "Never run"]]
      .map(([value, label]) => h("option", { value, selected: value === status }, label)));
  const apply = (event) => {
    if (event) event.preventDefault();
    const next = new URLSearchParams();
    if (search.value) next.set("q", search.value);
    if (select.value) next.set("status", select.value);
    location.hash = "#/jobs?" + next.toString();
  };
  select.addEventListener("change", apply);
  const filters = h("form", { class: "filters", role: "search", onsubmit: apply },
    h("div", {}, h("label", { for: "filter-text" }, "Filter"), search),
    h("div", {}, h("label", { for: "filter-status" }, "Status"), select),
    h("button", { type: "submit", class: "secondary" }, "Apply"));
  const body = h("tbody", {}, h("tr", {}, h("td", { colspan: 7 }, "Loading…")));
  const table = h("table", { id: "jobs" },
    h("caption", { class: "muted", style: null }, ""),
    h("thead", {}, h("tr", {}, ["ID", "Task definition", "Schedule", "Timezone", "Next fire", "Last run", "Suspended"]
      .map((label) => h("th", { scope: "col" }, label)))),
    body);
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  show(h("h1", {}, "Jobs"),
    state.canWrite ? h("div", { class: "actions" }, h("a", { class: "button", href: "#/new", id: "new-job" }, "New job")) : null,
    filters, table, pager);
  let jobs;
  try { jobs = await allJobs(); } catch (error) { body.replaceChildren(); return failed(error); }
  const needle = text.toLowerCase();
  const shown = jobs.filter((job) => {
    if (needle && ![job.id, job.taskDefinition, job.schedule, job.timezone || ""].some((v) => String(v).toLowerCase().includes(needle))) return false;
    if (status === "active" && job.suspended) return false;
    if (status === "suspended" && !job.suspended) return false;
    if (["failed", "ok", "never"].includes(status) && lastRunOf(job).key !== status) return false;
    return true;
  });
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  const current = Math.min(page, pages - 1);
  const slice = shown.slice(current * PAGE_SIZE, (current + 1) * PAGE_SIZE);
  table.querySelector("caption").textContent = shown.length + " of " + jobs.length + " jobs";
  body.replaceChildren(...(slice.length ? slice.map(jobRow) : [h("tr", {}, h("td", { colspan: 7 }, "No jobs match."))]));
  const link = (target, label) => {
    const next = new URLSearchParams(params);
    next.set("page", String(target));
    return h("a", { href: "#/jobs?" + next.toString() }, label);
  };
  pager.replaceChildren(...[
    current > 0 ? link(current - 1, "← Previous") : null,
    h("span", {}, "Page " + (current + 1) + " of " + pages),
    current < pages - 1 ? link(current + 1, "Next →") : null].filter(Boolean));
  await Promise.all(slice.map(fillUpcoming));
}

function jobRow(job) {
  const last = lastRunOf(job);
  return h("tr", { "data-job": job.id },
    h("td", {}, h("a", { href: "#/jobs/" + enc(job.id) }, job.id)),
    h("td", {}, job.taskDefinition),
    h("td", {}, h("span", { class: "words" }, ""), h("br"), h("code", {}, job.schedule)),
    h("td", {}, job.timezone || "UTC"),
    h("td", { class: "next" }, "…"),
    h("td", {}, h("span", { class: last.cls }, last.text), job.lastRun ? " " + when(job.lastRun) : ""),
    h("td", {}, job.suspended ? "yes" : "no"));
}

async function fillUpcoming(job) {
  const row = document.querySelector('tr[data-job="' + CSS.escape(job.id) + '"]');
  try {
    const data = await api("GET", "/jobs/" + enc(job.id) + "/upcoming?count=1");
    if (!row) return;
    row.querySelector(".words").textContent = data.description;
    row.querySelector(".next").textContent = data.fires.length ? when(data.fires[0]) : (data.suspended ? "suspended" : "none");
  } catch (error) {
    if (row) row.querySelector(".next").textContent = "?";
  }
}

/* ---------- one job ---------- */

async function jobPage(id) {
  let job;
  try { job = await api("GET", "/jobs/" + enc(id)); } catch (error) {
    show(h("h1", {}, "Job " + id), h("p", { class: "banner" }, error.message), h("a", { href: "#/jobs" }, "Back to the jobs"));
    return;
  }
  const actions = h("div", { class: "actions", id: "job-actions" });
  if (state.canWrite) {
    actions.append(
      h("a", { class: "button", href: "#/jobs/" + enc(id) + "/edit", id: "edit" }, "Edit"),
      job.suspended
        ? h("button", { type: "button", id: "resume", onclick: () => setSuspended(id, false) }, "Resume")
        : h("button", { type: "button", id: "suspend", class: "secondary", onclick: () => setSuspended(id, true) }, "Suspend"));
  }
  if (state.canRun && state.runRoute) {
    actions.append(h("button", { type: "button", id: "run-now", onclick: () => runNow(id) }, "Run now"));
  }
  if (!state.canWrite && !(state.canRun && state.runRoute)) {
    actions.append(h("p", { class: "muted" }, "Your token may only read this job."));
  }
  if (state.canWrite) {
    actions.append(h("button", { type: "button", id: "delete", class: "danger", onclick: () => remove(id) }, "Delete"));
  }
  const fields = h("dl", { class: "fields", id: "job-fields" });
  for (const [key, value] of Object.entries(job)) {
    if (key === "link") continue;
    fields.append(h("dt", {}, key), h("dd", {}, typeof value === "object"
      ? h("pre", {}, JSON.stringify(value, null, 2)) : String(value)));
  }
  const failures = job.lastRunFailures && job.lastRunFailures.length
    ? h("section", { "aria-labelledby": "failures-title" },
      h("h2", { id: "failures-title" }, "Last run's RunTask failures"), failureList(job.lastRunFailures))
    : null;
  const upcomingBox = h("div", { id: "upcoming" }, "Loading…");
  const runsBox = h("div", { id: "runs" }, "Loading…");
  show(h("h1", {}, "Job " + job.id), actions,
    job.suspended ? h("p", { class: "banner", id: "suspended-banner" }, "Suspended: this job does not fire until resumed.") : null,
    h("div", { class: "grid" },
      h("section", { "aria-labelledby": "fields-title" }, h("h2", { id: "fields-title" }, "Fields"), fields),
      h("section", { "aria-labelledby": "upcoming-title" }, h("h2", { id: "upcoming-title" }, "Next 10 fires"), upcomingBox)),
    failures,
    h("section", { "aria-labelledby": "runs-title" }, h("h2", { id: "runs-title" }, "Run history"), runsBox));
  focusMain();
  api("GET", "/jobs/" + enc(id) + "/upcoming?count=10").then((data) => {
    upcomingBox.replaceChildren(h("p", {}, h("strong", {}, data.description), " (" + data.timezone + ")"),
      data.fires.length ? h("ol", {}, data.fires.map((fire) => h("li", {}, h("time", { datetime: fire }, fire))))
        : h("p", {}, data.suspended ? "None while suspended." : "It never fires again."));
  }, (error) => upcomingBox.replaceChildren(error.message));
  api("GET", "/jobs/" + enc(id) + "/runs?count=25").then((data) => {
    runsBox.replaceChildren(data.runs.length ? runsTable(data.runs) : h("p", {}, "No runs yet."));
  }, (error) => runsBox.replaceChildren(error.message));
}

function failureList(failures) {
  return h("ul", { class: "failures" }, failures.map((failure) => h("li", {},
    h("strong", {}, failure.reason), failure.detail ? ": " + failure.detail : "", failure.arn ? " (" + failure.arn + ")" : "")));
}

function statusClass(status) {
  if (["launched", "succeeded", "ok"].includes(status)) return "status-ok";
  if (["failed", "timedOut"].includes(status)) return "status-bad";
  return "status-warn";
}

/* A task's id and, once the run's tracking learnt it, how it ended (per container). */
function taskOutcome(task) {
  const facts = [task.lastStatus, task.timedOut ? "timed out" : null, task.stopCode,
    task.durationSeconds != null ? task.durationSeconds + " s" : null].filter(Boolean);
  return h("div", { class: "task" }, h("code", {}, task.taskId), facts.length ? " " + facts.join(", ") : "",
    task.stoppedReason ? h("div", { class: "muted" }, task.stoppedReason) : null,
    (task.containers || []).map((container) => h("div", {},
      container.name + ": " + (container.exitCode != null ? "exit " + container.exitCode : "no exit code"),
      container.reason ? " (" + container.reason + ")" : "",
      container.logUrl ? [" ", h("a", { href: container.logUrl, rel: "noreferrer", target: "_blank" }, "logs")] : null)));
}

function runsTable(runs) {
  return h("table", { id: "runs-table" },
    h("thead", {}, h("tr", {}, ["Scheduled for", "Status", "Expected", "Started", "Tasks", "Failures"]
      .map((label) => h("th", { scope: "col" }, label)))),
    h("tbody", {}, runs.map((run) => h("tr", {},
      h("td", {}, when(run.scheduledFor), run.coalescedFrom ? h("div", { class: "muted" }, "covers from " + when(run.coalescedFrom)) : null),
      h("td", {}, h("span", { class: statusClass(run.status) }, run.status),
        run.trigger && run.trigger !== "schedule" ? h("div", { class: "muted" }, run.trigger) : null,
        run.durationSeconds != null ? h("div", { class: "muted" }, run.durationSeconds + " s") : null),
      h("td", {}, run.expected ?? "—"),
      h("td", {}, run.started ?? "—"),
      h("td", {}, (run.tasks || []).map(taskOutcome)),
      h("td", {}, (run.failures || []).length ? failureList(run.failures) : "", run.error ? h("div", {}, run.error) : "")))));
}

async function setSuspended(id, suspended) {
  try {
    await api("PUT", "/jobs/" + enc(id), { suspended });
    await jobPage(id);
    notify(suspended ? "Job " + id + " suspended." : "Job " + id + " resumed.");
  } catch (error) { failed(error); }
}

async function runNow(id) {
  try {
    const run = await api("POST", "/jobs/" + enc(id) + "/runs", {});
    notify("Run " + (run && run.id ? run.id : "") + " started for job " + id + ".");
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      state.runRoute = false;
      const button = document.getElementById("run-now");
      if (button) button.remove();
    }
    failed(error);
  }
}

async function remove(id) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = "Delete job " + id + "? It stops firing and its definition is gone.";
  dialog.returnValue = "";
  dialog.showModal();
  document.getElementById("confirm-cancel").focus();
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "ok") return;
    try {
      await api("DELETE", "/jobs/" + enc(id));
      go("#/jobs", "Job " + id + " deleted.");
    } catch (error) { failed(error); }
  }, { once: true });
}

/* ---------- create and edit ---------- */

const FORM_FIELDS = [
  { name: "id", label: "ID", hint: "Defaults to the task definition. Letters, digits, _ and -." },
  { name: "taskDefinition", label: "Task definition", required: true, hint: "ECS task definition family." },
  { name: "schedule", label: "Schedule", required: true, wide: true,
    hint: "second minute hour day_of_week week day month year; ? picks a random value once. Example: 25 */5" },
  { name: "timezone", label: "Timezone", hint: "IANA name, e.g. Europe/Paris. UTC if empty." },
  { name: "taskCount", label: "Task count", type: "number", hint: "Tasks per fire, 1 to 50 (default 1)." },
  { name: "maxCount", label: "Max count", type: "number", hint: "Cap on tasks per fire." },
  { name: "scheduleStart", label: "Schedule start", hint: "ISO-8601; no offset means UTC." },
  { name: "scheduleEnd", label: "Schedule end", hint: "ISO-8601; no offset means UTC." },
  { name: "launchType", label: "Launch type", options: ["", "EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"] },
  { name: "platformVersion", label: "Platform version" },
  { name: "group", label: "Task group" },
  { name: "propagateTags", label: "Propagate tags", options: ["", "TASK_DEFINITION", "SERVICE", "NONE"] },
  { name: "timeoutSeconds", label: "Timeout (seconds)", type: "number", hint: "Tasks running longer are stopped (where the server tracks runs)." },
  { name: "suspended", label: "Suspended", type: "checkbox" },
  { name: "enableExecuteCommand", label: "Enable execute command", type: "checkbox" },
  { name: "overrides", label: "Overrides (JSON)", json: true, wide: true,
    hint: '[{"containerName": "app", "environment": {"NAME": "value"}, "command": ["..."]}]' },
  { name: "trigger", label: "Trigger (JSON)", json: true, wide: true,
    hint: '{"type": "sqs", "queueName": "my-queue", "messagesPerTask": 100}' },
  { name: "networkConfiguration", label: "Network configuration (JSON)", json: true, wide: true },
  { name: "capacityProviderStrategy", label: "Capacity provider strategy (JSON)", json: true, wide: true },
  { name: "notify", label: "Notify (JSON)", json: true, wide: true,
    hint: '{"onFailure": ["arn:aws:sns:..."], "onSuccess": []} (where the server supports it)' },
  { name: "tags", label: "Tags (JSON)", json: true, wide: true, hint: '[{"key": "team", "value": "data"}]' },
];

function fieldValue(spec, input) {
  if (spec.type === "checkbox") return input.checked;
  const raw = input.value.trim();
  if (raw === "") return undefined;
  if (spec.type === "number") return Number(raw);
  if (spec.json) {
    try { return JSON.parse(raw); } catch (e) { throw new ApiError(400, { message: "Invalid JSON", errors: { [spec.name]: "not valid JSON" } }); }
  }
  return raw;
}

async function formPage(id) {
  let job = {};
  if (id !== null) {
    try { job = await api("GET", "/jobs/" + enc(id)); } catch (error) {
      show(h("h1", {}, "Edit job " + id), h("p", { class: "banner" }, error.message));
      return;
    }
  }
  const inputs = {};
  const errorsOf = {};
  const cells = FORM_FIELDS.map((spec) => {
    const inputId = "f-" + spec.name;
    const value = job[spec.name];
    let input;
    if (spec.options) {
      input = h("select", { id: inputId, name: spec.name },
        spec.options.map((option) => h("option", { value: option, selected: (value || "") === option }, option || "(none)")));
    } else if (spec.json) {
      input = h("textarea", { id: inputId, name: spec.name, rows: 3 });
      input.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    } else if (spec.type === "checkbox") {
      input = h("input", { id: inputId, name: spec.name, type: "checkbox", checked: Boolean(value) });
    } else {
      input = h("input", { id: inputId, name: spec.name, type: spec.type === "number" ? "number" : "text",
        required: spec.required, autocomplete: "off", value: value === undefined ? "" : String(value) });
    }
    if (spec.name === "id" && id !== null) input.readOnly = true;
    const hintId = inputId + "-hint";
    const errorId = inputId + "-error";
    input.setAttribute("aria-describedby", hintId + " " + errorId);
    inputs[spec.name] = input;
    errorsOf[spec.name] = h("p", { class: "error", id: errorId, role: "alert" });
    const extra = spec.name === "schedule" ? h("div", { class: "preview", id: "schedule-preview", "aria-live": "polite" }, "") : null;
    return h("div", { class: "field" + (spec.wide ? " wide" : "") },
      spec.type === "checkbox" ? h("label", { for: inputId }, input, " " + spec.label) : h("label", { for: inputId }, spec.label),
      spec.type === "checkbox" ? null : input,
      h("p", { class: "hint", id: hintId }, spec.hint || ""), errorsOf[spec.name], extra);
  });
  const general = h("div", { id: "form-errors", role: "alert" });
  const form = h("form", { class: "job", id: "job-form", novalidate: true, onsubmit: (event) => { event.preventDefault(); save(); } },
    h("div", { class: "form-grid" }, cells), general,
    h("div", { class: "actions" },
      h("button", { type: "submit", id: "save" }, id === null ? "Create job" : "Save changes"),
      h("a", { class: "button secondary", href: id === null ? "#/jobs" : "#/jobs/" + enc(id) }, "Cancel")));
  show(h("h1", {}, id === null ? "New job" : "Edit job " + id), form);
  inputs[id === null ? "taskDefinition" : "schedule"].focus();

  let timer = null;
  const preview = document.getElementById("schedule-preview");
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const schedule = inputs.schedule.value.trim();
      if (!schedule) { preview.replaceChildren(); return; }
      const query = new URLSearchParams({ schedule, count: "5" });
      if (inputs.timezone.value.trim()) query.set("timezone", inputs.timezone.value.trim());
      try {
        const data = await api("GET", "/schedules/preview?" + query.toString());
        if (inputs.schedule.value.trim() !== schedule) return;
        preview.replaceChildren(h("strong", {}, data.description), " — next fires (" + data.timezone + "):",
          h("ol", {}, data.fires.map((fire) => h("li", {}, fire))));
      } catch (error) {
        if (inputs.schedule.value.trim() !== schedule) return;
        const reason = error.errors.schedule || error.errors.timezone || error.message;
        preview.replaceChildren(h("span", { class: "status-bad" }, "Not a valid schedule: " + reason));
      }
    }, 250);
  };
  inputs.schedule.addEventListener("input", refresh);
  inputs.timezone.addEventListener("input", refresh);
  if (inputs.schedule.value) refresh();

  async function save() {
    for (const [name, box] of Object.entries(errorsOf)) { box.textContent = ""; inputs[name].removeAttribute("aria-invalid"); }
    general.replaceChildren();
    const body = {};
    try {
      for (const spec of FORM_FIELDS) {
        if (spec.name === "id" && id !== null) continue;
        const value = fieldValue(spec, inputs[spec.name]);
        if (id === null) {
          if (value !== undefined && !(spec.type === "checkbox" && value === false)) body[spec.name] = value;
        } else if (JSON.stringify(value) !== JSON.stringify(job[spec.name])) {
          if (spec.type === "checkbox" && !value && job[spec.name] === undefined) continue;
          body[spec.name] = value === undefined ? null : value;
        }
      }
      if (id !== null && Object.keys(body).length === 0) { go("#/jobs/" + enc(id), "Nothing changed."); return; }
      const reply = id === null ? await api("POST", "/jobs", body) : await api("PUT", "/jobs/" + enc(id), body);
      go("#/jobs/" + enc(reply.id), id === null ? "Job " + reply.id + " created." : "Job " + reply.id + " saved.");
    } catch (error) {
      if (error.status === 401) return;
      showErrors(error);
    }
  }

  function showErrors(error) {
    const unplaced = [];
    let first = null;
    for (const [path, reason] of Object.entries(error.errors)) {
      const name = path.split(/[.[]/)[0];
      if (errorsOf[name]) {
        errorsOf[name].textContent = (errorsOf[name].textContent ? errorsOf[name].textContent + "; " : "") +
          (path === name ? reason : path + ": " + reason);
        inputs[name].setAttribute("aria-invalid", "true");
        first = first || inputs[name];
      } else {
        unplaced.push(path + ": " + reason);
      }
    }
    general.replaceChildren(h("div", {}, h("p", { class: "banner" }, error.message),
      unplaced.length ? h("ul", {}, unplaced.map((line) => h("li", {}, line))) : null));
    if (first) first.focus();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  // The skip link must not change the hash: the hash is the page's route.
  document.querySelector(".skip").addEventListener("click", (event) => { event.preventDefault(); focusMain(); });
  boot();
});
