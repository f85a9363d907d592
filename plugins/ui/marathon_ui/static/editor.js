// marathon-ui's editor: a plain textarea that never blocks typing. JSON is parsed
// only after 300 ms without a keystroke; the server validates on Preview (errors at
// their JSON paths) and shows the changes and the deployment steps before deploying.
"use strict";
(() => {
  const PARSE_DELAY_MS = 300;
  const text = document.getElementById("definition");
  const parseState = document.getElementById("parse-state");
  const result = document.getElementById("result");
  const appId = document.body.dataset.app || null;
  let timer = null;

  function parse() {
    timer = null;
    try {
      JSON.parse(text.value);
      parseState.textContent = "valid JSON";
      parseState.className = "parse ok";
    } catch (error) {
      parseState.textContent = error.message;
      parseState.className = "parse failed";
    }
  }

  text.addEventListener("input", () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(parse, PARSE_DELAY_MS);
  });

  function element(tag, className, content) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (content !== undefined) el.textContent = content;
    return el;
  }

  function showErrors(answer) {
    const box = element("div", "errors");
    box.append(element("p", "failed", answer.message || "refused"));
    const list = element("ul");
    for (const detail of answer.details || []) {
      const item = element("li");
      item.append(element("code", "path", detail.path), document.createTextNode(": " + (detail.errors || []).join("; ")));
      list.append(item);
    }
    box.append(list);
    result.replaceChildren(box);
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
    result.replaceChildren(box);
  }

  async function send(method, url) {
    const init = { method, body: text.value, headers: { "Content-Type": "application/json", Accept: "application/json" } };
    let response = await fetch(url, init);
    if (response.status === 409 && confirm("A deployment is changing this app. Force it (cancels that deployment)?")) {
      response = await fetch(url + (url.includes("?") ? "&" : "?") + "force=true", init);
    }
    const answer = await response.json().catch(() => ({ message: response.statusText }));
    return { ok: response.ok, answer };
  }

  document.getElementById("preview").addEventListener("click", async () => {
    const { ok, answer } = await send("POST", "/ui/api/preview");
    if (ok) showPreview(answer); else showErrors(answer);
  });

  document.getElementById("deploy").addEventListener("click", async () => {
    const { ok, answer } = await send(appId ? "PUT" : "POST", appId ? "/v2/apps" + appId : "/v2/apps");
    if (!ok) { showErrors(answer); return; }
    window.location.assign("/ui/deployments");
  });

  parse();
})();
