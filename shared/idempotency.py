"""Idempotent commands: a POST with an `Idempotency-Key` header is applied once, whatever the retries.

Follows the IETF httpapi draft "The Idempotency-Key HTTP Header Field". The key row is written
first, in one transaction that the whole request then runs in (see `JoiningPool`): the command's
events, their outbox rows and the stored answer commit together, and only then is the answer
sent. So a process that dies before the commit recorded nothing, and one that dies after it has
the answer on file for the retry.

- same caller, same key, same request (method, path, query, canonical JSON body): the first
  answer again, with `Idempotent-Replayed: true`; nothing is recorded;
- same key, another request: 422 `idempotency_key_reused` naming the header;
- a duplicate that arrives while the first is still running waits for it (the unique index
  holds it), up to `ZM_IDEMPOTENCY_WAIT_S`, then answers 409 `idempotency_key_in_use`;
- a malformed key: 400 `idempotency_key_invalid`.

Only successful answers (below 400) are kept. A refused command recorded nothing, so its key is
not spent: a retry is decided again (a 409 concurrency conflict retried may then succeed).
Keys are kept `ZM_IDEMPOTENCY_RETENTION_HOURS` and then purged; after that a key is new again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from shared.auth import AuthError, KeysUnavailable, verifier
from shared.crypto import load_master_key
from shared.db import acquired, database_away, joined, transactions_only
from shared.http import MAX_BODY_BYTES, problem_response, too_large_response, unavailable_response
from shared.logging import get_logger, outages
from shared.problems import language_of
from shared.settings import CryptoSettings, IdempotencySettings

log = get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# An sf-string of printable ASCII (RFC 8941), e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324"; the
# bare form without quotes is accepted too. Up to 255 characters.
_KEY = re.compile(r'^"?([\x20-\x21\x23-\x5b\x5d-\x7e]{1,255})"?$')

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INSERT = (
    "INSERT INTO idempotency_keys (principal, key, fingerprint, method, path)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true"
)
_STORED = "SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE principal = $1 AND key = $2"
_ANSWER = "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE principal = $1 AND key = $2"


def parse_key(raw: str) -> str | None:
    """The key of a header value, or None when it is not a valid key."""
    match = _KEY.match(raw.strip())
    if match is None or raw.strip().startswith('"') != raw.strip().endswith('"'):
        return None
    key = match.group(1)
    return key if key.strip() else None


def fingerprint(method: str, path: str, query: str, body: bytes, key: bytes = b"") -> str:
    """HMAC-SHA-256 over the request; a JSON body counts by its content, not its spacing or key
    order. Keyed (by the deployment's master key) because a body may name a reporter: a plain
    hash stored beside the key would let anyone reading the table confirm a guessed identity."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:
        canonical = body
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _caller(scope: Scope) -> str | None:
    """The user id of a valid bearer token; without one the route refuses the request anyway."""
    authorization = _header(scope, b"authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        # The route checks the same token again: the verifier's cache answers that second time.
        return (await verifier().verify(token.strip())).user_id
    except (AuthError, KeysUnavailable):
        return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


NOT_KEPT = ("/auth/",)
"""Paths whose answers the idempotency table never keeps (a login answers a bearer token)."""


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


class _Captured:
    """The response of the inner app, held back until the transaction has committed."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = False

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            self.body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.complete = True

    async def forward(self, send: Send, *, replayed: bool = False) -> None:
        headers = [*self.headers, *([(REPLAYED_HEADER.lower().encode(), b"true")] if replayed else [])]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(self.body)})


class IdempotencyMiddleware:
    """ASGI middleware applying keyed POST commands once (see the module docstring)."""

    def __init__(self, app: ASGIApp, pool: asyncpg.Pool, settings: IdempotencySettings | None = None) -> None:
        self.app = app
        self.pool = pool
        self.settings = settings or IdempotencySettings()
        self.fingerprint_key = hashlib.sha256(b"zm idempotency " + load_master_key(CryptoSettings())).digest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        # A login is no command to replay: its answer is a fresh token, never to be kept.
        if raw is None or scope["method"] != "POST" or scope["path"].startswith(NOT_KEPT):
            await self.app(scope, receive, send)
            return
        key = parse_key(raw)
        if key is None:
            await self._problem(
                scope,
                receive,
                send,
                400,
                "idempotency_key_invalid",
                f"{HEADER} must be a string of 1 to 255 printable ASCII characters",
                f"{HEADER} 须为 1 至 255 个可打印 ASCII 字符",
            )
            return
        caller = await _caller(scope)
        if caller is None:
            await self.app(scope, receive, send)  # answered 401 by the route, nothing recorded
            return
        try:
            body = await _read_body(receive)
        except _Disconnected:
            return
        except HTTPException:  # the body limit, met while streaming a chunked body
            await too_large_response(MAX_BODY_BYTES, language_of(scope))(scope, receive, send)
            return
        request = (scope["method"], scope["path"], bytes(scope.get("query_string", b"")).decode("latin-1"))
        print_ = fingerprint(*request, body, key=self.fingerprint_key)
        try:
            await self._once(scope, receive, send, caller, key, print_, body)
        except Exception as exc:
            # The key's own statements (acquire, insert, answer, commit) met a database that is
            # away: 503, and the client's retry with the same key finds whatever did commit.
            if not database_away(exc):
                raise
            outages.down("database", exc)
            await unavailable_response("database", language_of(scope))(scope, receive, send)

    async def _once(
        self, scope: Scope, receive: Receive, send: Send, caller: str, key: str, print_: str, body: bytes
    ) -> None:
        sent = False

        async def replay_body() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        captured = _Captured()
        async with acquired(self.pool) as conn:
            transaction = conn.transaction()
            await transaction.start()
            committed = False
            try:
                try:
                    # Blocks while a request with the same key runs, and then finds its row.
                    first = await conn.fetchval(
                        _INSERT,
                        caller,
                        key,
                        print_,
                        scope["method"],
                        scope["path"],
                        timeout=self.settings.wait_s,
                    )
                except TimeoutError:
                    await self._problem(
                        scope,
                        receive,
                        send,
                        409,
                        "idempotency_key_in_use",
                        f"a request with this {HEADER} is still being processed; retry later",
                        f"使用此 {HEADER} 的请求仍在处理中，请稍后重试",
                    )
                    return
                if not first:
                    stored = await conn.fetchrow(_STORED, caller, key)
                    await self._replay(scope, receive, send, stored, print_)
                    return
                with joined(self.pool, conn):
                    await self.app(scope, replay_body, captured.send)
                if captured.complete and captured.status < 400:
                    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in captured.headers]
                    await conn.execute(
                        _ANSWER, caller, key, captured.status, headers, b"".join(captured.body)
                    )
                    await transaction.commit()
                    committed = True
                    if self.settings.fault_exit_after_commit:
                        _exit_after_commit(key)
            finally:
                if not committed:  # a refusal, a replay or a failure: nothing of it stays
                    with contextlib.suppress(Exception):
                        await transaction.rollback()
            transactions_only(conn)
        await captured.forward(send)

    async def _replay(
        self, scope: Scope, receive: Receive, send: Send, stored: asyncpg.Record | None, print_: str
    ) -> None:
        if stored is None or stored["status"] is None:  # purged or abandoned meanwhile
            await self._problem(
                scope,
                receive,
                send,
                409,
                "idempotency_key_in_use",
                f"the request with this {HEADER} did not finish; retry",
                f"使用此 {HEADER} 的请求没有完成，请重试",
            )
            return
        if stored["fingerprint"] != print_:
            await self._problem(
                scope,
                receive,
                send,
                422,
                "idempotency_key_reused",
                f"this {HEADER} was used for another request; use a new key for a new command",
                f"此 {HEADER} 已用于另一个请求；新的命令请使用新的键",
            )
            return
        log.info("idempotency.replayed", status=stored["status"])
        replay = _Captured()
        replay.status = stored["status"]
        replay.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored["headers"]]
        replay.body = [bytes(stored["body"])]
        await replay.forward(send, replayed=True)

    async def _problem(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str, detail_zh: str
    ) -> None:
        log.info("request.rejected", code=code, field=HEADER, status=status)
        problem = problem_response(
            status, code, detail, HEADER, detail_zh=detail_zh, language=language_of(scope)
        )
        await problem(scope, receive, send)


def _exit_after_commit(key: str) -> None:
    """Fault injection (ZM_IDEMPOTENCY_FAULT_EXIT_AFTER_COMMIT): die like a SIGKILL would, after
    the commit and before the answer, so tests can show the retry gets the stored answer."""
    log.warning("idempotency.fault_exit_after_commit", key=key)
    sys.stderr.flush()
    os._exit(70)


async def purge(pool: asyncpg.Pool, retention_hours: float) -> int:
    """Forget keys older than the retention; returns how many went."""
    done = await pool.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
        retention_hours * 3600.0,
    )
    return int(done.split()[-1])


async def purge_periodically(
    pool: asyncpg.Pool, stop: asyncio.Event, settings: IdempotencySettings | None = None
) -> None:
    settings = settings or IdempotencySettings()
    while not stop.is_set():
        try:
            purged = await purge(pool, settings.retention_hours)
            if purged:
                log.info("idempotency.purged", keys=purged, retention_hours=settings.retention_hours)
        except Exception as exc:  # the next round tries again; old keys only take space meanwhile
            log.warning("idempotency.purge_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.purge_interval_s)


_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "IETF httpapi Idempotency-Key: a unique string per command (e.g. a UUID, as an "
    'sf-string: "…"). A retry with the same key and the same body gets the first answer (with '
    f"`{REPLAYED_HEADER}: true`) and records nothing; the same key with another body answers 422. "
    "Keys are kept for the retention period (ZM_IDEMPOTENCY_RETENTION_HOURS).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 257},
}


def install(app: FastAPI, pool: asyncpg.Pool, settings: IdempotencySettings | None = None) -> None:
    """Apply the app's keyed POSTs once, and document the header on every POST operation.

    The middleware sits inside the request-context middleware (so its log lines carry the
    correlation id) and outside the exception handlers (so it sees problems as responses).
    """
    if app.middleware_stack is not None:
        raise RuntimeError("install idempotency before the app serves its first request")
    app.user_middleware.append(Middleware(IdempotencyMiddleware, pool=pool, settings=settings))
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            for item in schema.get("paths", {}).values():
                operation = item.get("post")
                if operation is not None:
                    operation.setdefault("parameters", []).append(dict(_PARAMETER))
        return app.openapi_schema or original()

    app.openapi = openapi  # type: ignore[method-assign]
