"""The ``clarity`` command: serve, migrate, manage users, seed demo data, verify the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarity import migrate as migrations
from clarity.audit import service as audit
from clarity.audit.chain import ChainBreak
from clarity.audit.service import AuditActor, bind_actor
from clarity.auth.models import Role
from clarity.config import Environment, Settings, UnsafeConfiguration, get_settings
from clarity.crypto.fields import new_key
from clarity.crypto.rotation import RotationReport
from clarity.crypto.rotation import rotate as rotate_keys
from clarity.database import scope_session
from clarity.demo import DEMO_ORGANIZATION, seed_patients, seed_users
from clarity.errors import AppError
from clarity.imports.cli import import_command
from clarity.migrate import SchemaOutOfDate, check_at_head
from clarity.ml.cli import ml_app
from clarity.organizations.service import get_or_create
from clarity.runtime import Runtime, open_runtime
from clarity.users.service import create_user
from clarity.worker.cli import dead_command, retry_command, worker_command

app = typer.Typer(help="Clarity: digital-twin backend for psychiatric care.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit trail tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
keys_app = typer.Typer(help="Encryption keys for data at rest.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.command("import")(import_command)
app.command("worker")(worker_command)
events_app = typer.Typer(help="Dead letters of the event workers.", no_args_is_help=True)
app.add_typer(events_app, name="events")
events_app.command("dead")(dead_command)
events_app.command("retry")(retry_command)
app.add_typer(ml_app, name="ml")
console = Console()
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = get_settings()
        settings.check_production()
    except UnsafeConfiguration as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return settings


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_runtime(_settings()) as runtime:
            return await work(runtime)

    return asyncio.run(main())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    try:
        _run(lambda runtime: check_at_head(runtime.db.engine))
    except SchemaOutOfDate as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"Clarity on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "clarity.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
    )


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Upgrade the database schema (to head by default)."""
    settings = _settings()
    migrations.upgrade(settings.database_url, revision)
    console.print(f"Database upgraded to {revision}.")


async def _create_user(
    runtime: Runtime, email: str, password: str, role: Role, organization: str | None
) -> str:
    async with runtime.db.session(system=True) as session:
        org = await get_or_create(session, organization or runtime.settings.default_organization)
        scope_session(session, org.id)
        bind_actor(session, AuditActor(organization_id=org.id, request_id="cli"))
        user = await create_user(runtime, session, email=email, password=password, role=role)
        await session.commit()
        return str(user.id)


@app.command("partitions")
def partitions_command() -> None:
    """Create the coming months' partitions of the biometric samples and move months found
    in the default partition into their own (PostgreSQL; the server also does it daily)."""
    from clarity.biometrics.maintenance import PartitionKeeper

    report = _run(lambda rt: PartitionKeeper(rt.db).run_once())
    if not report.created and not report.moved_rows:
        console.print("Partitions are up to date (nothing to do; always so on SQLite).")
        return
    console.print(
        f"Created {len(report.created)} partition(s), moved {report.moved_rows} sample(s) "
        "out of the default partition."
    )


@app.command("create-user")
def create_user_command(
    email: Annotated[str, typer.Option(help="Login email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="At least 12 characters, not a common one (asked for when omitted, so it "
            "stays out of the shell history).",
        ),
    ],
    role: Annotated[Role, typer.Option(help="admin, clinician, researcher or patient.")],
    organization: Annotated[
        str | None, typer.Option("--org", help="Organization name (created if new).")
    ] = None,
) -> None:
    """Create a user account."""
    try:
        user_id = _run(lambda rt: _create_user(rt, email, password, role, organization))
    except AppError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Created {role.value} account {user_id}.")


async def _seed(runtime: Runtime) -> tuple[list[tuple[str, str, Role, bool]], int]:
    return await seed_users(runtime), await seed_patients(runtime)


@app.command("seed-demo")
def seed_demo() -> None:
    """Create one demo account of every role and two SYNTHETIC patients (demo only;
    refused in production)."""
    if get_settings().environment is Environment.production:
        err.print("[red]seed-demo is refused in production.[/red]")
        raise typer.Exit(2)
    rows, patients_made = _run(_seed)
    table = Table(title=f"Demo accounts in '{DEMO_ORGANIZATION}' (demo only)")
    for column in ("role", "email", "password", "status"):
        table.add_column(column)
    for email, password, role, new in rows:
        table.add_row(
            role.value, email, password if new else "(unchanged)", "created" if new else "exists"
        )
    console.print(table)
    console.print(
        f"Synthetic demo patients created: {patients_made} (MRN DEMO-0001 and DEMO-0002; "
        "the clinician is on their care team, the patient account is linked to DEMO-0001)."
    )


@keys_app.command("new")
def keys_new(
    kid: Annotated[str, typer.Option(help="Key id to give the new key (letters, digits).")],
) -> None:
    """Print a new random key as ``kid:key``: put it FIRST in CLARITY_ENCRYPTION_KEYS (or
    CLARITY_BLIND_INDEX_KEYS), keep the old keys after it, then run `clarity keys rotate`."""
    console.print(f"{kid}:{new_key()}", soft_wrap=True, highlight=False)


@keys_app.command("rotate")
def keys_rotate(
    check: Annotated[
        bool, typer.Option("--check", help="Only count values under older keys; exit 1 if any.")
    ] = False,
) -> None:
    """Re-encrypt every encrypted value (and blind index) under the newest key. Safe to
    re-run; an old key may be removed once `--check` reports nothing left under it."""

    async def work(runtime: Runtime) -> RotationReport:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("Scanning", total=None)

            def on_progress(table: str, rows: int) -> None:
                progress.update(task, description=f"{table}: {rows:,} rows")

            report = await rotate_keys(
                runtime.db.engine,
                runtime.keyring,
                runtime.blind_index,
                check_only=check,
                on_progress=on_progress,
            )
        if not check and report.rotated:
            async with runtime.db.session(system=True) as session:
                audit.record(
                    session,
                    "keys.rotate",
                    resource_type="encryption_keys",
                    severity="high",
                    details={"rotated": dict(report.rotated)},
                    actor=AuditActor(request_id="cli"),
                )
                await session.commit()
        return report

    report = _run(work)
    for name, count in sorted(report.stale.items()):
        console.print(
            f"{'under an older key' if check else 'was under an older key'}: {name}: {count:,}"
        )
    for name, count in sorted(report.rotated.items()):
        console.print(f"rotated {name}: {count:,}")
    for failure in report.failed:
        err.print(f"[red]could not rotate {failure}[/red]")
    if report.failed or (check and report.stale):
        raise typer.Exit(1)
    if not report.stale:
        console.print("[green]Everything is under the newest keys.[/green]")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the whole hash chain; name the first broken record. Exit 1 if broken."""

    async def work(runtime: Runtime) -> tuple[int, ChainBreak | None]:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("Verifying audit chain", total=None)

            def on_progress(n: int) -> None:
                if n % 1000 == 0:
                    progress.update(task, description=f"Verified {n:,} records")

            async with runtime.db.session(system=True) as session:
                return await audit.verify(session, on_progress)

    checked, broken = _run(work)
    if broken is None:
        console.print(f"[green]Audit chain intact: {checked:,} records verified.[/green]")
        return
    where = "unknown" if broken.record_id is None else str(broken.record_id)
    err.print(
        f"[red]Audit chain BROKEN at record {where}: {broken.reason}.[/red] "
        f"{checked:,} records before it verified."
    )
    raise typer.Exit(1)


if __name__ == "__main__":
    app()
