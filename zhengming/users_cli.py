"""`zhengming users ...`: the user directory (add, list, disable, enable, grant, password, seed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Annotated, TypeVar

import asyncpg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from shared import settings
from shared.directory import CadreAuthority, Directory, Officer
from shared.envelope import CITY, JURISDICTIONS
from shared.errors import Conflict, DomainError
from shared.roles import OFFICER_ROLES

users_app = typer.Typer(help="The user directory: named officers who log in.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

T = TypeVar("T")

DEMO_OFFICES: dict[str, str] = {
    "letters_office": "信访室",
    "handling_department": "第一纪检监察室",
    "case_trial": "案件审理室",
    "case_management": "案件监督管理室",
    "head": "主要负责人",
    "organisation_department": "干部监督科",
    "auditor": "纪检监察干部监督室",
    "operator": "信息技术保障室",
}
"""The office (部门) of each role's demo user."""


def demo_officers() -> list[Officer]:
    """One user per role and jurisdiction, with the user ids the demo's tokens carry
    (`<role>-<code>`); the city's users are granted the nine counties too and manage city cadres."""
    officers = []
    for code, place in JURISDICTIONS.items():
        from faker import Faker  # local tooling (the `local` extra), not the services'

        fake = Faker("zh_CN")
        fake.seed_instance(int(code))
        city = code == CITY
        for role in OFFICER_ROLES:
            organisation = role == "organisation_department"
            officers.append(
                Officer(
                    user_id=f"{role}-{code}",
                    name=fake.unique.name(),
                    roles=[role],
                    unit=f"中共{place}委组织部" if organisation else f"{place}纪委监委",
                    office=DEMO_OFFICES[role],
                    cadre_authority="city" if city else "county",
                    # The city's officers read every county; its head approves only for the city
                    # (a county-managed cadre's clarification is its county head's to approve).
                    jurisdictions=sorted(JURISDICTIONS) if city and role != "head" else [code],
                )
            )
    return officers


async def seed_officers(password: str, user_ids: Collection[str] | None = None) -> dict[str, str]:
    """The demo users (those of `user_ids`, or all), each with `password` (set anew on a user that
    exists): for a demo or a test whose people log in. Returns user id -> name."""
    officers = [o for o in demo_officers() if user_ids is None or o.user_id in user_ids]
    directory = Directory.configured()
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await directory.migrate(conn)
        for officer in officers:
            try:
                await directory.add(conn, officer, password)
            except Conflict:
                await directory.set_password(conn, officer.user_id, password)
    finally:
        await conn.close()
    return {o.user_id: o.name for o in officers}


def _run(work: Callable[[asyncpg.Connection, Directory], Awaitable[T]]) -> T:
    """Run `work` on a connection to the directory (migrated first); domain refusals exit 1."""

    async def run() -> T:
        conn = await asyncpg.connect(settings.postgres().dsn())
        try:
            directory = Directory.configured()
            await directory.migrate(conn)
            return await work(conn, directory)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        err.print(f"{exc.code}: {exc.detail}", markup=False)
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"PostgreSQL does not answer ({exc}); start it with `zhengming up --infra-only`")
        raise typer.Exit(1) from exc


def _show(officers: list[Officer]) -> None:
    table = Table("user id", "姓名", "roles", "unit", "office", "管理权限", "jurisdictions", "enabled")
    for o in officers:
        table.add_row(
            o.user_id,
            o.name,
            ", ".join(o.roles),
            o.unit,
            o.office,
            o.cadre_authority,
            ", ".join(o.jurisdictions),
            "yes" if o.enabled else "no",
        )
    out.print(table)


Password = Annotated[
    str,
    typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True, envvar="ZM_USER_PASSWORD", help="the password"
    ),
]


@users_app.command()
def add(
    user_id: Annotated[str, typer.Argument(help="login name, e.g. wang.fang")],
    name: Annotated[str, typer.Option(help="姓名")],
    role: Annotated[
        list[str], typer.Option(help=f"role (repeat; the first is the default): {', '.join(OFFICER_ROLES)}")
    ],
    unit: Annotated[str, typer.Option(help="单位, e.g. 缙云县纪委监委")],
    office: Annotated[str, typer.Option(help="部门, e.g. 信访室, 案件审理室, 第三纪检监察室, 主要负责人")],
    jurisdiction: Annotated[list[str], typer.Option(help="granted jurisdiction (repeat)")],
    password: Password,
    authority: Annotated[CadreAuthority, typer.Option(help="管理权限: city or county")] = "county",
) -> None:
    """Add a user (the password is hashed with argon2id)."""
    try:
        officer = Officer.model_validate(
            {
                "user_id": user_id,
                "name": name,
                "roles": role,
                "unit": unit,
                "office": office,
                "cadre_authority": authority,
                "jurisdictions": jurisdiction,
            }
        )
    except ValidationError as exc:
        for e in exc.errors():
            err.print(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}", markup=False)
        raise typer.Exit(2) from exc
    _show([_run(lambda conn, d: d.add(conn, officer, password))])


@users_app.command("list")
def list_(
    jurisdiction: Annotated[str | None, typer.Option(help="only users granted this jurisdiction")] = None,
    enabled_only: Annotated[bool, typer.Option(help="leave out disabled users")] = False,
) -> None:
    """List the users."""
    _show(_run(lambda conn, d: d.list(conn, jurisdiction=jurisdiction, enabled_only=enabled_only)))


@users_app.command()
def disable(user_id: str) -> None:
    """Disable a user: no more logins (tokens issued before expire within their validity)."""
    _show([_run(lambda conn, d: d.set_enabled(conn, user_id, False))])


@users_app.command()
def enable(user_id: str) -> None:
    """Enable a disabled user again."""
    _show([_run(lambda conn, d: d.set_enabled(conn, user_id, True))])


@users_app.command()
def grant(
    user_id: str,
    role: Annotated[list[str] | None, typer.Option(help="role to add (repeat)")] = None,
    jurisdiction: Annotated[list[str] | None, typer.Option(help="jurisdiction to add (repeat)")] = None,
    authority: Annotated[CadreAuthority | None, typer.Option(help="new 管理权限")] = None,
) -> None:
    """Grant roles and jurisdictions (those held stay), or change the 管理权限."""
    if not (role or jurisdiction or authority):
        raise typer.BadParameter("give --role, --jurisdiction or --authority")

    async def work(conn: asyncpg.Connection, d: Directory) -> Officer:
        try:
            return await d.grant(
                conn, user_id, roles=role or [], jurisdictions=jurisdiction or [], cadre_authority=authority
            )
        except ValidationError as exc:
            raise typer.BadParameter(str(exc.errors()[0]["msg"])) from exc

    _show([_run(work)])


@users_app.command()
def password(user_id: str, password: Password) -> None:
    """Set a user's password."""
    _run(lambda conn, d: d.set_password(conn, user_id, password))
    out.print(f"password of {user_id} set")


@users_app.command()
def seed(
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="ZM_DEMO_PASSWORD",
            help="the demo users' password",
        ),
    ],
) -> None:
    """The demo users: one per role and jurisdiction (user ids `<role>-<code>`, e.g.
    head-331122), all with the given password; users that exist are left as they are."""

    async def work(conn: asyncpg.Connection, d: Directory) -> int:
        added = 0
        for officer in demo_officers():
            try:
                await d.add(conn, officer, password)
                added += 1
            except Conflict:
                continue
        return added

    added = _run(work)
    out.print(f"{added} demo users added ({len(demo_officers()) - added} were there)")
