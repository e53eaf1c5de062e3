"""The daily digest: one mail a day with what happened in one's tasks, sent by the worker.

Mail comes in through the real SMTP server; the worker's digest loop queues the digests
and the outbox worker hands them to a local aiosmtpd relay.  Alice and Bob are the triage
team; Carol and Erin are clients.  A digest is due a day after the last: the tests move
the last one back a day (or pass the worker a clock a day ahead).
"""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import update
from sqlmodel import Session, col, select

from qmail import models, roles
from qmail.context import Context
from qmail.db import session_scope
from qmail.outbound import preferences
from qmail.outbound.digest import send_digests
from qmail.people import find_person
from tests.conftest import wait_until
from tests.integration.test_ingest import INTAKE
from tests.integration.test_mail_preferences import (
    ALICE,
    BOB,
    CAROL,
    ERIN,
    SECRET,
    choose,
    deliver,
    full_text,
    mail,
    post,
    tag_task,
    triaged,  # noqa: F401 (a fixture)
)
from tests.integration.test_threads import branches


def digests(store: Context) -> list[tuple[str, int]]:
    """(recipient, outbox id) of every queued digest."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.Outbox.recipient, models.Outbox.id)
            .where(models.Outbox.kind == "digest")
            .order_by(col(models.Outbox.id))
        ).all()
    return [(recipient, outbox_id) for recipient, outbox_id in rows if outbox_id]


def a_day_has_passed(store: Context) -> None:
    with session_scope(store.engine) as session:
        session.execute(
            update(models.Person)
            .where(col(models.Person.notifications) == preferences.DIGEST)
            .values(digest_sent_at=datetime.now(UTC) - timedelta(hours=25))
        )


def listed(digest: EmailMessage) -> list[str]:
    """The digest's task headings and message lines, as the text part shows them."""
    text = digest.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    return [line for line in text.splitlines() if re.match(r"(#\d+ |- |Open in qmail: )", line)]


def run_digester(store: Context, loop_thread, until) -> None:
    """The worker's digest loop, until ``until()`` holds; it stops between two rounds."""
    stop = asyncio.Event()

    async def start() -> asyncio.Task[None]:
        return asyncio.create_task(roles.digester(store, interval=0.1, stop=stop))

    task = loop_thread.run(start())
    try:
        wait_until(until, timeout=20)
    finally:
        loop_thread.loop.call_soon_threadsafe(stop.set)
        loop_thread.run(asyncio.wait_for(asyncio.shield(task), 20), timeout=30)


def test_digest_lists_exactly_what_each_person_may_see_once_a_day(
    triaged,  # noqa: F811
    relay,
    loop_thread,
):
    store = triaged.store
    triaged.send(mail(CAROL, INTAKE, "Invoice", "Invoice 17 is wrong."), INTAKE, sender=CAROL)
    tag_task(store, ("finance-q4", "waiting"))
    choose(store, BOB, preferences.DIGEST)
    choose(store, CAROL, preferences.DIGEST)
    main = branches(store)[0]
    post(triaged, ALICE, main.id, "We are on it.\nMore below.")
    post(triaged, ALICE, main.id, f"{SECRET}.", private=True)
    post(triaged, BOB, main.id, "Bob here.")
    post(triaged, CAROL, main.id, "Thank you!")
    triaged.send(mail(ERIN, INTAKE, "Login", "I cannot log in."), INTAKE, sender=ERIN)
    deliver(store, relay)  # the mails of the day, none of them to Bob or Carol
    a_day_has_passed(store)
    run_digester(store, loop_thread, lambda: len(digests(store)) == 2)
    delivered = dict(deliver(store, relay))
    assert set(delivered) == {BOB, CAROL}
    bob, carol = delivered[BOB], delivered[CAROL]
    assert bob["Subject"] == "Daily digest: news in 2 tasks"
    assert carol["Subject"] == "Daily digest: news in 1 task"
    assert carol["From"].addresses[0].addr_spec == "noreply@example.com"
    link = re.compile(r"Open in qmail: http://\S+/auth/magic/\S+")
    lines = listed(bob)
    assert [line for line in lines if not link.fullmatch(line)] == [
        "#1 Invoice",
        "- Alice Admin: We are on it.",
        f"- Alice Admin: {SECRET}.",
        f"- {CAROL}: Thank you!",
        "#2 Login",
        f"- {ERIN}: I cannot log in.",
    ]
    assert len(lines) == 8 and all(link.fullmatch(lines[i]) for i in (4, 7))
    assert [line for line in listed(carol) if not link.fullmatch(line)] == [
        "#1 Invoice",
        "- Alice Admin: We are on it.",
        "- Bob: Bob here.",
    ]
    for text in (full_text(carol), carol.as_string()):
        assert "between us" not in text.lower() and "#2" not in text
        for tag in ("billing", "finance-q4", "waiting", "Tags"):
            assert tag not in text
    # Once a day: the worker's next rounds queue nothing more, nor does a day without news.
    assert send_digests(store, datetime.now(UTC)) == 0
    assert send_digests(store, datetime.now(UTC) + timedelta(hours=25)) == 0
    assert len(digests(store)) == 2


def test_digest_is_sent_exactly_once_by_two_racing_workers(triaged):  # noqa: F811
    store = triaged.store
    triaged.send(mail(CAROL, INTAKE, "Invoice", "Invoice 17 is wrong."), INTAKE, sender=CAROL)
    main = branches(store)[0]
    people = [f"client{i}@acme.test" for i in range(12)]
    with session_scope(store.engine) as session:
        for email_address in people:
            person = models.Person(email=email_address, name="")
            session.add(person)
            session.flush()
            assert person.id is not None and main.id is not None
            session.add(models.BranchMember(branch_id=main.id, person_id=person.id))
    for email_address in people:
        choose(store, email_address, preferences.DIGEST)
    post(triaged, ALICE, main.id, "News for everyone.")
    later = datetime.now(UTC) + timedelta(hours=25)
    start = threading.Barrier(2)
    queued: list[int] = []

    def worker() -> None:
        start.wait()
        queued.append(send_digests(store, later))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(queued) == len(people)
    assert sorted(recipient for recipient, _ in digests(store)) == sorted(people)
    with Session(store.engine) as session:
        for email_address in people:
            person = find_person(session, email_address)
            assert person is not None and person.digest_sent_at == later
