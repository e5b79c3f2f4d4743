"""`wf`: the command-line tool installed with the project."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.enums import Plan


def _token(args: argparse.Namespace) -> int:
    from shared.auth import issue_token
    from shared.config import get_settings

    roles = args.role or ["DepartmentAdmin"]
    print(
        issue_token(
            get_settings(), department_id=args.department_id, roles=roles, user_id=args.user, ttl_s=args.ttl
        )
    )
    return 0


def _set_plan(args: argparse.Namespace) -> int:
    from shared.config import get_settings
    from shared.db.engine import create_engine, create_sessionmaker, session_scope

    async def run() -> None:
        from services.api.department.service import set_plan

        settings = get_settings()
        settings.require_infrastructure()
        engine = create_engine(settings, pool_size=1)
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                await set_plan(session, args.department_id, Plan(args.plan.capitalize()))
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"department {args.department_id}: {args.plan.capitalize()}")
    return 0


def _rotate_key(_: argparse.Namespace) -> int:
    from shared.config import get_settings
    from shared.db.engine import create_engine
    from shared.keys import keyring_from

    async def run() -> int:
        from services.api.credentials.rotation import rotate_credentials

        settings = get_settings()
        settings.require_infrastructure()
        engine = create_engine(settings, pool_size=1)
        try:
            report = await rotate_credentials(engine, keyring_from(settings))
        finally:
            await engine.dispose()
        print(f"re-encrypted {report.reencrypted} credentials; {report.current} already used the current key")
        if report.unreadable:
            print(
                f"{report.unreadable} credentials could not be decrypted: add their master key to "
                "WF_MASTER_KEY_PREVIOUS and run again",
                file=sys.stderr,
            )
            return 1
        return 0

    return asyncio.run(run())


def _migrate(_: argparse.Namespace) -> int:
    from shared.config import get_settings
    from shared.db.migrate import upgrade

    settings = get_settings()
    if not settings.database_url:
        print("WF_DATABASE_URL is not set", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    return 0


def _up(args: argparse.Namespace) -> int:
    from wf.stack import up

    return up(foreground=args.foreground)


def _down(_: argparse.Namespace) -> int:
    from wf.stack import down

    return down()


def _health_rebuild(_: argparse.Namespace) -> int:
    from shared.config import get_settings
    from shared.db.engine import create_engine

    async def run() -> int:
        from services.health.rebuild import rebuild_rollups

        settings = get_settings()
        settings.require_infrastructure()
        engine = create_engine(settings, pool_size=1)
        try:
            return await rebuild_rollups(engine)
        finally:
            await engine.dispose()

    print(f"rebuilt {asyncio.run(run())} hourly health rollups from the runs table")
    return 0


def _dlq_list(args: argparse.Namespace) -> int:
    from shared.config import get_settings
    from wf.dlq import format_list, parse_since, read_letters

    settings = get_settings()
    since = parse_since(args.since) if args.since else None
    letters = asyncio.run(read_letters(settings, reason=args.reason, since=since))
    print(format_list(letters[-args.limit :] if args.limit else letters))
    return 0


def _dlq_replay(args: argparse.Namespace) -> int:
    from shared.config import get_settings
    from wf.dlq import Progress, parse_since, read_letters, replay

    settings = get_settings()
    since = parse_since(args.since) if args.since else None

    async def run() -> int:
        letters = await read_letters(settings, reason=args.reason, since=since)
        progress = Progress(len(letters))
        try:
            report = await replay(settings, letters, dry_run=args.dry_run, on_progress=progress.advance)
        finally:
            progress.close()
        verb = "would replay" if args.dry_run else "replayed"
        print(f"{verb} {report.replayed} messages from {len(letters)} dead letters")
        for why in report.skipped:
            print(f"skipped: {why}", file=sys.stderr)
        return 0

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wf", description="Workflows command-line tool")
    sub = parser.add_subparsers(dest="command", required=True)

    token = sub.add_parser("token", help="print a signed API token (JWT)")
    token.add_argument("--department-id", type=int, required=True)
    token.add_argument("--role", action="append", choices=["DepartmentAdmin", "SystemAdmin"])
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.add_argument("--user", default="wf-cli", help="the sub claim")
    token.set_defaults(func=_token)

    departments = sub.add_parser("departments", help="department plans")
    dep_sub = departments.add_subparsers(dest="departments_command", required=True)
    set_plan = dep_sub.add_parser("set-plan", help="set a department's plan")
    set_plan.add_argument("department_id", type=int)
    set_plan.add_argument("plan", choices=["free", "paid", "Free", "Paid"])
    set_plan.set_defaults(func=_set_plan)

    health = sub.add_parser("health", help="health figures")
    health_sub = health.add_subparsers(dest="health_command", required=True)
    rebuild = health_sub.add_parser("rebuild", help="recompute the health rollups from the runs table")
    rebuild.set_defaults(func=_health_rebuild)

    credentials = sub.add_parser("credentials", help="stored credentials")
    cred_sub = credentials.add_subparsers(dest="credentials_command", required=True)
    rotate = cred_sub.add_parser(
        "rotate-key",
        help="re-encrypt every credential with the current WF_MASTER_KEY "
        "(old keys in WF_MASTER_KEY_PREVIOUS, comma-separated)",
    )
    rotate.set_defaults(func=_rotate_key)

    dlq = sub.add_parser("dlq", help="the dead-letter topic (WF_TOPIC_DLQ): list and replay")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    for name, func, text in (
        (
            "list",
            _dlq_list,
            "show the dead letters: age, reason code, department, event type, origin, reason",
        ),
        ("replay", _dlq_replay, "put the chosen dead letters back on their original topic"),
    ):
        command = dlq_sub.add_parser(name, help=text)
        command.add_argument(
            "--reason", help="only letters with this code (e.g. invalid_json) or reason text"
        )
        command.add_argument("--since", help="only letters dead-lettered since: 30m, 2h, 7d or an ISO time")
        command.set_defaults(func=func)
        if name == "list":
            command.add_argument("--limit", type=int, default=0, help="only the newest N")
        else:
            command.add_argument("--dry-run", action="store_true", help="count what would be replayed")

    migrate = sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    migrate.set_defaults(func=_migrate)

    up = sub.add_parser("up", help="start the whole system locally (make up / make run)")
    up.add_argument("--foreground", action="store_true", help="stay in the foreground; Ctrl-C stops all")
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="stop everything `wf up` started")
    down.set_defaults(func=_down)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
