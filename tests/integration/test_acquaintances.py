"""The address book's kept figures (``acquaintance``) after what changes them.

Starts from the realistic exchange of ``test_contacts.py`` (eight real mails through the
real SMTP server: tasks 1 and 2, a hidden team branch on task 1), then posts in the hidden
branch, adds a participant to a task that already has messages, removes one, and, by
mistake, puts a client into the hidden branch.  After each step the book is read through
``GET /api/contacts`` and the kept figures are compared with the same figures counted
again from the branches (``acquaintances.recount``), so an increment that went wrong in
any way shows.  Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlmodel import Session, select

from qmail import models
from qmail.context import Context
from qmail.core.mail import Address
from qmail.db import alembic_config, migrate, session_scope
from qmail.threads import acquaintances
from qmail.threads.branches import _open_hidden, add_copied, find_team_branch
from qmail.threads.posting import post_message
from qmail.threads.tasks import add_member, main_branch, remove_member
from tests.integration import test_contacts
from tests.integration.conftest import SmtpServer, WebServer
from tests.integration.test_contacts import ALICE, BOB, CAROL, DAN, ERIN, book, date_of

exchange = test_contacts.exchange  # the fixture: the eight mails, a token for each person

LATER = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def kept(store: Context) -> list[tuple]:
    """Every row of ``acquaintance``, in order."""
    with Session(store.engine) as session:
        rows = session.exec(select(models.Acquaintance)).all()
        return sorted(
            (
                row.person_id,
                row.other_id,
                row.tasks,
                row.first_seen,
                row.last_seen,
                row.open_tasks,
                row.open_first_seen,
                row.open_last_seen,
            )
            for row in rows
        )


def assert_kept_as_counted(store: Context) -> None:
    """The kept figures are exactly what counting every pair again from the branches gives."""
    before = kept(store)
    with session_scope(store.engine) as session:
        acquaintances.recount(session)
    assert kept(store) == before


def figures(web_server: WebServer, token: str) -> dict[str, tuple[int, datetime, datetime]]:
    return {
        entry["email"]: (entry["tasks_in_common"], entry["first_seen"], entry["last_seen"])
        for entry in book(web_server, token)
    }


def person(session: Session, email: str) -> models.Person:
    return session.exec(select(models.Person).where(models.Person.email == email)).one()


def task_number(session: Session, number: int) -> models.Task:
    return session.exec(select(models.Task).where(models.Task.number == number)).one()


def test_the_figures_kept_from_the_mails_are_those_counted_from_the_branches(
    smtp_server: SmtpServer, exchange: dict[str, str]
) -> None:
    assert len(kept(smtp_server.store)) == 16  # 8 pairs (task 1: 4 people, task 2: 3), both ways
    assert_kept_as_counted(smtp_server.store)


def test_a_post_in_a_hidden_branch_counts_for_its_members_only(
    smtp_server: SmtpServer, web_server: WebServer, exchange: dict[str, str]
) -> None:
    store = smtp_server.store
    with session_scope(store.engine) as session:
        task = task_number(session, 1)
        hidden = find_team_branch(session, task.id)
        assert hidden is not None
        post_message(
            session, task, hidden, person(session, BOB), "Between us", store.settings, LATER
        )
    assert figures(web_server, exchange[ALICE])[BOB] == (2, date_of(1), LATER)
    assert figures(web_server, exchange[CAROL])[BOB] == (1, date_of(1), date_of(6))
    assert figures(web_server, exchange[DAN])[ALICE] == (1, date_of(1), date_of(6))
    assert_kept_as_counted(store)


def test_a_client_put_in_a_hidden_branch_by_mistake_never_counts_it(
    smtp_server: SmtpServer, web_server: WebServer, exchange: dict[str, str]
) -> None:
    store = smtp_server.store
    with session_scope(store.engine) as session:
        task = task_number(session, 1)
        hidden = find_team_branch(session, task.id)
        assert hidden is not None and hidden.id is not None
        # (add_copied refuses a client here; add_member is what a bug would call)
        add_member(session, hidden.id, person(session, ERIN).id or 0, LATER)
        post_message(session, task, hidden, person(session, ALICE), "Psst", store.settings, LATER)
    # Erin's own book: the hidden branch is not hers to read, so task 1 is not there
    assert figures(web_server, exchange[ERIN]) == {
        ALICE: (1, date_of(3), date_of(5)),
        BOB: (1, date_of(3), date_of(5)),
    }
    # the team reads the hidden branches it is in, Erin included, as access.py says
    assert figures(web_server, exchange[ALICE])[ERIN] == (2, date_of(3), LATER)
    assert_kept_as_counted(store)


def test_two_people_who_first_meet_in_a_new_branch_gain_its_task(
    smtp_server: SmtpServer, web_server: WebServer, exchange: dict[str, str]
) -> None:
    """The first message of a new branch: its members shared no message of the task
    before (the branch's only message is this one), so the task is new to them."""
    store = smtp_server.store
    with session_scope(store.engine) as session:
        task = task_number(session, 2)  # Erin's, which Carol has no part in
        alice, carol = person(session, ALICE), person(session, CAROL)
        assert alice.id is not None and carol.id is not None
        # (what opening a branch with a client in it would do: the code refuses it)
        branch = _open_hidden(
            session, task, main_branch(session, task.id), alice, [alice.id, carol.id], LATER
        )
        post_message(session, task, branch, alice, "A word apart", store.settings, LATER)
    assert figures(web_server, exchange[ALICE])[CAROL] == (2, date_of(1), LATER)
    assert_kept_as_counted(store)


def test_a_participant_added_later_shares_what_was_said_before(
    smtp_server: SmtpServer, web_server: WebServer, exchange: dict[str, str]
) -> None:
    store = smtp_server.store
    with session_scope(store.engine) as session:
        task = task_number(session, 1)
        branch = main_branch(session, task.id)
        add_copied(session, branch, person(session, ALICE), [Address(ERIN)], store.settings, LATER)
    erins = figures(web_server, exchange[ERIN])
    assert erins[CAROL] == (1, date_of(1), date_of(6)), "task 1's earlier messages"
    assert erins[ALICE] == (2, date_of(1), date_of(6)), "tasks 1 and 2 now"
    assert figures(web_server, exchange[CAROL])[ERIN] == (1, date_of(1), date_of(6))
    assert_kept_as_counted(store)


def test_a_removed_participant_leaves_the_books_of_that_task(
    smtp_server: SmtpServer, web_server: WebServer, exchange: dict[str, str]
) -> None:
    store = smtp_server.store
    with session_scope(store.engine) as session:
        task = task_number(session, 1)
        branch = main_branch(session, task.id)
        assert branch.id is not None
        remove_member(session, branch.id, person(session, DAN).id or 0)
    assert book(web_server, exchange[DAN]) == [], "task 1 was all Dan shared"
    assert DAN not in figures(web_server, exchange[CAROL])
    assert DAN not in figures(web_server, exchange[ALICE])
    with session_scope(store.engine) as session:  # a team member: the hidden branch stays
        task = task_number(session, 1)
        branch = main_branch(session, task.id)
        assert branch.id is not None
        remove_member(session, branch.id, person(session, BOB).id or 0)
    assert figures(web_server, exchange[ALICE])[BOB] == (2, date_of(3), date_of(8))
    assert figures(web_server, exchange[CAROL]) == {ALICE: (1, date_of(1), date_of(6))}
    assert_kept_as_counted(store)


def test_migration_0011_counts_the_figures_of_a_database_in_use(
    smtp_server: SmtpServer, exchange: dict[str, str]
) -> None:
    """A database from before 0011 gets the same figures that posting keeps."""
    store = smtp_server.store
    before = kept(store)
    command.downgrade(alembic_config(store.engine), "0010")
    migrate(store.engine)
    assert kept(store) == before
