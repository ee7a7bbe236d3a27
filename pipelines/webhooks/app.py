"""The receiver: an ASGI app (starlette) that stores each valid, signed event before it answers.

`POST /webhooks/agentclara`: refused with 401 when a secret is set and the
signature is missing or wrong (nothing stored), 413 above MAX_BODY_BYTES,
400 with the reason when the body is not a valid event; else the event is
written to the inbox (a replay changes nothing) and only then answered
200. Nothing here calls a CRM or the source: the sensor and `webhook_sync`
do the rest, so a slow CRM never makes AgentClara's delivery time out.

`GET /healthz`: 200 while the state store answers, 503 otherwise.

One log line per request, without personal data: event id, type, outcome,
milliseconds (a refused request has no trusted event id, so none is logged).
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.state import StateStore
from pipelines.webhooks import inbox, signature
from pipelines.webhooks.events import InvalidEvent, parse_event

PATH = "/webhooks/agentclara"
MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: far above a conversation with its thread, far below a memory problem

log = logging.getLogger("pipelines.webhooks")


class BodyTooLarge(Exception):
    """The body passed MAX_BODY_BYTES before it ended."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, read chunk by chunk and refused as soon as it passes `limit` (never held whole)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def build_app(store: StateStore, *, secret: str | None) -> Starlette:
    """The receiver over `store`; `secret` None accepts unsigned events (logged once at start)."""

    async def receive(request: Request) -> JSONResponse:
        started = time.perf_counter()
        response, event_id, event_type, outcome = await _handle(request, store, secret)
        log.info("agentclara webhook %s %s %s %d %.1f ms", event_id or "-", event_type or "-", outcome,
                 response.status_code, (time.perf_counter() - started) * 1000)
        return response

    async def healthz(_request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(inbox.check, store.engine)
        except Exception as exc:  # noqa: BLE001 - any failure of the store is "unhealthy", said by type only
            return JSONResponse({"ok": False, "store": type(exc).__name__}, status_code=503)
        return JSONResponse({"ok": True, "store": "ok", "signatures": "checked" if secret else "not checked"})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if not secret:
            log.warning("SYNC_WEBHOOK_SECRET is not set: webhook signatures are not checked")
        yield
        store.dispose()  # SIGTERM: uvicorn finishes the requests in flight, then this runs
        log.info("receiver stopped, state store closed")

    return Starlette(routes=[Route(PATH, receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
                     lifespan=lifespan)


async def _handle(request: Request, store: StateStore,
                  secret: str | None) -> tuple[JSONResponse, str | None, str | None, str]:
    """(response, event id, event type, outcome word) for one delivery."""
    try:
        body = await read_body(request)
    except BodyTooLarge:
        return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes"), None, None, "too_large"
    if secret and not signature.verify(body, request.headers.get(signature.HEADER), secret):
        return _error(401, f"missing or invalid {signature.HEADER}"), None, None, "bad_signature"
    try:
        event = parse_event(body)
    except InvalidEvent as exc:
        return _error(400, exc.reason), None, None, f"invalid ({exc.reason})"
    stored = await run_in_threadpool(inbox.store_event, store.engine, event)
    outcome = ("stored" if event.known else "ignored") if stored else "duplicate"
    body_out = {"ok": True, "event_id": event.event_id, "outcome": outcome}
    return JSONResponse(body_out), event.event_id, event.event_type, outcome
