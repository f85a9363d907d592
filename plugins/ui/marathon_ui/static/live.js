// marathon-ui: keeps a server-rendered page live from /v2/events, and sends its actions
// to /v2. The page holds no copy of the cluster: an event only says which rows to fetch
// again (one request per batch, at most every COALESCE_MS); a hidden tab closes its
// stream and resumes after the last event it saw when shown again.
"use strict";
(() => {
  const COALESCE_MS = 300;
  const EVENT_TYPES = [
    "status_update_event", "instance_changed_event", "health_status_changed_event",
    "failed_health_check_event", "unhealthy_instance_kill_event", "app_terminated_event",
    "api_post_event", "deployment_info", "deployment_step_success", "deployment_step_failure",
    "deployment_success", "deployment_failed",
  ];
  const body = document.body;
  const kind = body.dataset.live;
  // The page was rendered after event data-after: the stream starts there, so an
  // event between the render and the stream's opening is not missed.
  const state = { source: null, lastId: body.dataset.after || null, touched: new Set(), timer: null, fetches: 0 };
  window.marathonUi = state;  // for tests and the curious: is a stream open, how many fetches

  function show(text, failed) {
    const notice = document.getElementById("notice");
    notice.textContent = text;
    notice.className = failed ? "failed" : "";
    notice.hidden = !text;
  }

  function streamState(text) {
    const el = document.getElementById("stream-state");
    if (el) { el.textContent = text; el.dataset.state = text; }
  }

  // The app ids an event is about (Marathon's event JSON).
  function appsOf(event) {
    const ids = [];
    for (const key of ["appId", "runSpecId"]) if (typeof event[key] === "string") ids.push(event[key]);
    if (event.appDefinition && typeof event.appDefinition.id === "string") ids.push(event.appDefinition.id);
    if (event.plan && Array.isArray(event.plan.steps)) {
      for (const step of event.plan.steps) for (const action of step.actions || []) ids.push(action.app);
    }
    return ids;
  }

  function parse(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  async function getFragment(url) {
    state.fetches += 1;
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return parse(await response.text());
  }

  function rowOf(appId) {
    return document.querySelector(`tr[data-app-id="${CSS.escape(appId)}"]`);
  }

  // The apps page's membership: an app created elsewhere that falls on the page (the
  // server's filter, sort and page) is inserted at its place, a removed one leaves, and
  // the page keeps its size. Keys: a shown app's id (fetch its row), "new:<id>" (an app
  // the page does not show that an app or deployment event names and that passes its
  // filter), PLACE (re-read the page's order: a shown app is gone or left the filter).
  const NEW_APP_EVENTS = new Set(["api_post_event", "deployment_info"]);
  const PLACE = "place";
  const listing = new URLSearchParams(location.search);

  function mayBeListed(id) {
    const q = (listing.get("q") || "").toLowerCase();
    const group = "/" + (listing.get("group") || "").replace(/^\/+|\/+$/g, "");
    return (!q || id.toLowerCase().includes(q)) && (group === "/" || id.startsWith(group + "/"));
  }

  function typingIn(row) {
    const typing = document.activeElement?.tagName === "INPUT" ? document.activeElement : null;
    return Boolean(typing && row?.contains(typing));
  }

  // One request: the page's ids in order, rows in full for `ids` (those on the page),
  // the pager and status counts. Rows are moved, not rebuilt, where they stay; a row
  // that arrives from another page (an app before it left) comes as its id and is
  // fetched in the next window.
  async function placeRows(ids) {
    const query = new URLSearchParams(listing);
    for (const id of ids) query.append("id", id);
    const fresh = await getFragment("/ui/f/app-page?" + query);
    const table = document.querySelector("table.apps");
    const tbody = table.tBodies[0];
    const wanted = [];
    for (const row of fresh.querySelector("tbody").children) {
      const id = row.dataset.appId;
      const old = id === undefined ? null : rowOf(id);
      if (old && (row.hasAttribute("data-kept") || typingIn(old))) {
        if (!row.hasAttribute("data-kept")) state.touched.add(id);
        wanted.push(old);
      } else {
        if (row.hasAttribute("data-kept")) state.touched.add(id);
        wanted.push(row);
      }
    }
    const keep = new Set(wanted);
    for (const row of [...tbody.rows]) if (!keep.has(row) && !typingIn(row)) row.remove();
    let cursor = tbody.firstElementChild;
    for (const row of wanted) {
      if (row === cursor) cursor = cursor.nextElementSibling;
      else if (row.isConnected && tbody.moveBefore) tbody.moveBefore(row, cursor);  // keeps focus
      else tbody.insertBefore(row, cursor);
    }
    table.dataset.total = fresh.querySelector("table").dataset.total;
    document.querySelector("p.pager").replaceWith(fresh.querySelector("p.pager"));
    const options = document.querySelector("form.filters select[name=status]").options;
    const counted = fresh.querySelector("select").options;
    for (let i = 0; i < options.length && i < counted.length; i += 1) {
      if (options[i].text !== counted[i].text) options[i].text = counted[i].text;
    }
  }

  // Per page: what an event touches, and how to refresh what was touched.
  const pages = {
    apps: {
      keys: (event) => appsOf(event).map((id) => (rowOf(id) ? id
        : NEW_APP_EVENTS.has(event.eventType) && mayBeListed(id) ? "new:" + id : null))
        .filter(Boolean),
      async refresh(keys) {
        const busy = keys.filter((key) => typingIn(rowOf(key)));
        busy.forEach((id) => state.touched.add(id));  // never swap a row being typed in
        const shown = keys.filter((key) => !key.startsWith("new:") && key !== PLACE && !busy.includes(key));
        const unseen = keys.filter((key) => key.startsWith("new:")).map((key) => key.slice(4));
        if (unseen.length || keys.includes(PLACE)) return placeRows([...shown, ...unseen]);
        if (!shown.length) return;
        const query = shown.map((id) => "id=" + encodeURIComponent(id)).join("&");
        const fresh = await getFragment("/ui/f/app-rows?" + query);
        const status = listing.get("status");
        for (const row of fresh.querySelectorAll("tr[data-app-id]")) {
          const old = rowOf(row.dataset.appId);
          if (!old) continue;
          if (row.hasAttribute("data-gone")) old.remove(); else old.replaceWith(row);
          // Gone, or out of the status filter: the next app of the list moves up.
          if (row.hasAttribute("data-gone") || (status && row.dataset.status !== status)) state.touched.add(PLACE);
        }
      },
    },
    app: {
      keys: (event) => appsOf(event).filter((id) => id === body.dataset.app),
      async refresh() {
        const live = document.getElementById("app-live");
        if (live.contains(document.activeElement) && document.activeElement.tagName === "INPUT") {
          state.touched.add(body.dataset.app);
          return;
        }
        const fresh = await getFragment("/ui/f/app" + body.dataset.app);
        live.replaceChildren(fresh);
      },
    },
    deployments: {
      keys: (event) => (event.eventType.startsWith("deployment_") || appsOf(event).some(
        (id) => document.querySelector(`article[data-apps~="${CSS.escape(id)}"]`))) ? ["all"] : [],
      async refresh() {
        document.getElementById("deployments").replaceChildren(await getFragment("/ui/f/deployments"));
      },
    },
  };
  // The event tail: every event the caller may see, the last MAX_EVENT_ROWS kept.
  const MAX_EVENT_ROWS = 200;
  pages.events = {
    types: null,  // all of them
    keys(event) {
      const rows = document.getElementById("event-rows");
      const filter = document.getElementById("event-filter").elements;
      const apps = appsOf(event).join(" ");
      if (!event.eventType.includes(filter.type.value) || (filter.app.value && !apps.includes(filter.app.value))) return [];
      const row = document.createElement("tr");
      const cells = [state.lastId, event.timestamp || "", event.eventType, apps, JSON.stringify(event).slice(0, 300)];
      for (const text of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      rows.prepend(row);
      while (rows.childElementCount > MAX_EVENT_ROWS) rows.lastElementChild.remove();
      return [];
    },
  };
  const page = pages[kind];

  function flush() {
    state.timer = null;
    const keys = [...state.touched];
    state.touched.clear();
    if (!keys.length) return;
    page.refresh(keys).catch((error) => show(String(error), true)).finally(() => {
      if (state.touched.size && !state.timer) state.timer = setTimeout(flush, COALESCE_MS);
    });
  }

  function onEvent(message) {
    state.lastId = message.lastEventId || state.lastId;
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    for (const key of page.keys(event)) state.touched.add(key);
    if (state.touched.size && !state.timer) state.timer = setTimeout(flush, COALESCE_MS);
  }

  function open() {
    if (state.source || !page) return;
    const params = page.types === null ? ["unnamed=1"] : EVENT_TYPES.map((t) => "event_type=" + t);
    if (state.lastId) params.push("after=" + encodeURIComponent(state.lastId));
    const source = new EventSource("/ui/stream?" + params.join("&"));
    if (page.types === null) source.onmessage = onEvent;
    else for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.onopen = () => streamState("live");
    source.onerror = () => streamState(source.readyState === EventSource.CLOSED ? "offline" : "reconnecting");
    state.source = source;
  }

  function close() {
    if (!state.source) return;
    state.source.close();
    state.source = null;
    streamState("paused");
  }

  document.addEventListener("visibilitychange", () => (document.hidden ? close() : open()));
  window.addEventListener("pagehide", close);

  // -- actions: JSON requests to /v2 on our own origin (a cross-site form cannot send these)

  async function call(method, url, payload) {
    const init = { method, headers: { "Content-Type": "application/json", Accept: "application/json" } };
    if (payload !== undefined) init.body = JSON.stringify(payload);
    let response = await fetch(url, init);
    if (response.status === 409 && confirm("A deployment is changing this app. Force it (cancels that deployment)?")) {
      response = await fetch(url + (url.includes("?") ? "&" : "?") + "force=true", init);
    }
    const text = await response.text();
    let answer = {};
    try { answer = text ? JSON.parse(text) : {}; } catch { answer = { message: text }; }
    if (!response.ok) {
      const details = (answer.details || []).map((d) => `${d.path}: ${(d.errors || []).join(", ")}`);
      throw new Error([answer.message || response.statusText, ...details].join("; "));
    }
    return answer;
  }

  const appUrl = (id) => "/v2/apps" + id;
  const actions = {
    restart: (el) => call("POST", appUrl(el.dataset.app) + "/restart"),
    suspend: (el) => call("PUT", appUrl(el.dataset.app), { instances: 0 }),
    destroy: (el) => confirm(`Destroy ${el.dataset.app} and all its instances?`) && call("DELETE", appUrl(el.dataset.app)),
    "reset-delay": (el) => call("DELETE", "/v2/queue" + el.dataset.app + "/delay"),
    "deploy-version": (el) => call("PUT", appUrl(el.dataset.app), { version: el.dataset.version }),
    kill: (el) => call("POST", "/v2/tasks/delete", { ids: [el.dataset.task] }),
    "kill-scale": (el) => call("POST", "/v2/tasks/delete?scale=true", { ids: [el.dataset.task] }),
    // Wipe expunges the instance (its reservations and volumes too); the app keeps its
    // instance count, so a new instance replaces it.
    "kill-wipe": (el) => confirm(`Kill and wipe ${el.dataset.task}? Its instance is expunged with its reservations and volumes, and a new one replaces it.`) &&
      call("POST", "/v2/tasks/delete?wipe=true", { ids: [el.dataset.task] }),
    rollback: (el) => confirm("Stop this deployment and deploy back to where its apps were?") &&
      call("DELETE", "/v2/deployments/" + encodeURIComponent(el.dataset.deployment)),
    stop: (el) => confirm("Stop this deployment where it stands (no rollback)?") &&
      call("DELETE", "/v2/deployments/" + encodeURIComponent(el.dataset.deployment) + "?force=true"),
  };

  function report(promise, what) {
    Promise.resolve(promise).then((answer) => {
      if (answer) show(`${what}: done${answer.deploymentId ? " (deployment " + answer.deploymentId + ")" : ""}`);
    }).catch((error) => show(`${what}: ${error.message}`, true));
  }

  document.addEventListener("click", (click) => {
    const el = click.target.closest("button[data-action]");
    if (!el || !actions[el.dataset.action]) return;
    report(actions[el.dataset.action](el), el.dataset.action);
  });

  document.addEventListener("submit", (submit) => {
    const form = submit.target.closest("form.scale");
    if (!form) return;
    submit.preventDefault();
    const instances = Number(form.elements.instances.value);
    report(call("PUT", appUrl(form.dataset.app), { instances }), `scale ${form.dataset.app} to ${instances}`);
    form.elements.instances.blur();
  });

  // A task's stdout/stderr, followed while shown: the one poll of the UI (a file
  // has no events), of one file, only while its panel is open and the tab visible.
  const SANDBOX_POLL_MS = 2000;
  const sandbox = { timer: null, offset: null, query: null };

  async function followSandbox() {
    sandbox.timer = null;
    const panel = document.getElementById("sandbox");
    if (!sandbox.query || panel.hidden) return;
    if (!document.hidden) {
      const offset = sandbox.offset === null ? "" : "&offset=" + sandbox.offset;
      try {
        const answer = await call("GET", "/ui/api/sandbox?" + sandbox.query + offset);
        const text = document.getElementById("sandbox-text");
        text.textContent = (text.textContent + answer.data).slice(-256 * 1024);
        sandbox.offset = answer.offset;
      } catch (error) {
        show("sandbox: " + error.message, true);
      }
    }
    sandbox.timer = setTimeout(followSandbox, SANDBOX_POLL_MS);
  }

  document.addEventListener("click", (click) => {
    const button = click.target.closest("button[data-sandbox]");
    if (button) {
      const { app, task, sandbox: file } = button.dataset;
      sandbox.query = new URLSearchParams({ app, task, file }).toString();
      sandbox.offset = null;
      document.getElementById("sandbox-title").textContent = `${file} of ${task}`;
      document.getElementById("sandbox-text").textContent = "";
      document.getElementById("sandbox").hidden = false;
      if (sandbox.timer) clearTimeout(sandbox.timer);
      followSandbox();
    } else if (click.target.id === "sandbox-close") {
      document.getElementById("sandbox").hidden = true;
      sandbox.query = null;
    }
  });

  // A backoff's "next launch in" ticks down from the seconds the server rendered
  // (data-seconds, counted from when the span arrived); same format as data.format_delay.
  function countdown(seconds) {
    const left = Math.max(0, Math.ceil(seconds));
    const two = (n) => String(n).padStart(2, "0");
    if (left === 0) return "now";
    if (left < 60) return `${left}s`;
    if (left < 3600) return `${Math.floor(left / 60)}m ${two(left % 60)}s`;
    return `${Math.floor(left / 3600)}h ${two(Math.floor((left % 3600) / 60))}m`;
  }

  function tick() {
    const now = Date.now();
    for (const span of document.querySelectorAll(".countdown[data-seconds]")) {
      if (!span.dataset.until) span.dataset.until = String(now + 1000 * Number(span.dataset.seconds));
      const text = countdown((Number(span.dataset.until) - now) / 1000);
      if (span.textContent !== text) span.textContent = text;
    }
  }
  setInterval(() => document.hidden || tick(), 1000);
  window.marathonUi.countdown = countdown;

  if (!page) document.getElementById("stream-state").hidden = true;  // a page with nothing live
  else if (!document.hidden) open();
  else streamState("paused");
})();
