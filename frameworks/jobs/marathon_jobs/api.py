"""Chronos's REST API (``/v1/scheduler/...``, also without the ``/v1`` prefix).

Every instance serves it; a standby forwards each request to the leader (its
``host:port`` from the election) and relays the answer, so clients may talk to any
instance. Errors are Chronos's: 400 ``{"message": ..., "status": "Bad Request"}``, 404
for an unknown job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from marathon_core.framework import LeaderElection
from marathon_jobs.book import Book, JobRecord, Run
from marathon_jobs.model import BadJob, Job, JobStats, load_body, parse_job
from marathon_jobs.scheduler import JobScheduler
from marathon_jobs.tasks import Placement

__all__ = ["Node", "create_app"]

log = logging.getLogger(__name__)

#: Seconds a request to a new leader waits for it to have read its state.
LOADING_WAIT = 10.0
#: Headers not relayed between a caller and the leader.
_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}
#: Request headers the standby does not forward either: it refused cross-site writes
#: itself, and the leader would read the caller's ``Origin`` against its own host.
#: ``Authorization`` goes along: the leader checks the credentials again.
_NOT_FORWARDED = _HOP | {"origin"}


@attrs.define
class Node:
    """What the API reads: the election, and while leading the book and the scheduler."""

    placement: Placement
    #: Set once the API listens (the election's participant id is its address).
    election: LeaderElection | None = None
    default_epsilon: str = "PT60S"
    book: Book | None = None
    scheduler: JobScheduler | None = None
    proxy: httpx.AsyncClient = attrs.field(factory=lambda: httpx.AsyncClient(timeout=30.0))


def bad_request(message: str) -> JSONResponse:
    return JSONResponse({"message": message, "status": "Bad Request"}, status_code=400)


def not_found(name: str) -> JSONResponse:
    return JSONResponse(
        {"message": f"Job '{name}' not found", "status": "Not Found"}, status_code=404
    )


Handler = Callable[[Request, Book], Awaitable[Response]]


def leader_only(node: Node, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Run ``handler`` on the leader; forward the request to it from a standby."""

    async def endpoint(request: Request) -> Response:
        if node.election is None:
            return JSONResponse({"message": "starting"}, status_code=503)
        if node.election.is_leader:
            with trio.move_on_after(LOADING_WAIT):  # a new leader reads its state first
                while node.book is None:
                    await trio.sleep(0.05)
            if node.book is None:
                return JSONResponse({"message": "loading state"}, status_code=503)
            try:
                return await handler(request, node.book)
            except BadJob as exc:
                return bad_request(str(exc))
        leader = node.election.leader_id
        if leader is None or leader == node.election.participant_id:
            return JSONResponse({"message": "no leader elected yet"}, status_code=503)
        return await forward(node, request, leader, node.election.participant_id)

    return endpoint


async def forward(node: Node, request: Request, leader: str, us: str) -> Response:
    url = f"http://{leader}{request.url.path}"
    if request.url.query:
        url += f"?{request.url.query}"
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
    headers["X-Forwarded-By"] = us
    try:
        answer = await node.proxy.request(
            request.method, url, content=await request.body(), headers=headers
        )
    except httpx.HTTPError as exc:
        return JSONResponse({"message": f"leader {leader} unreachable: {exc}"}, status_code=503)
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
    return Response(answer.content, status_code=answer.status_code, headers=kept)


def job_json(record: JobRecord, book: Book) -> dict[str, Any]:
    """A job as ``GET /jobs`` shows it: definition, counts, and where its schedule stands."""
    out = record.job.to_json()
    schedule = record.job.parsed_schedule()
    if schedule is not None:
        out["schedule"] = schedule.text_from(record.cursor)
    out.update(record.stats.to_json())
    out["state"] = job_state(record.job.name, book)
    return out


def job_state(name: str, book: Book) -> str:
    states = {r.state for r in book.runs.values() if r.job == name}
    if states & {"launching", "running", "killing"}:
        return "running"
    return "queued" if states else "idle"


