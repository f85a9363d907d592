"""The pages and fragments as served by the REST frontend, in-process over memory state."""

from __future__ import annotations

import re

import httpx

from marathon_ui.render import CONTENT_SECURITY_POLICY


async def create(client: httpx.AsyncClient, app_id: str, **fields: object) -> None:
    body = {"id": app_id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1, **fields}
    response = await client.post("/v2/apps", json=body)
    assert response.status_code == 201, response.text


async def test_ui_redirects_to_the_apps_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/ui/")
    assert response.status_code == 303
    assert response.headers["location"].endswith("/ui/apps")


async def test_apps_page_lists_apps_with_strict_csp(client: httpx.AsyncClient) -> None:
    await create(client, "/prod/web")
    await create(client, "/prod/db", instances=0)
    await create(client, "/dev/web")
    response = await client.get("/ui/apps")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    html = response.text
    assert html.count('data-app-id="') == 3
    assert 'data-app-id="/prod/db" data-status="deploying"' in html


async def test_filters_sort_and_pages_live_in_the_url(client: httpx.AsyncClient) -> None:
    for n in range(12):
        await create(client, f"/team/app-{n:02}")
    await create(client, "/other/thing")
    html = (await client.get("/ui/apps?q=app-&sort=-id&per=5&page=2")).text
    ids = re.findall(r'<tr data-app-id="([^"]+)"', html)
    assert ids == [f"/team/app-{n:02}" for n in (6, 5, 4, 3, 2)]
    assert "page 2 of 3" in html
    assert 'href="/ui/apps?q=app-&amp;sort=-id&amp;page=3&amp;per=5"' in html
    grouped = (await client.get("/ui/apps?group=/other")).text
    assert re.findall(r'<tr data-app-id="([^"]+)"', grouped) == ["/other/thing"]
    none = (await client.get("/ui/apps?status=running")).text
    assert "No applications match." in none


async def test_row_fragment_marks_gone_apps(client: httpx.AsyncClient) -> None:
    await create(client, "/a")
    html = (await client.get("/ui/f/app-rows?id=/a&id=/missing")).text
    assert '<tr data-app-id="/a"' in html
    assert '<tr data-app-id="/missing" data-gone>' in html


async def test_app_page_and_deployments_page(client: httpx.AsyncClient) -> None:
    await create(client, "/svc/api", constraints=[["hostname", "UNIQUE"]])
    app = await client.get("/ui/apps/svc/api")
    assert app.status_code == 200
    assert "Why isn't it running?" in app.text
    assert "hostname:UNIQUE" in app.text
    assert app.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert (await client.get("/ui/apps/svc/nothing")).status_code == 404
    deployments = await client.get("/ui/deployments")
    assert 'data-apps="/svc/api"' in deployments.text
    assert (await client.get("/ui/f/deployments")).text.count("<article") == 1


async def test_static_files_and_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    script = await client.get("/ui/static/live.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/ui/static/nope.js")).status_code == 404
    await create(client, "/x")
    for path in (
        "/ui/apps",
        "/ui/apps/x",
        "/ui/deployments",
        "/ui/static/live.js",
        "/ui/static/ui.css",
    ):
        text = (await client.get(path)).text
        assert not re.search(r"(https?:)?//[a-z0-9]", text.replace("http://www.w3.org", "")), path


