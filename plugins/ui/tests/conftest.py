from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

import marathon_constraints.plugin
import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.testing.context import CoreContext, memory_context
from marathon_core.testing.pytest_plugin import in_ci
from marathon_rest.server import serve_api

#: Debian's Chromium: the browser tests never download one.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


@pytest.fixture
def extra_plugins() -> dict[str, object]:
    return {}


@pytest.fixture
async def api_context(extra_plugins: dict[str, object], nursery: trio.Nursery) -> CoreContext:
    """The core's context over in-memory state with marathon-rest and marathon-ui."""
    ctx = await memory_context(
        ["--http_port", "0", "--http_address", "127.0.0.1"],
        plugins={
            "rest": marathon_rest.plugin,
            "ui": marathon_ui.plugin,
            "constraints": marathon_constraints.plugin,
            **extra_plugins,
        },
    )
    await nursery.start(ctx.election.run, trio.sleep_forever)
    return ctx


@pytest.fixture
async def client(
    nursery: trio.Nursery, api_context: CoreContext
) -> AsyncIterator[httpx.AsyncClient]:
    url: str = await nursery.start(serve_api, api_context)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def screenshots(
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Where the browser tests write a screenshot of each page they visit."""
    configured = os.environ.get("MARATHON_UI_SCREENSHOTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("ui-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright: one per test module."""
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"Chromium is required when CI=true: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1280, "height": 800}


@pytest.fixture
def page(browser: Any, viewport: dict[str, int]) -> Iterator[Any]:
    """A fresh tab (no cookies) whose every request must stay on loopback: others are
    aborted and fail the test."""
    context = browser.new_context(viewport=viewport)
    tab = context.new_page()
    elsewhere: list[str] = []

    def only_loopback(route: Any) -> None:
        if (urlsplit(route.request.url).hostname or "").startswith("127."):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    tab.route("**/*", only_loopback)
    yield tab
    context.close()
    assert elsewhere == [], "requests left loopback"
