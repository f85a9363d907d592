// marathon-ui's editor: two views of one definition, a form and a plain JSON textarea.
// Switching views goes through the server (the form's fields merged onto the definition
// they were rendered from, so what the form does not show is kept). The textarea never
// blocks typing: JSON is parsed only after 300 ms without a keystroke. Preview asks the
// server to validate (errors at their JSON paths, and in the form next to their input)
// and shows the changes and the deployment steps; Deploy sends what was previewed.
"use strict";
(() => {
  const PARSE_DELAY_MS = 300;
  const $ = (id) => document.getElementById(id);
  const text = $("definition");
  const form = $("app-form");
  const formErrors = $("form-errors");
  const parseState = $("parse-state");
  const result = $("result");
  const deploy = $("deploy");
  const appId = document.body.dataset.app || null;
  // view: the one shown. In the form view the textarea keeps the definition the form
  // was rendered from (the base its rows' origins index into) until the next switch.
  const state = { view: document.body.dataset.view, previewed: null, timer: null };
  window.marathonEditor = state;  // for tests: which view, what was previewed

  function element(tag, className, content) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (content !== undefined) el.textContent = content;
    return el;
  }

  function parse() {
    state.timer = null;
    if (state.view !== "json") { parseState.textContent = ""; return; }
    try {
      JSON.parse(text.value);
      parseState.textContent = "valid JSON";
      parseState.className = "parse ok";
    } catch (error) {
      parseState.textContent = error.message;
      parseState.className = "parse failed";
    }
  }

  // Anything typed makes the last preview stale: Deploy waits for a new one.
  function stale() {
    state.previewed = null;
    deploy.disabled = true;
  }

  text.addEventListener("input", () => {
    stale();
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(parse, PARSE_DELAY_MS);
  });
  form.addEventListener("input", stale);

  const fields = () => [...new FormData(form)].map(([name, value]) => [name, String(value)]);
  const formBody = () => JSON.stringify({ fields: fields(), base: JSON.parse(text.value) });

  async function send(method, url, body, accept = "application/json") {
    const init = { method, body, headers: { "Content-Type": "application/json", Accept: accept } };
    let response = await fetch(url, init);
    if (response.status === 409 && confirm("A deployment is changing this app. Force it (cancels that deployment)?")) {
      response = await fetch(url + (url.includes("?") ? "&" : "?") + "force=true", init);
    }
    if (accept !== "application/json" && response.ok) return { ok: true, answer: await response.text() };
    const answer = await response.json().catch(() => ({ message: response.statusText }));
    return { ok: response.ok, answer };
  }

  function errorList(details) {
    const list = element("ul");
    for (const detail of details) {
      const item = element("li");
      item.append(element("code", "path", detail.path), document.createTextNode(": " + (detail.errors || []).join("; ")));
      list.append(item);
    }
    return list;
  }

  function showErrors(answer) {
    const box = element("div", "errors");
    box.append(element("p", "failed", answer.message || "refused"), errorList(answer.details || []));
    result.replaceChildren(box);
  }

  function clearFieldErrors() {
    for (const note of form.querySelectorAll(".field-error")) note.remove();
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    formErrors.replaceChildren();
    formErrors.hidden = true;
  }

  // Each error next to the input the server named for its path; the others on top.
  function placeErrors(answer) {
    clearFieldErrors();
    const unplaced = [];
    let first = null;
    for (const detail of answer.details || []) {
      const name = detail.field && CSS.escape(detail.field.name);
      const input = name && form.querySelectorAll(`[name="${name}"]`)[detail.field.index];
      if (!input) { unplaced.push(detail); continue; }
      input.setAttribute("aria-invalid", "true");
      const note = element("p", "field-error", (detail.errors || []).join("; "));
      note.dataset.path = detail.path;
      input.closest(".row, .field").append(note);
      first = first || input;
    }
    if (unplaced.length || !first) {
      formErrors.append(element("p", "failed", answer.message || "refused"), errorList(unplaced));
      formErrors.hidden = false;
    }
    result.replaceChildren(element("p", "failed", `${answer.message || "refused"}: see the form`));
    (first || formErrors).scrollIntoView({ block: "center" });
    if (first) first.focus();
  }

  function showPreview(answer) {
    const box = element("div", "preview");
    box.append(element("h2", "", answer.exists ? `Changes to ${answer.id}` : `New app ${answer.id}`));
    const table = element("table", "diff");
    const head = element("tr");
    for (const label of ["Path", "Now", "After"]) head.append(element("th", "", label));
    table.append(head);
    for (const change of answer.changes) {
      const row = element("tr");
      row.append(element("td", "", change.path),
        element("td", "old", "old" in change ? JSON.stringify(change.old) : "—"),
        element("td", "new", "new" in change ? JSON.stringify(change.new) : "—"));
      table.append(row);
    }
    box.append(answer.changes.length ? table : element("p", "", "No changes."));
    const steps = element("ol", "steps");
    for (const step of answer.steps) {
      steps.append(element("li", "", step.actions.map((a) => `${a.action} ${a.app}`).join(", ")));
    }
    box.append(element("h3", "", "Deployment steps"), steps);
    const whole = element("details", "whole");
    const sides = element("div", "sides");
    sides.append(element("pre", "old", JSON.stringify(answer.old, null, 2)),
      element("pre", "new", JSON.stringify(answer.new, null, 2)));
    whole.append(element("summary", "", "Whole definition: now / after"), sides);
    box.append(whole);
    result.replaceChildren(box);
  }

  async function switchTo(view) {
    if (view === state.view) return;
    try {
      if (view === "json") {
        const { ok, answer } = await send("POST", "/ui/api/form-json", formBody());
        if (!ok) { showErrors(answer); return; }
        text.value = JSON.stringify(answer.definition, null, 2);
      } else {
        const { ok, answer } = await send("POST", "/ui/f/form", text.value, "text/html");
        if (!ok) { showErrors(answer); return; }
        $("form-fields").innerHTML = answer;  // our own server's fragment (no script: CSP)
        clearFieldErrors();
      }
    } catch (error) {
      showErrors({ message: error.message });
      return;
    }
    state.view = view;
    document.body.dataset.view = view;
    form.hidden = view !== "form";
    text.hidden = view !== "json";
    for (const tab of document.querySelectorAll("button[data-view]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    }
    history.replaceState(null, "", view === "json" ? "?view=json" : location.pathname);
    stale();
    parse();
  }

  document.addEventListener("click", (click) => {
    const tab = click.target.closest("button[data-view]");
    if (tab) { switchTo(tab.dataset.view); return; }
    const add = click.target.closest("button[data-add]");
    if (add) {
      const list = add.dataset.add;
      $("rows-" + list).append($("row-" + list).content.cloneNode(true));
      stale();
      return;
    }
    const remove = click.target.closest("button.remove-row");
    if (remove) { remove.closest(".row").remove(); stale(); }
  });

  async function preview() {
    let outcome;
    try {
      outcome = state.view === "form"
        ? await send("POST", "/ui/api/form-preview", formBody())
        : await send("POST", "/ui/api/preview", text.value);
    } catch (error) {
      showErrors({ message: error.message });
      return;
    }
    const { ok, answer } = outcome;
    if (!ok) {
      if (state.view === "form") placeErrors(answer); else showErrors(answer);
      return;
    }
    if (state.view === "form") clearFieldErrors();
    showPreview(answer);
    state.previewed = { id: answer.id, body: state.view === "form" ? JSON.stringify(answer.definition) : text.value };
    deploy.disabled = false;
  }

  $("preview").addEventListener("click", preview);
  form.addEventListener("submit", (submit) => { submit.preventDefault(); preview(); });

  // What was previewed, as a whole definition (PUT without partialUpdate would keep
  // what the definition leaves out, and the preview showed it removed).
  deploy.addEventListener("click", async () => {
    const previewed = state.previewed;
    if (!previewed) return;
    const { ok, answer } = await send(appId ? "PUT" : "POST",
      appId ? `/v2/apps${appId}?partialUpdate=false` : "/v2/apps", previewed.body);
    if (!ok) { showErrors(answer); return; }
    window.location.assign("/ui/apps" + (appId || previewed.id));
  });

  parse();
})();
