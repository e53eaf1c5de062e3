"""The address book after a realistic exchange, read through ``GET /api/contacts``.

Eight real mails (``tests/mail/thread_*.eml``) go through the real SMTP server, among five
people at three companies: Alice and Bob are the team (example.com); Carol and her
colleague Dan (writing from a sub-domain, eu.acme.test) are ACME; Erin is Globex.
(Webmail addresses name no company: tests/unit/test_companies.py.)

1. Carol opens task 1 (the team is made a member of it).
2. Alice answers through her reply address.
3. Erin opens task 2.
4. Dan, copied by Carol, answers Alice's message: In-Reply-To makes him a member of task 1.
5. Bob answers Erin through his reply address.
6. Carol thanks Alice: the last mail the clients of task 1 take part in.
7. Alice writes to the team only (her private address): a hidden branch opens on task 1.
8. Bob answers in the hidden branch.

The book is then read over HTTP from the real web server, as each of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import reader_of
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.core.addresses import reply_address
from qmail.core.mail import Address, ReplyTarget
from qmail.db import session_scope
from qmail.people import Team, get_person
from qmail.queries.contacts import contact
from tests.conftest import eml_bytes, expected
from tests.integration.conftest import SmtpServer, WebServer
from tests.integration.test_ingest import INTAKE, token_for

ALICE, BOB = "alice@example.com", "bob@example.com"
CAROL, DAN, ERIN = "carol@acme.test", "dan@eu.acme.test", "erin@globex.test"
NAMES = {
    ALICE: "Alice Martin",
    BOB: "Bob Keller",
    CAROL: "Carol Jones",
    DAN: "Dan Price",
    ERIN: "Erin Walsh",
}
TEAM_JOINED = datetime(2024, 5, 1, tzinfo=UTC)
STRANGER = "zoe@initech.test"

# The mails in the order they are sent, by their fixture's number.
MAILS = {
    1: "thread_1_carol_opens",
    2: "thread_2_alice_answers",
    3: "thread_3_erin_opens",
    4: "thread_4_dan_joins",
    5: "thread_5_bob_answers_erin",
    6: "thread_6_carol_thanks",
    7: "thread_7_alice_private",
    8: "thread_8_bob_private",
}

# Each person's exact book: (email, company, tasks in common, first mail, last mail), by
# the domain of the address, then the address.  Alice and Bob also share the hidden branch
# of task 1 (7, 8); nobody else sees it, so for the clients task 1 ends with mail 6.
BOOKS = {
    ALICE: [
        (CAROL, "acme.test", 1, 1, 6),
        (DAN, "acme.test", 1, 1, 6),
        (BOB, "example.com", 2, 1, 8),
        (ERIN, "globex.test", 1, 3, 5),
    ],
    BOB: [
        (CAROL, "acme.test", 1, 1, 6),
        (DAN, "acme.test", 1, 1, 6),
        (ALICE, "example.com", 2, 1, 8),
        (ERIN, "globex.test", 1, 3, 5),
    ],
    CAROL: [
        (DAN, "acme.test", 1, 1, 6),
        (ALICE, "example.com", 1, 1, 6),
        (BOB, "example.com", 1, 1, 6),
    ],
    DAN: [
        (CAROL, "acme.test", 1, 1, 6),
        (ALICE, "example.com", 1, 1, 6),
        (BOB, "example.com", 1, 1, 6),
    ],
    ERIN: [
        (ALICE, "example.com", 1, 3, 5),
        (BOB, "example.com", 1, 3, 5),
    ],
}


def date_of(number: int) -> datetime:
    """The Date header of mail ``number``, as an instant."""
    return parsedate_to_datetime(expected(MAILS[number])["date"])


def private_address(store: Context, number: int, email: str) -> str:
    """The team-only reply address a notification to a team member carries."""
    with Session(store.engine) as session:
        task = session.exec(select(models.Task).where(models.Task.number == number)).one()
        main = session.exec(
            select(models.Branch)
            .where(models.Branch.task_id == task.id, col(models.Branch.hidden).is_(False))
            .order_by(col(models.Branch.id))
        ).first()
        person = session.exec(select(models.Person).where(models.Person.email == email)).one()
        assert main is not None and main.id is not None and person.id is not None
        token = store.tokens.make(ReplyTarget(main.id, person.id, private=True))
    return reply_address(token, store.settings.mail.domain)


def send(smtp_server: SmtpServer, number: int, to: str) -> None:
    golden = expected(MAILS[number])
    refused = smtp_server.send(eml_bytes(MAILS[number]), to, sender=golden["sender"])
    assert refused == {}


@pytest.fixture
def exchange(smtp_server: SmtpServer) -> dict[str, str]:
    """The eight mails, sent; returns an API token for each person and a stranger."""
    store = smtp_server.store
    with session_scope(store.engine) as session:  # the team has accounts before clients write
        for email in (ALICE, BOB):
            get_person(session, Address(email, NAMES[email]), TEAM_JOINED)
    send(smtp_server, 1, INTAKE)
    send(smtp_server, 2, token_for(store, 1, ALICE))
    send(smtp_server, 3, INTAKE)
    send(smtp_server, 4, INTAKE)
    send(smtp_server, 5, token_for(store, 2, BOB))
    send(smtp_server, 6, token_for(store, 1, CAROL))
    send(smtp_server, 7, private_address(store, 1, ALICE))
    send(smtp_server, 8, private_address(store, 1, BOB))
    with session_scope(store.engine) as session:
        assert len(session.exec(select(models.Message)).all()) == len(MAILS)
        get_person(session, Address(STRANGER), TEAM_JOINED)
        people = session.exec(
            select(models.Person).where(col(models.Person.email).in_([*NAMES, STRANGER]))
        ).all()
        return {person.email: create_api_token(session, person) for person in people}


def book(web_server: WebServer, token: str | None, query: str = "") -> list[dict]:
    with web_server.client(token) as http:
        response = http.get(f"/api/contacts{query}")
    assert response.status_code == 200, response.text
    assert "link" not in response.headers, "the whole book fits on one page"
    contacts = response.json()
    for entry in contacts:
        entry["first_seen"] = datetime.fromisoformat(entry["first_seen"])
        entry["last_seen"] = datetime.fromisoformat(entry["last_seen"])
    return contacts


def hidden_branch_members(store: Context) -> set[str]:
    with Session(store.engine) as session:
        return set(
            session.exec(
                select(models.Person.email)
                .join(models.BranchMember, col(models.BranchMember.person_id) == models.Person.id)
                .join(models.Branch, col(models.Branch.id) == models.BranchMember.branch_id)
                .where(col(models.Branch.hidden).is_(True))
            ).all()
        )


@pytest.mark.parametrize("email", list(BOOKS))
def test_each_person_has_exactly_the_book_of_their_discussions(
    web_server: WebServer, exchange: dict[str, str], email: str
) -> None:
    assert book(web_server, exchange[email]) == [
        {
            "email": other,
            "name": NAMES[other],
            "company": company,
            "tasks_in_common": tasks,
            "first_seen": date_of(first),
            "last_seen": date_of(last),
            "company_domain": company,
        }
        for other, company, tasks, first, last in BOOKS[email]
    ]


def test_a_client_sees_only_the_people_they_talked_with(
    web_server: WebServer, exchange: dict[str, str]
) -> None:
    carols = [entry["email"] for entry in book(web_server, exchange[CAROL])]
    erins = [entry["email"] for entry in book(web_server, exchange[ERIN])]
    assert ERIN not in carols and DAN in carols, "Erin's task is not Carol's business"
    assert CAROL not in erins and DAN not in erins


def test_a_hidden_branch_adds_contacts_only_among_its_members(
    smtp_server: SmtpServer, web_server: WebServer, exchange: dict[str, str]
) -> None:
    assert hidden_branch_members(smtp_server.store) == {ALICE, BOB}
    team_only = date_of(8)
    alices = {entry["email"]: entry for entry in book(web_server, exchange[ALICE])}
    assert alices[BOB]["last_seen"] == team_only, "the hidden branch counts for its members"
    for client in (CAROL, DAN):
        entries = book(web_server, exchange[client])
        assert {entry["email"] for entry in entries} == {ALICE, BOB, CAROL, DAN} - {client}
        assert max(entry["last_seen"] for entry in entries) == date_of(6) < date_of(7)


def test_the_book_is_filtered_by_address_or_name(
    web_server: WebServer, exchange: dict[str, str]
) -> None:
    token = exchange[ALICE]
    assert [entry["email"] for entry in book(web_server, token, "?q=ACME")] == [CAROL, DAN]
    assert [entry["email"] for entry in book(web_server, token, "?q=walsh")] == [ERIN]
    assert book(web_server, token, "?q=100%25") == []


def test_one_contact_is_found_by_address(smtp_server: SmtpServer, exchange: dict[str, str]) -> None:
    team = Team.of(smtp_server.store.settings)
    with Session(smtp_server.store.engine) as session:
        people = {
            person.email: reader_of(person, team)
            for person in session.exec(select(models.Person)).all()
        }
        dan = contact(session, people[ALICE], " Dan@EU.acme.test ")
        assert dan is not None
        assert (dan.email, dan.company, dan.tasks_in_common) == (DAN, "acme.test", 1)
        assert (dan.first_seen, dan.last_seen) == (date_of(1), date_of(6))
        assert contact(session, people[CAROL], ERIN) is None
        assert contact(session, people[CAROL], CAROL) is None, "nobody is their own contact"


def test_the_book_is_read_a_page_at_a_time_following_the_link(
    web_server: WebServer, exchange: dict[str, str]
) -> None:
    pages, url = [], "/api/contacts?limit=3"
    with web_server.client(exchange[ALICE]) as http:
        while url:
            response = http.get(url)
            assert response.status_code == 200, response.text
            pages.append([entry["email"] for entry in response.json()])
            link = response.headers.get("link", "")
            url = link.removeprefix("<").split(">;")[0] if link else ""
            assert not link or link.endswith('; rel="next"')
    assert pages == [[CAROL, DAN, BOB], [ERIN]]


def test_someone_who_took_part_in_nothing_has_an_empty_book(
    web_server: WebServer, exchange: dict[str, str]
) -> None:
    assert book(web_server, exchange[STRANGER]) == []


def test_the_book_needs_authentication(web_server: WebServer, exchange: dict[str, str]) -> None:
    with web_server.client() as http:
        response = http.get("/api/contacts")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "authentication required"}
