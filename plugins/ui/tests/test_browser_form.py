"""The app form and kill & wipe in Debian's Chromium against ``marathon --master
local`` with two agents: create an app with the form (an error placed at its input,
fixed, previewed, deployed, running), edit one and see the diff, wipe an instance.

Like ``test_browser.py``: every request must stay on 127.0.0.1, and each page visited
is written as a screenshot into ``$MARATHON_UI_SCREENSHOTS``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from marathon_core.testing.processes import (
    RunningMarathon,
    local_cluster_args,
    running_marathon,
    searchable_state_dir,
    wait_for,
)

pytestmark = [pytest.mark.processes, pytest.mark.cluster]

LIVE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server() -> Iterator[RunningMarathon]:
    """Two agents; a scale check every second, which replaces a wiped instance."""
    with (
        searchable_state_dir() as state_dir,
        running_marathon(
            *local_cluster_args(2, agent_resources="cpus:4;mem:2048;disk:1000;ports:[31000-31100]"),
            "--scale_apps_initial_delay", "1000", "--scale_apps_interval", "1000",
            state_dir=state_dir,
        ) as running,
    ):  # fmt: skip
        yield running
        assert running.stop() == 0


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1280, "height": 900}


def shoot(page: Any, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def app_of(server: RunningMarathon, app_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v2/apps{app_id}?embed=apps.tasks", timeout=5)
    return dict(response.json()["app"]) if response.status_code == 200 else {}


def running(server: RunningMarathon, app_id: str) -> int:
    return int(app_of(server, app_id).get("tasksRunning", 0))


def running_on_page(server: RunningMarathon, page: Any, app_id: str, count: int) -> None:
    """The app page, opened by the deploy, follows the tasks to ``count`` running by
    its events alone: its stream starts after the event its render was as of, so the
    deploy's first events (right between the two) are not lost."""
    wait_for(lambda: running(server, app_id) == count, timeout=60, what=f"{count} running")
    page.locator("#app-live .counts .running").filter(has_text=f"{count}/{count} running").wait_for(
        timeout=10_000
    )


def diff_rows(page: Any) -> list[list[str]]:
    rows = page.locator("#result table.diff tr").all()[1:]
    return [[cell.inner_text() for cell in row.locator("td").all()] for row in rows]


def test_create_an_app_with_the_form(server: RunningMarathon, page: Any, screenshots: Path) -> None:
    page.goto(f"{server.url}/ui/new")
    page.fill("#f-id", "/form/created")
    page.fill("#f-cmd", 'echo "$GREETING"; exec sleep 3600')
    page.fill("#f-cpus", "-1")
    page.fill("#f-mem", "16")
    page.click('button[data-add="env"]')
    env = page.locator("#rows-env .row").last
    env.locator('[name="env.key"]').fill("GREETING")
    env.locator('[name="env.value"]').fill("hello")
    page.click('button[data-add="constraints"]')
    constraint = page.locator("#rows-constraints .row").last
    constraint.locator('[name="constraints.field"]').fill("hostname")
    constraint.locator('[name="constraints.operator"]').fill("UNIQUE")

    # The server's 422 names /cpus: the error shows at the cpus input, and only there.
    page.click("#preview")
    error = page.locator(".field:has(#f-cpus) .field-error")
    error.wait_for(timeout=10_000)
    assert error.get_attribute("data-path") == "/cpus"
    assert page.locator("#f-cpus").get_attribute("aria-invalid") == "true"
    assert page.locator(".field-error").count() == 1
    assert page.locator("#form-errors").is_hidden()
    assert page.locator("#deploy").is_disabled()
    shoot(page, screenshots, "form-error")

    page.fill("#f-cpus", "0.1")
    page.click("#preview")
    page.locator("#result .preview").wait_for(timeout=10_000)
    assert page.locator(".field-error").count() == 0
    changes = {row[0]: row[2] for row in diff_rows(page)}
    assert changes["/cpus"] == "0.1"
    assert changes["/env"] == '{"GREETING":"hello"}'
    assert changes["/constraints"] == '[["hostname","UNIQUE"]]'
    assert "StartApplication /form/created" in page.locator("#result ol.steps").inner_text()
    assert httpx.get(f"{server.url}/v2/apps/form/created", timeout=5).status_code == 404
    shoot(page, screenshots, "form-preview")

    page.click("#deploy")
    page.wait_for_url("**/ui/apps/form/created", timeout=10_000)
    running_on_page(server, page, "/form/created", 1)
    app = app_of(server, "/form/created")
    assert app["env"] == {"GREETING": "hello"}
    assert app["constraints"] == [["hostname", "UNIQUE"]]
    assert app["cpus"] == 0.1