def create_app(node: Node, clock: Callable[[], float] = time.time) -> Starlette:
    async def post_job(request: Request, book: Book, *, dependent: bool) -> Response:
        now = datetime.fromtimestamp(clock(), UTC)
        job = parse_job(
            load_body(await request.body()),
            dependent=dependent,
            now=now,
            default_epsilon=node.default_epsilon,
        )
        node.placement.as_app(job)  # the constraints and container, by the plugins' rules
        if job.parents is not None:
            missing = [p for p in job.parents if p not in book.jobs]
            if missing or job.name in job.parents:
                raise BadJob("Error, parent does not exist")
        await book.change(lambda b: ({job.name: new_record(b, job, now)}, []))
        log.info("job %s stored", job.name)
        return Response(status_code=204)

    async def iso8601(request: Request, book: Book) -> Response:
        return await post_job(request, book, dependent=False)

    async def dependency(request: Request, book: Book) -> Response:
        return await post_job(request, book, dependent=True)

    async def jobs(request: Request, book: Book) -> Response:
        return JSONResponse([job_json(r, book) for _, r in sorted(book.jobs.items())])

    async def search(request: Request, book: Book) -> Response:
        name = request.query_params.get("name", "").lower()
        command = request.query_params.get("command", "").lower()
        found = [
            job_json(r, book)
            for _, r in sorted(book.jobs.items())
            if name in r.job.name.lower() and command in r.job.command.lower()
        ]
        limit = request.query_params.get("limit")
        return JSONResponse(found[: int(limit)] if limit and limit.isdigit() else found)

    async def run_now(request: Request, book: Book) -> Response:
        name = request.path_params["name"]
        if name not in book.jobs:
            return not_found(name)
        now = clock()
        run = Run(f"{name}@{round(now * 1000)}", name, now, None, cause="manual")
        await book.change(lambda b: ({}, [run]))
        log.info("job %s: run asked for", name)
        return Response(status_code=204)

    async def delete_job(request: Request, book: Book) -> Response:
        name = request.path_params["name"]
        if name not in book.jobs:
            return not_found(name)
        if node.scheduler is not None:
            await node.scheduler.kill_job_tasks(name)
        await book.change(lambda b: b.deleted(name))
        log.info("job %s deleted", name)
        return Response(status_code=204)

    async def kill_tasks(request: Request, book: Book) -> Response:
        name = request.path_params["name"]
        if name not in book.jobs:
            return not_found(name)
        if node.scheduler is not None:
            await node.scheduler.kill_job_tasks(name)
        return Response(status_code=204)

    async def graph_csv(request: Request, book: Book) -> Response:
        lines = []
        for name, record in sorted(book.jobs.items()):
            lines.append(f"node,{name},{last_state(record.stats)},{job_state(name, book)}\n")
        for name, record in sorted(book.jobs.items()):
            lines.extend(f"link,{parent},{name}\n" for parent in record.job.parents or ())
        return PlainTextResponse("".join(lines))

    async def leader(request: Request) -> Response:
        leader_id = node.election.leader_id if node.election is not None else None
        return JSONResponse({"leader": leader_id or ""})

    routes = []
    for prefix in ("/v1/scheduler", "/scheduler"):
        routes += [
            Route(f"{prefix}/iso8601", leader_only(node, iso8601), methods=["POST", "PUT"]),
            Route(f"{prefix}/dependency", leader_only(node, dependency), methods=["POST", "PUT"]),
            Route(f"{prefix}/jobs", leader_only(node, jobs), methods=["GET"]),
            Route(f"{prefix}/jobs/search", leader_only(node, search), methods=["GET"]),
            Route(f"{prefix}/job/{{name:path}}", leader_only(node, run_now), methods=["PUT"]),
            Route(f"{prefix}/job/{{name:path}}", leader_only(node, delete_job), methods=["DELETE"]),
            Route(
                f"{prefix}/task/kill/{{name:path}}",
                leader_only(node, kill_tasks),
                methods=["DELETE"],
            ),
            Route(f"{prefix}/graph/csv", leader_only(node, graph_csv), methods=["GET"]),
            Route(f"{prefix}/leader", leader, methods=["GET"]),
        ]
    return Starlette(routes=routes)


def new_record(book: Book, job: Job, now: datetime) -> JobRecord:
    """A new or replaced job: counts kept; a schedule starts at its first slot not yet
    past (a start in the past does not count the slots before the job existed as missed)."""
    old = book.jobs.get(job.name)
    stats = old.stats if old is not None else JobStats()
    cursor = 0
    schedule = job.parsed_schedule()
    if schedule is not None:
        if old is not None and old.job.schedule == job.schedule:
            cursor = old.cursor
        else:
            cursor = schedule.first_index_after(
                datetime.fromtimestamp(now.timestamp() - job.epsilon_seconds, UTC)
            )
    return JobRecord(job=job, stats=stats, cursor=cursor)


def last_state(stats: JobStats) -> str:
    """Chronos's ``fresh``, ``success`` or ``failure`` (the later of the two stamps)."""
    if not stats.last_success and not stats.last_error:
        return "fresh"
    if not stats.last_error:
        return "success"
    if not stats.last_success:
        return "failure"
    return "success" if stats.last_success > stats.last_error else "failure"
