"""The console's pages: server-rendered HTML (Jinja2), plain forms that work with the keyboard and
without scripts, one script (ECharts, vendored from npm) for the dashboards' charts."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware

from console import labels
from console.actions import (
    VISITORS,
    Case,
    Form,
    NotASegment,
    forms_for,
    identifier,
    parse,
    register_form,
    seg,
)
from console.backend import AWAY, CALLS, Backend, Problem
from console.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, Sessions, same
from console.settings import ConsoleSettings
from console.statistics import FIGURES, statistics_rows, xlsx_of
from console.tasks import TaskList
from services.archive.api import READ_NOTICES, READ_STATISTICS
from shared import metrics
from shared.dates import quarter_of
from shared.envelope import CITY, JURISDICTIONS
from shared.events.common import ROLE_NAMES
from shared.settings import SERVICES, ServiceSettings

HERE = Path(__file__).parent
VENDOR = HERE / "static" / "vendor"
SECURITY_HEADERS = {
    # Everything from the console itself: no script, style, font or frame from anywhere else.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}


class NotLoggedIn(Exception):
    pass


class CsrfRefused(Exception):
    pass


class Missing(Exception):
    """A page of something that is not there or not this user's: one 404 page for both."""


def today() -> date:
    return date.today()


def build_console(settings: ConsoleSettings, services: ServiceSettings) -> FastAPI:
    backend = Backend(settings.service_urls(services), settings.backend_timeout_s)
    sessions = Sessions(settings.idle_minutes * 60)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await backend.close()

    app = FastAPI(
        title="zhengming console (工作台)", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.backend = backend
    app.state.sessions = sessions
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(
        labels=labels,
        ROLE_NAMES=ROLE_NAMES,
        JURISDICTIONS=JURISDICTIONS,
        STATISTICS_READERS=READ_STATISTICS,
        NOTICE_READERS=READ_NOTICES,
    )
    templates.env.filters["cn_date"] = labels.cn_date
    app.mount("/static", StaticFiles(directory=HERE / "static", check_dir=False), name="static")

    class Headers(BaseHTTPMiddleware):
        async def dispatch(
            self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            counter = [0]
            token, away = CALLS.set(counter), AWAY.set(set())
            try:
                response = await call_next(request)
            finally:
                CALLS.reset(token)
                AWAY.reset(away)
            # What the page cost the services, for the load test (a count, no data).
            response.headers["X-Zm-Backend-Calls"] = str(counter[0])
            for k, v in SECURITY_HEADERS.items():
                response.headers.setdefault(k, v)
            if not request.url.path.startswith("/static"):
                response.headers.setdefault("Cache-Control", "no-store")
            return response

    app.add_middleware(Headers)
    metrics.install_http(app, "console")

    def page(
        request: Request, name: str, session: Session | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        away = sorted(AWAY.get() or ())
        return templates.TemplateResponse(
            request, name, {"session": session, "today": today(), "away": away, **context}, status_code=status
        )

    def current(request: Request) -> Session:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise NotLoggedIn
        return session

    async def checked_form(request: Request, session: Session) -> dict[str, list[str]]:
        """The posted form, refused unless it carries the session's CSRF token."""
        form = await request.form()
        data: dict[str, list[str]] = {}
        for k, v in form.multi_items():
            data.setdefault(k, []).append(v if isinstance(v, str) else "")
        if not same((data.get("csrf") or [""])[0], session.csrf):
            raise CsrfRefused
        return data

    def cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            path="/",
        )

    @app.exception_handler(NotLoggedIn)
    async def _login_first(request: Request, _: NotLoggedIn) -> Response:
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        return page(
            request,
            "error.html",
            session,
            403,
            title="请求被拒绝",
            message="表单已失效或来源不明（缺少有效的防伪令牌），请返回页面重新提交。",
        )

    @app.exception_handler(NotASegment)
    @app.exception_handler(Missing)
    async def _missing(request: Request, _: Exception) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        return page(
            request, "error.html", session, 404, title="未找到", message="没有这个页面，或您无权查看。"
        )

    @app.exception_handler(Problem)
    async def _problem(request: Request, p: Problem) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if p.status == 401:
            sessions.close(request.cookies.get(SESSION_COOKIE))
            return RedirectResponse("/login?expired=1", status_code=303)
        if p.status in (403, 404):
            return page(
                request, "error.html", session, 404, title="未找到", message="没有这个页面，或您无权查看。"
            )
        status = 503 if p.status >= 500 else 400
        return page(request, "error.html", session, status, title="无法完成", message=p.detail_zh)

    @app.exception_handler(404)
    async def _not_found(request: Request, _: Exception) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        return page(
            request, "error.html", session, 404, title="未找到", message="没有这个页面，或您无权查看。"
        )

    # -- login

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/", expired: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        response = page(
            request,
            "login.html",
            None,
            next=_local(next),
            csrf=token,
            expired=bool(expired),
            error=None,
            values={},
        )
        cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form()
        given = str(form.get("csrf") or "")
        if not same(given, request.cookies.get(LOGIN_CSRF_COOKIE)):
            raise CsrfRefused
        user_id, password = str(form.get("user_id") or "").strip(), str(form.get("password") or "")
        role = str(form.get("role") or "") or None
        target = _local(str(form.get("next") or "/"))
        errors: dict[str, str] = {}
        if not user_id:
            errors["user_id"] = "请填写用户名"
        if not password:
            errors["password"] = "请填写密码"
        if not errors:
            try:
                issued = await backend.login(settings.login_service, user_id, password, role)
            except Problem as p:
                if p.status >= 500:
                    errors["form"] = p.detail_zh
                else:
                    errors["form"] = p.field_messages().get("role") or p.detail_zh
            else:
                sessions.close(request.cookies.get(SESSION_COOKIE))  # no session outlives a new login
                session_id, _ = sessions.open(issued)
                done = RedirectResponse(target, status_code=303)
                cookie(done, SESSION_COOKIE, session_id)
                done.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
                return done
        response = page(
            request,
            "login.html",
            None,
            400,
            next=target,
            csrf=given,
            expired=False,
            errors=errors,
            values={"user_id": user_id},
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = current(request)
        await checked_form(request, session)
        sessions.close(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- 待办

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        session = current(request)
        tasks = await TaskList(backend, session, today()).collect()
        return page(request, "tasks.html", session, tasks=tasks)

    # -- search and the person's file

    @app.get("/search", response_class=HTMLResponse)
    async def search(request: Request, q: str = "") -> Response:
        session = current(request)
        q = q.strip()[:100]
        hits: list[dict[str, Any]] = []
        if q:
            direct = await _case(backend, session, q)
            if direct.jurisdiction is not None:
                return RedirectResponse(f"/cases/{seg(q)}", status_code=303)
            hits = await _search(backend, session, q)
        return page(request, "search.html", session, q=q, hits=hits)

    @app.get("/files/{subject_id}", response_class=HTMLResponse)
    async def person_file(request: Request, subject_id: str) -> Response:
        session = current(request)
        found = await backend.get_or_none(session.token, "archive", f"/files/{seg(subject_id)}")
        if not found:
            raise Missing
        return page(request, "file.html", session, file=found)

    # -- the case page and its actions

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case_page(request: Request, case_id: str) -> Response:
        session = current(request)
        return await _render_case(request, session, case_id, done=session.take_done())

    async def _render_case(
        request: Request,
        session: Session,
        case_id: str,
        *,
        failed: Form | None = None,
        errors: dict[str, str] | None = None,
        message: str | None = None,
        done: str | None = None,
        status: int = 200,
    ) -> Response:
        # The case's views and its timeline are read at once (the timeline is empty where the
        # services show nothing of the case to this user, and then the page is a 404 anyway).
        case, timeline = await asyncio.gather(
            _case(backend, session, case_id), _timeline(backend, session, case_id)
        )
        if case.jurisdiction is None:
            if AWAY.get():
                raise Problem(503, "service_unavailable", "相关系统暂时无法访问，请稍后再试")
            raise Missing
        forms = forms_for(
            case, session.role, session.user_id, city_head=CITY in session.jurisdictions, today=today()
        )
        if failed is not None:
            forms = [failed if f.key == failed.key else f for f in forms]
            if all(f.key != failed.key for f in forms):
                forms.insert(0, failed)
        return page(
            request,
            "case.html",
            session,
            status,
            case=case,
            forms=forms,
            timeline=timeline,
            failed=failed.key if failed else None,
            errors=errors or {},
            message=message,
            done=done,
            form_key=secrets.token_urlsafe(16),
        )

    @app.post("/cases/{case_id}/actions/{key}", response_class=HTMLResponse)
    async def act(request: Request, case_id: str, key: str) -> Response:
        session = current(request)
        data = await checked_form(request, session)
        case = await _case(backend, session, case_id)
        if case.jurisdiction is None:
            raise Missing
        forms = forms_for(
            case, session.role, session.user_id, city_head=CITY in session.jurisdictions, today=today()
        )
        form = next((f for f in forms if f.key == key), None)
        if form is None:
            return await _render_case(
                request,
                session,
                case_id,
                message="该操作当前不可办理（案件已进入下一环节，或您的角色无此权限）。",
                status=409,
            )
        return await _submit(session, form, data, functools.partial(_render_case, request, session, case_id))

    async def _submit(
        session: Session, form: Form, data: dict[str, list[str]], render: Callable[..., Awaitable[Response]]
    ) -> Response:
        """Send the form's command, or show the form again with the message beside each field."""
        body, errors = parse(form, data)
        form.values = {i.name: _submitted(i, data) for i in form.inputs}
        if errors:
            return await render(failed=form, errors=errors, message="请检查标出的栏目。", status=422)
        # The key was drawn when the page was shown: sending the same form twice applies it once.
        key = (data.get("idempotency_key") or [""])[0][:100] or secrets.token_urlsafe(16)
        try:
            answer = await backend.post(session.token, form.service, form.path, body, key)
        except Problem as p:
            if p.status == 401:
                raise
            status = 422 if p.status == 422 else 503 if p.status >= 500 else 409
            beside: dict[str, str] = {}
            elsewhere: list[str] = []
            for name, text in p.field_messages().items():
                placed = form.input_of(name)
                if placed is None:
                    elsewhere.append(text)
                else:
                    beside.setdefault(placed, text)
            first = "请检查标出的栏目。" if p.detail_zh in beside.values() else p.detail_zh
            message = "；".join(dict.fromkeys([first, *elsewhere]))
            return await render(failed=form, errors=beside, message=message, status=status)
        session.done = form.title
        return RedirectResponse(_target_of(form, answer), status_code=303)

    @app.get("/reports/new", response_class=HTMLResponse)
    async def new_report(request: Request) -> Response:
        session = current(request)
        if session.role != "letters_office":
            raise Missing
        form = register_form(session.places())
        form.values.setdefault("received_on", today().isoformat())
        return page(
            request,
            "register.html",
            session,
            form=form,
            errors={},
            message=None,
            form_key=secrets.token_urlsafe(16),
        )

    @app.post("/reports/new", response_class=HTMLResponse)
    async def register(request: Request) -> Response:
        session = current(request)
        if session.role != "letters_office":
            raise Missing
        data = await checked_form(request, session)
        form = register_form(session.places())

        async def render(
            *, failed: Form, errors: dict[str, str], message: str | None, status: int
        ) -> Response:
            return page(
                request,
                "register.html",
                session,
                status,
                form=failed,
                errors=errors,
                message=message,
                form_key=(data.get("idempotency_key") or [""])[0],
            )

        return await _submit(session, form, data, render)

    # -- documents

    # The two formats come before the page, whose {doc_id} would match "….pdf" too.
    @app.get("/cases/{case_id}/documents/{doc_id}.{fmt}")
    async def document_file(request: Request, case_id: str, doc_id: str, fmt: str) -> Response:
        session = current(request)
        if fmt not in ("pdf", "docx"):
            raise Missing
        found = await backend.raw(
            session.token,
            "clarification",
            f"/clarifications/{seg(case_id)}/documents/{seg(doc_id)}.{fmt}",
        )
        headers = {"Content-Disposition": found.headers.get("content-disposition", "attachment")}
        if fmt == "pdf" and request.query_params.get("inline"):
            headers["Content-Disposition"] = headers["Content-Disposition"].replace("attachment", "inline")
        return Response(found.content, media_type=found.headers.get("content-type"), headers=headers)

    @app.get("/cases/{case_id}/documents/{doc_id}", response_class=HTMLResponse)
    async def document_page(request: Request, case_id: str, doc_id: str) -> Response:
        session = current(request)
        matter = await backend.get_or_none(session.token, "clarification", f"/clarifications/{seg(case_id)}")
        doc = next((d for d in (matter or {}).get("documents") or [] if d["doc_id"] == doc_id), None)
        if doc is None:
            raise Missing
        text = await backend.text(
            session.token, "clarification", f"/clarifications/{seg(case_id)}/documents/{seg(doc_id)}"
        )
        return page(request, "document.html", session, case_id=case_id, doc=doc, text=text)

    # -- dashboards

    @app.get("/overdue", response_class=HTMLResponse)
    async def overdue(request: Request) -> Response:
        session = current(request)
        rows = await _overdue(backend, session, today())
        return page(request, "overdue.html", session, rows=rows)

    @app.get("/statistics", response_class=HTMLResponse)
    async def statistics(request: Request, quarter: str = "") -> Response:
        session = current(request)
        quarter = _quarter(session, quarter)
        report = await _statistics(backend, session, quarter)
        rows = statistics_rows(report, session.jurisdictions)
        return page(
            request, "statistics.html", session, quarter=quarter, rows=rows, figures=FIGURES, report=report
        )

    @app.get("/statistics.{fmt}")
    async def statistics_export(request: Request, fmt: str, quarter: str = "") -> Response:
        session = current(request)
        if fmt not in ("csv", "xlsx"):
            raise Missing
        quarter = _quarter(session, quarter)
        rows = statistics_rows(await _statistics(backend, session, quarter), session.jurisdictions)
        header = ["辖区", *(label for _, label in FIGURES), "保护党员干部担当干事激情指数"]
        table = [[r["name"], *(r["figures"].get(k, 0) for k, _ in FIGURES), r["indicator"]] for r in rows]
        name = f"statistics-{quarter}.{fmt}"
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(table)
            # A BOM so that spreadsheet programs read the Chinese as UTF-8.
            return Response(
                "\ufeff" + out.getvalue(),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return Response(
            xlsx_of(f"{quarter} 澄清正名统计", header, table),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/notices", response_class=HTMLResponse)
    async def notices(request: Request) -> Response:
        session = current(request)
        if session.role not in READ_NOTICES:
            raise Missing
        found = await asyncio.gather(
            *(
                backend.get_or_none(session.token, "archive", "/notices", {"jurisdiction": j})
                for j in sorted(session.jurisdictions)
            )
        )
        rows = [n for part in found for n in (part or [])]
        return page(request, "notices.html", session, notices=rows)

    @app.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request) -> Response:
        session = current(request)
        if session.role != "auditor":
            raise Missing
        results = await asyncio.gather(
            *(backend.get_or_none(session.token, s, "/audit/verify") for s in SERVICES),
            return_exceptions=True,
        )
        checks = [
            (s, r if isinstance(r, dict) else {"error": str(r) if isinstance(r, Exception) else "无权查看"})
            for s, r in zip(SERVICES, results, strict=True)
        ]
        return page(request, "audit.html", session, checks=checks)

    @app.get("/operations", response_class=HTMLResponse)
    async def operations(request: Request) -> Response:
        session = current(request)
        if session.role != "operator":
            raise Missing
        ready, consumers = await asyncio.gather(
            asyncio.gather(*(_ready(backend, s) for s in SERVICES)),
            asyncio.gather(
                *(backend.get(session.token, s, "/ops/consumers") for s in SERVICES), return_exceptions=True
            ),
        )
        rows = []
        for service, states in zip(SERVICES, consumers, strict=True):
            if isinstance(states, BaseException) or not isinstance(states, list):
                detail = states.detail_zh if isinstance(states, Problem) else "服务没有给出消费者情况"
                rows.append({"service": service, "error": detail})
                continue
            rows += [{"service": service, **c} for c in states if isinstance(c, dict)]
        return page(
            request,
            "operations.html",
            session,
            services=list(zip(SERVICES, ready, strict=True)),
            consumers=rows,
        )

    return app


QUARTER = re.compile(r"^\d{4}Q[1-4]$")


def _quarter(session: Session, quarter: str) -> str:
    """The quarter asked for (this one by default); a page only for roles that read statistics."""
    if session.role not in READ_STATISTICS or (quarter and not QUARTER.match(quarter)):
        raise Missing
    return quarter or quarter_of(today())


def _local(target: str) -> str:
    """Only a path of this console is a place to go after login (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _submitted(i: Any, data: dict[str, list[str]]) -> Any:
    raw = data.get(i.name, [])
    if i.kind == "checkboxes":
        return raw
    if i.kind == "checkbox":
        return bool(raw and raw[0] in ("on", "true", "1"))
    return raw[0] if raw else ""


def _target_of(form: Form, answer: Any) -> str:
    """The case page the command leaves the user on (a registered report's own, once it has one)."""
    if form.key == "register" and isinstance(answer, dict) and answer.get("report_id"):
        return f"/cases/{seg(str(answer['report_id']))}"
    return f"/cases/{seg(form.case_id)}"


async def _case(backend: Backend, session: Session, case_id: str) -> Case:
    if not identifier(case_id):
        return Case(case_id)
    key = seg(case_id)
    report, verification, clarification = await backend.gather(
        backend.get_or_none(session.token, "intake", f"/reports/{key}"),
        backend.get_or_none(session.token, "review", f"/verifications/{key}"),
        backend.get_or_none(session.token, "clarification", f"/clarifications/{key}"),
    )
    visits: list[dict[str, Any]] = []
    person = (clarification or {}).get("person") or {}
    # The visits are read for those who record them (the file is theirs to read).
    if (
        session.role in VISITORS
        and person.get("subject_id")
        and (clarification or {}).get("state") in ("performed", "filed")
    ):
        found = await backend.get_or_none(
            session.token, "archive", f"/files/{seg(str(person['subject_id']))}"
        )
        visits = [v for v in (found or {}).get("visits") or [] if v.get("case_id") == case_id]
    return Case(case_id, report, verification, clarification, visits)


async def _timeline(backend: Backend, session: Session, case_id: str) -> list[dict[str, Any]]:
    """The case's events in all four services, in the order they were recorded."""
    if not identifier(case_id):
        return []
    found = await backend.gather(
        *(backend.get_or_none(session.token, s, f"/audit/cases/{seg(case_id)}/events") for s in SERVICES)
    )
    events = [e for part in found for e in (part or [])]
    return sorted(events, key=lambda e: (e.get("recorded_at") or "", e.get("global_position") or 0))


async def _search(backend: Backend, session: Session, q: str) -> list[dict[str, Any]]:
    """Cases whose reported persons or units match by name, unit or post, in the user's jurisdictions."""
    needle = q.lower()
    lists = await backend.gather(
        *(
            backend.get_or_none(session.token, service, path, {"jurisdiction": j})
            for j in sorted(session.jurisdictions)
            for service, path in (
                ("intake", "/reports"),
                ("review", "/verifications"),
                ("clarification", "/clarifications"),
            )
        )
    )
    hits: dict[str, dict[str, Any]] = {}
    for rows in lists:
        for row in rows or []:
            case_id = row.get("case_id") or row.get("report_id")
            subjects = [row["person"]] if row.get("person") else list(row.get("subjects") or [])
            for s in subjects:
                text = " ".join(str(s.get(k) or "") for k in ("name", "unit", "post")).lower()
                if needle in text or needle in str(case_id).lower():
                    hit = hits.setdefault(
                        str(case_id),
                        {"case_id": case_id, "jurisdiction": row["jurisdiction"], "subjects": {}},
                    )
                    hit["subjects"][s.get("subject_id") or s.get("name")] = s
                    if row.get("state"):
                        hit.setdefault("states", []).append(row["state"])
    return sorted(hits.values(), key=lambda h: str(h["case_id"]))


async def _overdue(backend: Backend, session: Session, as_of: date) -> list[dict[str, Any]]:
    """One list of what is late across intake, clarification and archive."""
    day = as_of.isoformat()
    rows: list[dict[str, Any]] = []
    for j in sorted(session.jurisdictions):
        intake, clarification, visits = await backend.gather(
            backend.get_or_none(session.token, "intake", "/overdue", {"jurisdiction": j, "as_of": day}),
            backend.get_or_none(
                session.token, "clarification", "/overdue", {"jurisdiction": j, "as_of": day}
            ),
            backend.get_or_none(
                session.token, "archive", "/visits/overdue", {"jurisdiction": j, "as_of": day}
            ),
        )
        for o in intake or []:
            rows.append(
                {
                    "service": "信访受理",
                    "case_id": o["report_id"],
                    "what": labels.intake_overdue(o["kind"]),
                    "due": o["due_on"],
                    "jurisdiction": j,
                }
            )
        for o in clarification or []:
            rows.append(
                {
                    "service": "澄清正名",
                    "case_id": o["case_id"],
                    "what": "批准后 5 个工作日内实施澄清",
                    "due": o.get("clarify_by") or o.get("due_on"),
                    "jurisdiction": j,
                }
            )
        for v in (visits or {}).get("visits", []):
            rows.append(
                {
                    "service": "备案回访",
                    "case_id": v["case_id"],
                    "what": "回访" + ("本人" if v["visit_with"] == "person" else "所在单位"),
                    "due": v["due_on"],
                    "jurisdiction": j,
                }
            )
    return sorted(rows, key=lambda r: str(r["due"]))


async def _statistics(backend: Backend, session: Session, quarter: str) -> dict[str, Any]:
    found = await backend.get_or_none(session.token, "archive", "/statistics", {"quarter": quarter})
    return found or {}


async def _ready(backend: Backend, service: str) -> dict[str, Any]:
    try:
        response = await backend.http.get(backend.urls[service] + "/readyz", timeout=5)
        return {"status": response.status_code, "body": response.json()}
    except Exception as exc:  # a service that does not answer is what this page is for
        return {"status": 0, "body": {"error": type(exc).__name__}}
