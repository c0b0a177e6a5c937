"""HTTP entrypoint pieces every service shares: problem responses (for the framework's own errors
too), authentication before the body is read, health."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.auth import AuthError, KeysUnavailable, Principal, verifier
from shared.db import DATABASE_AWAY, database_away
from shared.errors import (
    ConcurrencyError,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    OutOfRange,
    RuleViolation,
)
from shared.events.common import role_name as role_name_zh
from shared.logging import ASGIApp, RequestContextMiddleware, get_logger, outages
from shared.problems import CONTENT_LANGUAGE, Language, generic_chinese, language_of, title

log = get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body (the biggest command, a report with 100 allegations, is far smaller)."""

RETRY_AFTER_S = 5
"""What a 503 asks the caller to wait before trying again."""


class Unauthorized(Exception):
    """The HTTP edge's own refusal: no valid bearer token (401 problem+json)."""

    status = 401
    code = "unauthorized"

    def __init__(
        self,
        detail: str,
        *,
        detail_zh: str,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.detail_zh = detail_zh
        self.headers = headers or {"WWW-Authenticate": "Bearer"}
        if code is not None:
            self.code = code


STATUS_OF: dict[type[DomainError], int] = {RuleViolation: 422, NotFound: 404, Forbidden: 403, Conflict: 409}
"""The HTTP status that answers each kind of domain error."""


def status_of(error: DomainError) -> int:
    return next((status for kind, status in STATUS_OF.items() if isinstance(error, kind)), 422)


# Chinese wording of the validation errors a caller meets most; others get the generic one.
_ZH_BY_ERROR = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "文本过短",
    "string_too_long": "文本过长",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "string_pattern_mismatch": "格式不符",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "date_out_of_range": "日期须在 {earliest} 至 {latest} 之间",
    "calendar_year_unknown": "工作日日历尚无 {year} 年的节假日安排：请升级 chinesecalendar 或加载覆盖表",
    "text_control_character": "文本不得包含控制字符（换行和制表符除外）",
    "quarter_format": "季度格式应为 2023Q1",
    "quarter_out_of_range": "季度的年份须在 {earliest} 至 {latest} 之间",
    "int_parsing": "应为整数",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "bool_parsing": "应为布尔值",
    "json_invalid": "请求体不是有效的 JSON",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为数组",
    "string_type": "应为文本",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    *,
    detail_zh: str | None = None,
    language: Language = "zh",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An application/problem+json answer: code and field for programs; title and detail for
    people in the caller's language (Chinese unless Accept-Language prefers English), and the detail
    in both languages (detail_zh, detail_en) whatever the caller prefers."""
    chinese = detail_zh or generic_chinese(code, status)
    body: dict[str, Any] = {
        "type": f"urn:zhengming:problem:{code}",
        "title": title(code, status, language),
        "status": status,
        "code": code,
        "detail": chinese if language == "zh" else detail,
        "detail_zh": chinese,
        "detail_en": detail,
    }
    if field is not None:
        body["field"] = field
    if errors is not None:
        body["errors"] = errors
    headers = {**(headers or {}), "Content-Language": CONTENT_LANGUAGE[language]}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        # "body.subjects.0.name" names the field; the location kind (body, query, path) is kept
        # so a path parameter and a body field of one name stay apart.
        zh = _ZH_BY_ERROR.get(e["type"], "输入无效")
        with contextlib.suppress(KeyError, IndexError, ValueError):
            zh = zh.format(**(e.get("ctx") or {}))
        out.append(
            {
                "field": ".".join(str(p) for p in e["loc"]),
                "message": e["msg"],
                "message_zh": zh,
                "type": e["type"],
            }
        )
    return out


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


_COMPONENTS_ZH = {
    "database": "数据库",
    "broker": "消息队列",
    "token keys (JWKS)": "令牌验证密钥（JWKS）",
    "token signing key": "令牌签名密钥",
}


def unavailable_response(component: str, language: Language = "zh") -> JSONResponse:
    return problem_response(
        503,
        "service_unavailable",
        f"the {component} is not answering; try again shortly",
        detail_zh=f"{_COMPONENTS_ZH.get(component, component)}暂时没有响应，请稍后重试",
        language=language,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def too_large_response(max_bytes: int, language: Language) -> JSONResponse:
    return problem_response(
        413,
        "payload_too_large",
        f"the body exceeds {max_bytes} bytes",
        "body",
        detail_zh=f"请求体超过 {max_bytes} 字节",
        language=language,
    )


def _framework_problem(request: Request, exc: StarletteHTTPException) -> tuple[str, str, str, dict[str, str]]:
    """Code, English and Chinese of the framework's own answers, and the headers they need."""
    headers = dict(exc.headers or {})
    status, path = exc.status_code, request.url.path
    if status == 404:
        return "route_not_found", f"no route {path}", f"没有这个地址：{path}", headers
    if status == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
        return (
            "method_not_allowed",
            f"{request.method} is not served here; allowed: {headers['Allow']}",
            f"此地址不支持 {request.method} 方法；可用的方法：{headers['Allow']}",
            headers,
        )
    if status == 400:
        return (
            "malformed_body",
            "the body could not be read (UTF-8 JSON expected)",
            "请求体无法读取（须为 UTF-8 编码的 JSON）",
            headers,
        )
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
        return "unauthorized", "a bearer token is required", "需要登录令牌（Bearer）", headers
    return f"http_{status}", str(exc.detail), f"请求无法处理（HTTP {status}）", headers


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        log.info("request.rejected", code=exc.code, status=exc.status)
        return problem_response(
            exc.status,
            exc.code,
            exc.detail,
            detail_zh=exc.detail_zh,
            language=language_of(request.scope),
            headers=exc.headers,
        )

    @app.exception_handler(KeysUnavailable)
    async def _no_keys(_: Request, exc: KeysUnavailable) -> JSONResponse:
        # The identity provider's key set cannot be fetched: nobody can be verified, but it is
        # not the caller's fault (the token may well be good).
        log.warning("auth.jwks_unavailable", error=str(exc))
        return unavailable_response("token keys (JWKS)")

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        status = status_of(exc)
        log.info("request.rejected", code=exc.code, field=exc.field, status=status)
        return problem_response(
            status,
            exc.code,
            exc.detail,
            exc.field,
            detail_zh=exc.detail_zh,
            language=language_of(request.scope),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        language = language_of(request.scope)
        errors = _validation_errors(exc)
        log.info("request.invalid", fields=[e["field"] for e in errors], types=[e["type"] for e in errors])
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                400,
                "malformed_body",
                "the body is not valid JSON",
                "body",
                errors,
                detail_zh="请求体不是有效的 JSON",
                language=language,
            )
        if not errors:
            return problem_response(
                422, "invalid_input", "invalid request", detail_zh="请求内容无效", language=language
            )
        first = errors[0]
        return problem_response(
            422,
            "invalid_input",
            f"{first['field']}: {first['message']}",
            first["field"],
            errors,
            detail_zh=f"{first['field']}：{first['message_zh']}",
            language=language,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _framework(request: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own answers (no route, wrong method, body too large or unreadable) are
        # problems like any other, never {"detail": ...}.
        language = language_of(request.scope)
        if exc.status_code == 413:
            log.info("request.rejected", code="payload_too_large", status=413)
            return too_large_response(MAX_BODY_BYTES, language)
        code, detail, detail_zh, headers = _framework_problem(request, exc)
        log.info("request.rejected", code=code, status=exc.status_code)
        return problem_response(
            exc.status_code,
            code,
            detail,
            detail_zh=detail_zh,
            language=language,
            headers=headers or None,
        )

    @app.exception_handler(ConcurrencyError)
    async def _conflict(request: Request, exc: ConcurrencyError) -> JSONResponse:
        return problem_response(
            409,
            exc.code,
            "the case changed meanwhile; reload and try again",
            detail_zh="案件已被他人修改，请刷新后重试",
            language=language_of(request.scope),
        )

    @app.exception_handler(OutOfRange)
    async def _out_of_range(request: Request, exc: OutOfRange) -> JSONResponse:
        log.info("request.rejected", code=exc.code, field=exc.field, status=422)
        return problem_response(
            422, exc.code, str(exc), exc.field, detail_zh=exc.detail_zh, language=language_of(request.scope)
        )

    async def _database(request: Request, exc: Exception) -> Response:
        if not database_away(exc):
            return await _unexpected(request, exc)
        outages.down("database", exc)
        return unavailable_response("database", language_of(request.scope))

    for kind in (*DATABASE_AWAY, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(kind, _database)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("request.failed", error=type(exc).__name__, exc_info=exc)
    return problem_response(
        500,
        "internal_error",
        "internal error; see the service log",
        detail_zh="内部错误，请查看服务日志",
        language=language_of(request.scope),
    )


class BodyLimitMiddleware:
    """Bodies over MAX_BODY_BYTES are refused with 413 problem+json: at once when Content-Length
    says so, or when the streamed bytes pass the limit (Starlette's own limiter answers text)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = too_large_response(self.max_bytes, language_of(scope))
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI passes its own HTTPException on from the body read.
                    raise FastAPIHTTPException(413)
            return message

        await self.app(scope, counted, send)


class LastResortMiddleware:
    """A bug answers 500 problem+json, logged once (Starlette's own last resort logs it, then
    re-raises it to the server, which logs the traceback a second time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            response = await _unexpected(Request(scope), exc)
            await response(scope, receive, send)


_bearer = HTTPBearer(auto_error=False)
_PRINCIPAL = "zm_principal"


async def authenticate(request: Request) -> Principal:
    """The caller of a request from its bearer token (once per request; 401 without a good one,
    503 when the JWKS the token should be checked against cannot be fetched)."""
    known = request.scope.get(_PRINCIPAL)
    if isinstance(known, Principal):
        return known
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required", detail_zh="需要登录令牌（Bearer）")
    try:
        principal = await verifier().verify(token.strip())
    except AuthError as exc:
        raise Unauthorized(
            f"invalid token: {exc}",
            detail_zh=f"登录令牌无效：{exc.detail_zh}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
    request.scope[_PRINCIPAL] = principal
    structlog.contextvars.bind_contextvars(user_id=principal.user_id, role=principal.role)
    return principal


async def current_principal(
    request: Request,
    # Declared for the OpenAPI security scheme; the token itself is read by `authenticate`.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authenticate(request)


def _needs_principal(dependant: Dependant) -> bool:
    return any(d.call is current_principal or _needs_principal(d) for d in dependant.dependencies)


class AuthFirstRoute(APIRoute):
    """A route that checks the token before it reads the body: FastAPI validates the body before
    it runs dependencies, so an anonymous caller would learn the body's rules (422) before being
    told to authenticate (401)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not _needs_principal(self.dependant):
            return handler

        async def authenticated_first(request: Request) -> Response:
            await authenticate(request)
            return await handler(request)

        return authenticated_first


def role_name(role: str) -> str:
    """A role as messages name it: 信访室（letters_office）."""
    return f"{role_name_zh(role)}（{role}）"


ROLES_ADMITTED: dict[Callable[..., Any], tuple[str, ...]] = {}
"""The roles each `require` check admits (the OpenAPI document's `x-roles` reads them here)."""


def require(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency: the caller must hold one of `roles`."""

    # Async, as every dependency of the request path: a plain function would be run in the
    # thread pool, a hop to another thread and back on every request for a comparison.
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                f"role {principal.role} may not do this; needs one of {', '.join(roles)}",
                detail_zh=f"{role_name(principal.role)}无权进行此操作，"
                f"须为：{'、'.join(map(role_name, roles))}",
                code="role_forbidden",
            )
        return principal

    ROLES_ADMITTED[check] = roles
    return check


def check_jurisdiction(principal: Principal, jurisdiction: str, *, field: str = "jurisdiction") -> None:
    """Commands naming another jurisdiction are refused (403)."""
    if not principal.sees(jurisdiction):
        raise Forbidden(
            f"no access to jurisdiction {jurisdiction}",
            detail_zh=f"无权访问辖区 {jurisdiction}",
            field=field,
            code="jurisdiction_forbidden",
        )


@dataclass(frozen=True)
class CommandContext:
    """Who issues a command and which conversation it belongs to."""

    principal: Principal
    correlation_id: uuid.UUID
    authorization: str | None = dataclass_field(default=None, repr=False)
    """The request's Authorization header, for a call the command makes on the caller's behalf
    (e.g. clarification asking intake); never logged."""


def command_context(principal: Principal, request: Request) -> CommandContext:
    bound = structlog.contextvars.get_contextvars().get("correlation_id")
    try:
        correlation = uuid.UUID(str(bound or request.headers.get("x-correlation-id")))
    except ValueError:
        correlation = uuid.uuid4()
    return CommandContext(principal, correlation, request.headers.get("authorization"))


def acting(*roles: str) -> Callable[[Request, Principal], Awaitable[CommandContext]]:
    """Dependency: the context of a command by a caller holding one of `roles`."""

    # A default, not an annotation: the annotations of this module are strings that FastAPI
    # resolves in its globals, where the local `require(...)` is not.
    async def context(request: Request, principal: Principal = Depends(require(*roles))) -> CommandContext:  # noqa: B008
        return command_context(principal, request)

    return context


PROBLEMS_DOC = """

Refusals are `application/problem+json`: `type`, `title`, `status`, `code` (for programs), `field`
(the input concerned), `detail`, `detail_zh`, `detail_en` and, for invalid input, `errors` (each
with `field`, `message`, `message_zh`, `type`). `title` and `detail` are Chinese (zh-CN) unless
`Accept-Language` ranks English above Chinese; `detail_zh` and `detail_en` are always both given;
`Content-Language` names the language of `title` and `detail`.
拒绝的请求以 problem+json 答复：`title` 与 `detail` 默认为中文，`Accept-Language` 优先英文时为英文；
`detail_zh`（中文）和 `detail_en`（英文）始终同时提供，`code` 不随语言变化。"""


def create_app(service: str, *, title: str, description: str, version: str = "1.0.0") -> FastAPI:
    """A FastAPI app with problem handlers and request logging context; health routes are
    added by the runtime that knows the database and broker."""
    app = FastAPI(title=title, description=description + PROBLEMS_DOC, version=version)
    app.router.route_class = AuthFirstRoute
    install_problem_handlers(app)
    app.add_middleware(LastResortMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.state.service = service
    return app