def test_edit_instances_with_the_form_and_see_the_diff(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    body = {
        "id": "/form/edited",
        "cmd": "sleep 3600",
        "cpus": 0.1,
        "mem": 16,
        "instances": 1,
        "labels": {"team": "shop"},
        "killSelection": "OLDEST_FIRST",  # not in the form: kept
    }
    response = httpx.post(f"{server.url}/v2/apps", json=body, timeout=10)
    assert response.status_code == 201, response.text
    wait_for(lambda: running(server, "/form/edited") == 1, timeout=60, what="1 task running")

    page.goto(f"{server.url}/ui/edit/form/edited")
    assert page.locator("#f-instances").input_value() == "1"
    assert page.locator('[name="labels.value"]').input_value() == "shop"
    page.fill("#f-instances", "2")
    page.click("#preview")
    page.locator("#result .preview").wait_for(timeout=10_000)
    assert diff_rows(page) == [["/instances", "1", "2"]]
    assert "ScaleApplication /form/edited" in page.locator("#result ol.steps").inner_text()
    shoot(page, screenshots, "form-edit-diff")

    # The JSON view carries the form's values and what the form does not show.
    page.click('button[data-view="json"]')
    page.locator("#definition").wait_for(state="visible", timeout=10_000)
    text = page.locator("#definition").input_value()
    assert '"instances": 2' in text and '"killSelection": "OLDEST_FIRST"' in text
    assert page.locator("#deploy").is_disabled()  # a switch asks for a new preview
    page.click('button[data-view="form"]')
    page.locator("#app-form").wait_for(state="visible", timeout=10_000)
    assert page.locator("#f-instances").input_value() == "2"

    page.click("#preview")
    page.locator("#result .preview").wait_for(timeout=10_000)
    page.click("#deploy")
    page.wait_for_url("**/ui/apps/form/edited", timeout=10_000)
    running_on_page(server, page, "/form/edited", 2)
    app = app_of(server, "/form/edited")
    assert (app["instances"], app["killSelection"], app["labels"]) == (
        2,
        "OLDEST_FIRST",
        {"team": "shop"},
    )


def test_kill_and_wipe_an_instance_from_the_app_page(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    body = {"id": "/wipe/me", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 2}
    assert httpx.post(f"{server.url}/v2/apps", json=body, timeout=10).status_code == 201
    wait_for(lambda: running(server, "/wipe/me") == 2, timeout=60, what="2 tasks running")
    before = {t["id"] for t in app_of(server, "/wipe/me")["tasks"]}

    page.goto(f"{server.url}/ui/apps/wipe/me")
    row = page.locator("tr[data-instance]").first
    instance = row.get_attribute("data-instance")
    wiped = row.locator('button[data-action="kill-wipe"]').get_attribute("data-task")
    assert wiped in before
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Kill & wipe").click()
    page.locator(f'tr[data-instance="{instance}"]').wait_for(
        state="detached", timeout=LIVE_TIMEOUT_MS
    )
    assert "wipe" in asked[0] and wiped in asked[0]

    # Wipe does not scale down: the instance is expunged and a new one replaces it.
    def replaced() -> bool:
        app = app_of(server, "/wipe/me")
        ids = {t["id"] for t in app["tasks"] if t["state"] == "TASK_RUNNING"}
        return len(ids) == 2 and wiped not in ids

    deadline = time.monotonic() + 60
    while not replaced():
        assert time.monotonic() < deadline, "no replacement for the wiped instance"
        page.wait_for_timeout(200)
    assert app_of(server, "/wipe/me")["instances"] == 2
    page.locator("#app-live .counts .running").filter(has_text="2/2 running").wait_for(
        timeout=LIVE_TIMEOUT_MS
    )
    assert page.locator(f'tr[data-instance="{instance}"]').count() == 0
    shoot(page, screenshots, "app-after-wipe")
