"""The command line of CONTRACT.md: ``qmail serve | smtp | web | worker | init | …``.

Every command takes ``--config PATH``, before or after its name; without it, ``load()``
looks at ``$QMAIL_CONFIG``, then ``qmail.toml`` in the working directory.  A user error
(bad config value, unknown person) prints one line on stderr and exits non-zero, without
a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from qmail import __version__, models
from qmail.auth import sessions
from qmail.auth.api_tokens import create_api_token
from qmail.auth.signed import magic_link_url
from qmail.config import Settings, load
from qmail.context import Context, opened_context
from qmail.core.mail import Address
from qmail.db import session_scope
from qmail.errors import QmailError
from qmail.inbound import importer, pipeline
from qmail.outbound.outbox import mail_bytes
from qmail.people import EXTERNAL, TEAM, Team, find_person, get_person
from qmail.queries.outbox import list_outbox, outbox_subject
from qmail.roles import ROLES, configure_logging, serve

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
    except BrokenPipeError:
        # The reader went away (`qmail outbox list | head -n1`).  As the Python docs advise
        # (signal module, "Note on SIGPIPE"): point stdout at devnull, so that the flush at
        # exit cannot fail again, and exit non-zero like a command stopped by SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    try:
        settings = load(args.config, workdir=Path.cwd())
        return int(args.command(args, settings))
    except QmailError as error:
        print(f"qmail: error: {error}", file=sys.stderr)
        return 1
    except OperationalError as error:
        print(f"qmail: error: database unavailable: {error.orig}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qmail",
        description="qmail: an email-native task and discussion tracker.",
        epilog=(
            "Settings come from --config PATH, else $QMAIL_CONFIG, else qmail.toml in the "
            "working directory when there is one, else the built-in defaults. "
            "QMAIL_<SECTION>__<KEY> environment variables override any key "
            "(e.g. QMAIL_SMTP__PORT=2526)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"qmail {__version__}")
    config_help = "a TOML settings file (default: $QMAIL_CONFIG, else ./qmail.toml if present)"
    parser.add_argument("--config", metavar="PATH", help=config_help)
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a command's own default would overwrite a --config given before its name
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name: str, func: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(command=func)
        return p

    processes_help = "processes serving the web app on its port (default: web.processes)"
    serving = command("serve", cmd_serve, "SMTP ingest + web UI + worker in one process")
    serving.add_argument("--processes", type=int, metavar="N", help=processes_help)
    command("smtp", cmd_role("smtp"), "only the SMTP ingest server")
    web = command("web", cmd_role("web"), "only the web UI and JSON API")
    web.add_argument("--processes", type=int, metavar="N", help=processes_help)
    command("worker", cmd_role("worker"), "only the background worker")
    command("init", cmd_init, "create or migrate the database (idempotent)")

    person = sub.add_parser("person", help="manage people").add_subparsers(metavar="ACTION")
    add = person.add_parser("add", help="register a person", parents=[common])
    add.add_argument("email")
    add.add_argument("--name", default="")
    _role_options(add, required=False)
    add.set_defaults(command=cmd_person_add)
    change = person.add_parser(
        "set", help="make a person a team member or external", parents=[common]
    )
    change.add_argument("email")
    _role_options(change, required=True)
    change.set_defaults(command=cmd_person_set)
    person.add_parser(
        "list", help="everyone qmail knows, with their role", parents=[common]
    ).set_defaults(command=cmd_person_list)

    login_link = sub.add_parser(
        "login-link", help="print a magic sign-in link for a person", parents=[common]
    )
    login_link.add_argument("email")
    login_link.set_defaults(command=cmd_login_link)

    web_session = sub.add_parser("session", help="browser sessions (web sign-ins)")
    session_actions = web_session.add_subparsers(metavar="ACTION")
    session_list = session_actions.add_parser(
        "list", help="a person's sessions with their state, newest first", parents=[common]
    )
    session_list.add_argument("email")
    session_list.set_defaults(command=cmd_session_list)
    revoke = session_actions.add_parser(
        "revoke", help="sign a person out: one session, or all of them", parents=[common]
    )
    revoke.add_argument("email")
    revoke.add_argument("id", nargs="?", type=int, help="one session (default: all)")
    revoke.set_defaults(command=cmd_session_revoke)

    token = sub.add_parser("token", help="API tokens").add_subparsers(metavar="ACTION")
    create = token.add_parser(
        "create", help="print a bearer token for the JSON API", parents=[common]
    )
    create.add_argument("email")
    create.add_argument("--name", default="", help="what the token is for, as /settings lists it")
    create.set_defaults(command=cmd_token_create)

    importing = sub.add_parser("import", help="bring an existing mailbox in as task threads")
    kinds = importing.add_subparsers(metavar="KIND")
    for kind in ("mbox", "maildir"):
        one = kinds.add_parser(kind, help=f"import a {kind}", parents=[common])
        one.add_argument("path", metavar="PATH")
        one.set_defaults(command=cmd_import, kind=kind)

    quarantine = sub.add_parser("quarantine", help="mail that could not be processed")
    actions = quarantine.add_subparsers(metavar="ACTION")
    actions.add_parser(
        "list", help="list quarantined mail with the reason", parents=[common]
    ).set_defaults(command=cmd_quarantine_list)
    retry = actions.add_parser("retry", help="process quarantined mail again", parents=[common])
    retry.add_argument("id", nargs="?", type=int, help="one quarantine entry (default: all)")
    retry.set_defaults(command=cmd_quarantine_retry)

    outbox = sub.add_parser("outbox", help="outbound mail").add_subparsers(metavar="ACTION")
    listing = outbox.add_parser(
        "list", help="outbound mail with its delivery state, newest first", parents=[common]
    )
    listing.add_argument("--state", choices=("pending", "sent", "failed"), help="only this state")
    listing.set_defaults(command=cmd_outbox_list)
    return parser


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging()
    settings = with_web_processes(args, settings)
    with opened_context(settings) as context:
        asyncio.run(serve(context, ROLES))
    return 0


def cmd_role(role: str) -> Command:
    def run_role(args: argparse.Namespace, settings: Settings) -> int:
        configure_logging()
        settings = with_web_processes(args, settings)
        with opened_context(settings) as context:
            asyncio.run(serve(context, [role]))
        return 0

    return run_role


def with_web_processes(args: argparse.Namespace, settings: Settings) -> Settings:
    """``--processes N`` in place of ``web.processes``."""
    processes = getattr(args, "processes", None)
    if processes is None:
        return settings
    if not 1 <= processes <= 64:
        raise QmailError(f"--processes must be between 1 and 64, not {processes}")
    return settings.replace(web={"processes": processes})


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    with opened_context(settings):
        print("database ready")
    return 0


def _address(email: str) -> str:
    email = email.strip().lower()
    if email.count("@") != 1 or email.startswith("@") or email.endswith("@"):
        raise QmailError(f"not an email address: {email!r}")
    return email


def _role_options(parser: argparse.ArgumentParser, required: bool) -> None:
    roles = parser.add_mutually_exclusive_group(required=required)
    roles.add_argument("--team", dest="role", action="store_const", const=TEAM)
    roles.add_argument("--external", dest="role", action="store_const", const=EXTERNAL)
    if required:
        roles.add_argument(
            "--by-config",
            dest="role",
            action="store_const",
            const="",
            help="follow mail.team_domains again",
        )


def _describe(person: models.Person, team: Team) -> str:
    role = "team member" if team.includes(person) else "external"
    why = "set explicitly" if person.role else "by mail.team_domains"
    return f"{person.email}\t{person.name}\t{role} ({why})"


def cmd_person_add(args: argparse.Namespace, settings: Settings) -> int:
    address = Address(_address(args.email), args.name)
    with opened_context(settings) as context, session_scope(context.engine) as session:
        person = get_person(session, address, datetime.now(UTC))
        if args.name:
            person.name = args.name
        if args.role:
            person.role = args.role
        print(_describe(person, Team.of(settings)))
    return 0


def cmd_person_set(args: argparse.Namespace, settings: Settings) -> int:
    with opened_context(settings) as context, session_scope(context.engine) as session:
        person = _known(session, args.email)
        person.role = args.role or None
        print(_describe(person, Team.of(settings)))
    return 0


def cmd_person_list(args: argparse.Namespace, settings: Settings) -> int:
    team = Team.of(settings)
    with opened_context(settings) as context, session_scope(context.engine) as session:
        people = session.exec(select(models.Person).order_by(col(models.Person.email))).all()
        for person in people:
            print(_describe(person, team))
    if not people:
        print("nobody yet")
    return 0


def _find_person(context: Context, email: str) -> models.Person:
    with session_scope(context.engine) as session:
        return _known(session, email)


def _known(session: Session, email: str) -> models.Person:
    """The person with this address; a one-line error when qmail has not met them."""
    person = find_person(session, _address(email))
    if person is None:
        raise QmailError(f"no such person: {email} (add them with: qmail person add {email})")
    return person


def cmd_login_link(args: argparse.Namespace, settings: Settings) -> int:
    with opened_context(settings) as context:
        person = _find_person(context, args.email)
        assert person.id is not None
        print(magic_link_url(settings.web.base_url, context.links.make_login(person.id)))
    return 0


def cmd_session_list(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    with opened_context(settings) as context:
        person = _find_person(context, args.email)
        assert person.id is not None
        with session_scope(context.engine) as session:
            rows = sessions.sessions_of(session, person.id, now)
    for row in rows:
        created, seen = (
            when.strftime("%Y-%m-%d %H:%M") for when in (row.created_at, row.last_seen_at)
        )
        print(f"{row.id}\t{sessions.state(row, now)}\t{created}\t{seen}\t{row.user_agent}")
    if not rows:
        print(f"no sessions for {person.email}")
    return 0


def cmd_session_revoke(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    with opened_context(settings) as context:
        person = _find_person(context, args.email)
        assert person.id is not None
        with session_scope(context.engine) as session:
            rows = sessions.sessions_of(session, person.id, now)
            if args.id is not None:
                rows = [row for row in rows if row.id == args.id]
                if not rows:
                    raise QmailError(f"no session {args.id} for {person.email}")
            ended = [row.id for row in rows if sessions.revoke(session, row, now)]
    print(f"revoked {len(ended)} session{'' if len(ended) == 1 else 's'} of {person.email}")
    return 0


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    with opened_context(settings) as context:
        person = _find_person(context, args.email)
        with session_scope(context.engine) as session:
            print(create_api_token(session, person, args.name))
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    raws = importer.read_mailbox(args.kind, Path(args.path))
    with (
        opened_context(settings) as context,
        Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress,
    ):
        bar = progress.add_task("import", total=len(raws))
        counts = importer.import_messages(context, raws, lambda: progress.advance(bar))
    states = ", ".join(f"{count} {state}" for state, count in sorted(counts.states.items()))
    print(
        f"imported {counts.total} messages: {states or 'none new'}"
        f"{f', {counts.duplicates} already there' if counts.duplicates else ''}"
    )
    return 0


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    with opened_context(settings) as context, session_scope(context.engine) as session:
        rows = session.exec(
            select(models.Quarantine, models.RawMail)
            .join(models.RawMail, col(models.RawMail.id) == models.Quarantine.raw_mail_id)
            .where(col(models.Quarantine.resolved_at).is_(None))
            .order_by(col(models.Quarantine.id))
        ).all()
        for entry, raw_mail in rows:
            when = entry.created_at.strftime("%Y-%m-%d %H:%M")
            print(f"{entry.id}\t{when}\t<{raw_mail.message_id}>\t{entry.reason}")
    if not rows:
        print("quarantine is empty")
    return 0


def cmd_outbox_list(args: argparse.Namespace, settings: Settings) -> int:
    with opened_context(settings) as context, session_scope(context.engine) as session:
        rows = list_outbox(session, args.state)
        for row in rows:
            subject = outbox_subject(mail_bytes(session, row))
            print(
                f"{row.id}\t{row.state}\t{row.attempts}\t{row.recipient}\t{subject}"
                f"\t{row.last_error}"
            )
    if not rows:
        print("outbox is empty")
    return 0


def cmd_quarantine_retry(args: argparse.Namespace, settings: Settings) -> int:
    with opened_context(settings) as context:
        return _retry(context, args.id)


def _retry(context: Context, entry_id: int | None) -> int:
    with session_scope(context.engine) as session:
        query = select(models.Quarantine).where(col(models.Quarantine.resolved_at).is_(None))
        if entry_id is not None:
            query = query.where(models.Quarantine.id == entry_id)
        entries = session.exec(query.order_by(col(models.Quarantine.id))).all()
    if entry_id is not None and not entries:
        raise QmailError(f"no open quarantine entry {entry_id}")
    failed = 0
    for entry in entries:  # back in the queue in the transaction that files it
        outcome = pipeline.process(entry.raw_mail_id, context, datetime.now(UTC), retry=True)
        failed += outcome.state == "quarantined"
        print(f"{entry.id}\t{outcome.state}\ttask {outcome.task_number or '-'}")
    return 1 if failed else 0
