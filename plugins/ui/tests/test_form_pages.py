"""The app form as served: its inputs round-trip a definition through the server, the
form's preview places errors at inputs, and the views switch through the server."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

import marathon_healthchecks.plugin
from marathon_ui.render import CONTENT_SECURITY_POLICY


@pytest.fixture
def extra_plugins() -> dict[str, object]:
    """Health checks validate their protocols: the form's definitions have some."""
    return {"healthchecks": marathon_healthchecks.plugin}


class FormInputs(HTMLParser):
    """The (name, value) pairs a browser's ``FormData`` would give for the page's form
    (inputs, selects and textareas outside ``<template>``, in document order), and the
    names of all inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self.names: set[str] = set()
        self._template = 0
        self._select: str | None = None
        self._selected: str | None = None
        self._first: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "template":
            self._template += 1
        if "name" in a:
            self.names.add(a["name"])  # rows to add (in a <template>) too
        if self._template or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._selected, self._first = a["name"], None, None
        elif tag == "option" and self._select is not None:
            self._first = self._first if self._first is not None else a.get("value", "")
            if "selected" in a:
                self._selected = a.get("value", "")
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._template -= 1
        elif tag == "select" and self._select is not None:
            chosen = self._selected if self._selected is not None else self._first or ""
            self.pairs.append((self._select, chosen))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.pairs.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data


def inputs_of(html: str) -> FormInputs:
    parser = FormInputs()
    parser.feed(html)
    return parser


EDITED: dict[str, Any] = {
    "id": "/form/web",
    "cmd": "sleep 1000",
    "cpus": 0.1,
    "mem": 16,
    "instances": 2,
    "env": {"A": "1", "B": "2"},
    "labels": {"team": "shop"},
    "constraints": [["hostname", "UNIQUE"]],
    "healthChecks": [{"protocol": "TCP", "portIndex": 0, "delaySeconds": 7}],
    "fetch": [{"uri": "file:///tmp/x.txt"}],
    "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5},
}


async def test_the_edit_form_round_trips_the_current_definition(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/v2/apps", json=EDITED)).status_code == 201
    page = await client.get("/ui/edit/form/web")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    form = inputs_of(page.text)
    assert ("instances", "2") in form.pairs
    assert ("env.key", "B") in form.pairs and ("constraints.operator", "UNIQUE") in form.pairs
    assert ("healthChecks.protocol", "TCP") in form.pairs
    # Every column of every row list has a blank row to add (in a <template>).
    for name in ("env", "labels", "constraints", "portDefinitions", "portMappings", "healthChecks"):
        assert f'<template id="row-{name}">' in page.text

    current = (await client.get("/v2/apps/form/web")).json()["app"]
    base = {k: current[k] for k in current if not k.startswith("tasks")}
    del base["deployments"]
    answer = await client.post("/ui/api/form-json", json={"fields": form.pairs, "base": base})
    assert answer.status_code == 200, answer.text
    assert answer.json()["definition"] == base  # nothing lost, nothing changed

    changed = [(n, "3" if n == "instances" else v) for n, v in form.pairs]
    preview = await client.post("/ui/api/form-preview", json={"fields": changed, "base": base})
    assert preview.status_code == 200, preview.text
    assert preview.json()["changes"] == [{"path": "/instances", "old": 2, "new": 3}]
    assert preview.json()["old"]["instances"] == 2 and preview.json()["new"]["instances"] == 3
    assert preview.json()["definition"]["fetch"] == base["fetch"]
    assert preview.json()["steps"]
    assert (await client.get("/v2/apps/form/web")).json()["app"]["instances"] == 2


async def test_the_form_preview_names_the_input_of_each_error(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/new")
    form = inputs_of(page.text)
    assert ("id", "/my-app") in form.pairs and ("cpus", "0.1") in form.pairs
    base = {"id": "/my-app", "cmd": "sleep 3600", "cpus": 0.1, "mem": 32, "instances": 1}
    fields = [(n, v) for n, v in form.pairs if n not in ("cpus", "container.type")]
    wrong = await client.post(
        "/ui/api/form-preview",
        json={"fields": [*fields, ("cpus", "-1"), ("container.type", "DOCKER")], "base": base},
    )
    assert wrong.status_code == 422, wrong.text
    placed = {d["path"]: d["field"] for d in wrong.json()["details"]}
    assert placed == {
        "/cpus": {"name": "cpus", "index": 0},
        "/container/docker/image": {"name": "container.docker.image", "index": 0},
    }
    assert wrong.json()["definition"]["cpus"] == -1
    # A rule broken by a row: the error goes to that row (the blank one is no entry).
    constraint = [
        *[("constraints." + c, "") for c in ("field", "operator", "value")],
        *[("constraints." + c, v) for c, v in (("field", "hostname"), ("operator", "NOPE"))],
        ("constraints.value", ""),
        ("fetch", "ignored: not a field of the form"),
    ]
    wrong = await client.post(
        "/ui/api/form-preview", json={"fields": form.pairs + constraint, "base": base}
    )
    assert wrong.status_code == 422, wrong.text
    assert [(d["path"], d["field"]) for d in wrong.json()["details"]] == [
        ("/constraints(0)", {"name": "constraints.field", "index": 1})
    ]
    assert {"cpus", "container.docker.image", "constraints.field"} <= form.names

    bad = await client.post("/ui/api/form-preview", json={"fields": "x", "base": {}})
    assert bad.status_code == 400
    as_form = await client.post(
        "/ui/api/form-json", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert as_form.status_code == 400


async def test_the_json_editor_switches_to_the_form_through_the_server(
    client: httpx.AsyncClient,
) -> None:
    json_view = await client.get("/ui/new?view=json")
    assert 'data-view="json"' in json_view.text
    assert '<form id="app-form" class="app-form" novalidate hidden>' in json_view.text
    fragment = await client.post("/ui/f/form", json=EDITED)
    assert fragment.status_code == 200
    assert fragment.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    form = inputs_of(fragment.text)
    assert ("id", "/form/web") in form.pairs and ("labels.value", "shop") in form.pairs
    unusable = await client.post("/ui/f/form", json={"id": "/x", "env": ["not", "a map"]})
    assert unusable.status_code == 400
    assert "cannot show" in unusable.json()["message"]
    assert (await client.post("/ui/f/form", json=[1])).status_code == 400


async def test_the_form_page_and_its_script_load_nothing_from_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/ui/new", "/ui/new?view=json", "/ui/static/editor.js", "/ui/static/ui.css"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert not re.search(r"(https?:)?//[a-z0-9]", response.text), path