async def test_a_cross_site_form_cannot_write(client: httpx.AsyncClient) -> None:
    """A form on another site posts with the browser's credentials and no preflight:
    its Origin gives it away. The UI's own calls (same origin) and clients that send
    no Origin pass."""
    await create(client, "/csrf")
    form = {"content-type": "application/x-www-form-urlencoded"}
    evil = await client.post(
        "/v2/apps/csrf/restart", headers={**form, "origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert "Cross-site" in evil.json()["message"]
    own = f"http://{client.base_url.netloc.decode()}"
    assert (await client.post("/v2/apps/csrf/restart", headers={"origin": own})).status_code != 403
    assert (await client.post("/v2/apps/csrf/restart")).status_code != 403
    assert (await client.get("/ui/apps", headers={"origin": "https://evil.example"})).is_success


async def test_the_editor_previews_changes_and_shows_errors_at_their_paths(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "/edit/me", instances=2)
    page = await client.get("/ui/edit/edit/me")
    assert page.status_code == 200
    assert "&#34;instances&#34;: 2" in page.text
    assert (await client.get("/ui/new")).status_code == 200

    current = (await client.get("/v2/apps/edit/me")).json()["app"]
    changed = {k: v for k, v in current.items() if not k.startswith("tasks")} | {"mem": 64}
    del changed["deployments"]
    preview = await client.post("/ui/api/preview", json=changed)
    assert preview.status_code == 200, preview.text
    assert preview.json()["changes"] == [{"path": "/mem", "old": 16.0, "new": 64.0}]
    assert preview.json()["steps"]
    # Nothing was stored.
    assert (await client.get("/v2/apps/edit/me")).json()["app"]["mem"] == 16

    wrong = await client.post("/ui/api/preview", json={**changed, "cpus": -1})
    assert wrong.status_code == 422
    assert [d["path"] for d in wrong.json()["details"]] == ["/cpus"]
    as_form = await client.post(
        "/ui/api/preview", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert as_form.status_code == 400


async def test_a_stored_version_shows_what_deploying_it_would_change(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "/versioned", mem=16)
    first = (await client.get("/v2/apps/versioned/versions")).json()["versions"][0]
    put = await client.put("/v2/apps/versioned?force=true", json={"mem": 48})
    assert put.status_code == 200, put.text
    page = await client.get("/ui/apps/versioned")
    assert f'href="/ui/versions/versioned?version={first.replace(":", "%3A")}"' in page.text
    diff = await client.get("/ui/versions/versioned", params={"version": first})
    assert diff.status_code == 200
    assert re.findall(r"<code>(/[^<]*)</code>", diff.text) == ["/mem"]
    assert (await client.get("/ui/versions/versioned?version=nope")).status_code == 404


async def test_page_rows_place_the_asked_apps_in_the_listing(client: httpx.AsyncClient) -> None:
    """What live.js asks when an event names an app the page does not show: the page's
    order (filter, sort, page), the asked apps among it in full, the others by id."""
    for app_id in ("/team/a", "/team/b", "/team/c", "/other/d"):
        await create(client, app_id, instances=0)
    asked = "id=/team/a&id=/team/c&id=/other/d&id=/nope"
    html = (await client.get(f"/ui/f/app-page?q=team&sort=-id&per=2&{asked}")).text
    assert re.findall(r"<tr data-app-id=\"([^\"]+)\"( data-kept)?", html) == [
        ("/team/c", ""),
        ("/team/b", " data-kept"),
    ]
    assert '<tr data-app-id="/team/c" data-status="deploying">' in html
    assert '<table data-total="3">' in html
    assert "3 app(s) · page 1 of 2" in html
    assert '<option value="deploying">deploying (3)</option>' in html
    second = (await client.get(f"/ui/f/app-page?q=team&sort=-id&per=2&page=2&{asked}")).text
    assert re.findall(r"<tr data-app-id=\"([^\"]+)\"", second) == ["/team/a"]
    assert 'rel="prev" href="/ui/apps?q=team&amp;sort=-id&amp;per=2"' in second
    none = (await client.get("/ui/f/app-page?q=nothing&id=/team/a")).text
    assert "No applications match." in none
    assert "0 app(s) · page 1 of 1" in none
    # The apps page renders the same pager and counts it is updated with.
    page = (await client.get("/ui/apps?q=team&sort=-id&per=2")).text
    assert "3 app(s) · page 1 of 2" in page
    assert '<option value="deploying">deploying (3)</option>' in page


async def test_pages_name_the_event_their_data_is_as_of(client: httpx.AsyncClient) -> None:
    """A page's stream resumes after ``data-after``: the events of a change made
    between the render and the stream's opening are replayed, not lost."""

    def mark(html: str) -> int:
        found = re.search(r'<body [^>]*data-after="(\d+)"', html)
        assert found, "the page names no event"
        return int(found.group(1))

    await create(client, "/a")
    before = mark((await client.get("/ui/apps")).text)
    await create(client, "/b")
    for path in ("/ui/apps", "/ui/apps/b", "/ui/deployments", "/ui/events"):
        assert mark((await client.get(path)).text) > before, path
