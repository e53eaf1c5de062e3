"""Who sees the hidden branch: every kind of reader against every way of reading.

One task with a main branch and a hidden branch, built through the real SMTP server and
the real API:

1. Alice and Frank are the team when Carol (a client) mails task 1 in: all three take part.
2. Alice answers privately (her private reply address), copying Carol: a hidden branch
   opens with Alice and Frank; Carol is refused, not added.
3. Frank answers in the hidden branch (API): Alice is told by mail.
4. Bob joins the team only now, so he is in no hidden branch, and writes in the main
   branch (API); Carol answers him by mail.  Everyone on the main branch gets mail.
5. Dave, a client of another company, mails task 2 in.  Eve has an account and no task.

Each cell (reader x way) is its own test: the hidden branch must show for Alice, and for
nobody else, whether read through the query helpers, the API, the rendered page, the mail
qmail sends out, or a search for its words (the search page and the API's ``q``).
"""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default as default_policy

import pytest
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible, reader_of
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.core.mail import Address
from qmail.errors import NotFound
from qmail.outbound.outbox import mail_bytes
from qmail.people import Team, get_person
from qmail.queries.tasks import read_task
from tests.conftest import eml_bytes
from tests.integration.conftest import InProcessWeb, SmtpServer
from tests.integration.test_ingest import FIRST, INTAKE
from tests.integration.test_pages import client_mail
from tests.integration.test_threads import address, branches

ALICE, BOB, FRANK = "alice@example.com", "bob@example.com", "frank@example.com"
CAROL, DAVE, EVE = "carol@acme.test", "dave@globex.test", "eve@initech.test"
FRANK_SECRET = "Frank agrees: the zebra-7731 lapse stays between us"
HIDDEN_MARKERS = ("contract lapsed", "zebra-7731")  # Alice's private mail, Frank's answer
JOINED = datetime(2024, 6, 1, tzinfo=UTC)

# reader -> (may see task 1, may see its hidden branch)
READERS = {
    ALICE: (True, True),  # team, member of the hidden branch
    BOB: (True, False),  # team, not a member of it
    CAROL: (True, False),  # the client of task 1
    DAVE: (False, False),  # the client of task 2
    EVE: (False, False),  # an account with no task at all
}
WAYS = ("read_task", "branch_visible", "api", "page", "mail", "search_page", "search_api")
HIDDEN_WORDS = ("zebra 7731", "contract lapsed")  # the words of HIDDEN_MARKERS


def add_people(store: Context, *addresses: Address) -> None:
    with Session(store.engine) as session:
        for found in addresses:
            get_person(session, found, JOINED)
        session.commit()


def token_for(store: Context, email_address: str) -> str:
    with Session(store.engine) as session:
        person = session.exec(select(models.Person).where(models.Person.email == email_address))
        token = create_api_token(session, person.one())
        session.commit()
    return token


def post_as(web_app: InProcessWeb, token: str, branch_id: int | None, text: str) -> None:
    with web_app.client(token) as client:
        answer = client.post("/api/tasks/1/messages", json={"branch_id": branch_id, "text": text})
    assert answer.status_code == 201, answer.text


def private_reply_copying_the_client() -> bytes:
    """Alice's private mail, copying Carol only (Bob must not be in the team yet)."""
    raw = eml_bytes("team_private_reply")
    copied = b"Cc: Bob Builder <bob@example.com>, Carol Client <carol@acme.test>"
    assert copied in raw
    return raw.replace(copied, b"Cc: Carol Client <carol@acme.test>")


@pytest.fixture
def world(smtp_server: SmtpServer, web_app: InProcessWeb) -> models.Branch:
    """The task of the module docstring; returns its hidden branch."""
    store = smtp_server.store
    add_people(store, Address(ALICE, "Alice Admin"), Address(FRANK, "Frank Fixer"))
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender=CAROL)
    (main,) = branches(store)
    private = address(store, main.id, ALICE, private=True)
    smtp_server.send(private_reply_copying_the_client(), private, sender=ALICE)
    _, hidden = branches(store)
    post_as(web_app, token_for(store, FRANK), hidden.id, FRANK_SECRET)
    add_people(store, Address(BOB, "Bob Builder"), Address(EVE, "Eve Outsider"))
    post_as(web_app, token_for(store, BOB), main.id, "Bob here: a corrected invoice follows.")
    reply = eml_bytes("intake_followup_in_reply_to")
    smtp_server.send(reply, address(store, main.id, CAROL), sender=CAROL)
    smtp_server.send(client_mail(DAVE, "Globex order status"), INTAKE, sender=DAVE)
    assert [branch.id for branch in branches(store)] == [main.id, hidden.id]
    return hidden


def person(store: Context, email_address: str) -> Reader:
    with Session(store.engine) as session:
        statement = select(models.Person).where(models.Person.email == email_address)
        return reader_of(session.exec(statement).one(), Team.of(store.settings))


def shows_hidden(text: str) -> bool:
    flat = " ".join(text.split())
    return any(marker in flat for marker in HIDDEN_MARKERS)


def mail_text(raw: bytes) -> str:
    """Everything a recipient can read in a mail: its subject and every text part."""
    mail = email.message_from_bytes(raw, policy=default_policy)
    parts = [str(mail["Subject"])]
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def read_by_query_helper(store: Context, reader: Reader, hidden: models.Branch) -> bool:
    with Session(store.engine) as session:
        task = read_task(session, reader, 1)
    ids = [branch.id for branch in task.branches]
    shown = hidden.id in ids
    assert shown == shows_hidden(str(task))
    return shown


def read_by_branch_visible(store: Context, reader: Reader, hidden: models.Branch) -> bool:
    with Session(store.engine) as session:
        statement = select(models.Branch.id).where(
            models.Branch.task_id == hidden.task_id, branch_visible(reader)
        )
        ids = list(session.exec(statement.order_by(col(models.Branch.id))).all())
    return hidden.id in ids


def read_by_api(web_app: InProcessWeb, token: str, hidden: models.Branch) -> bool:
    with web_app.client(token) as client:
        answer = client.get("/api/tasks/1")
    if answer.status_code == 404:
        raise NotFound(answer.text)
    assert answer.status_code == 200
    shown = hidden.id in [branch["id"] for branch in answer.json()["branches"]]
    assert shown == shows_hidden(answer.text)
    return shown


def read_by_page(web_app: InProcessWeb, token: str) -> bool:
    with web_app.client(token) as client:
        page = client.get("/tasks/1")
    if page.status_code == 404:
        assert not shows_hidden(page.text) and "Hidden from the client" not in page.text
        raise NotFound(page.text)
    assert page.status_code == 200
    shown = shows_hidden(page.text)
    assert shown == ("Hidden from the client" in page.text)
    return shown


def read_by_mail(store: Context, email_address: str) -> bool:
    with Session(store.engine) as session:
        rows = session.exec(select(models.Outbox).where(models.Outbox.recipient == email_address))
        texts = [mail_text(mail_bytes(session, row)) for row in rows]
    if email_address != EVE:
        assert texts, f"{email_address} was sent no mail: the cell would prove nothing"
    return any(shows_hidden(text) for text in texts)


def read_by_search_page(web_app: InProcessWeb, token: str) -> bool:
    """Whether searching the hidden branch's words finds task 1, with a snippet of them."""
    found = []
    for words in HIDDEN_WORDS:
        with web_app.client(token) as client:
            page = client.get("/search", params={"q": words})
        assert page.status_code == 200
        hit = 'href="/tasks/1' in page.text
        assert hit == ("<mark>" in page.text) == ('class="snippet"' in page.text)
        found.append(hit)
    return any(found)


def read_by_search_api(web_app: InProcessWeb, token: str) -> bool:
    found = []
    for words in HIDDEN_WORDS:
        with web_app.client(token) as client:
            answer = client.get("/api/tasks", params={"q": words})
        assert answer.status_code == 200
        found.append([item["number"] for item in answer.json()["items"]] == [1])
    return any(found)


def read(
    way: str, store: Context, web_app: InProcessWeb, reader: str, hidden: models.Branch
) -> bool:
    """Whether ``reader`` sees the hidden branch this way; NotFound when not even the task."""
    if way == "read_task":
        return read_by_query_helper(store, person(store, reader), hidden)
    if way == "branch_visible":
        return read_by_branch_visible(store, person(store, reader), hidden)
    if way == "api":
        return read_by_api(web_app, token_for(store, reader), hidden)
    if way == "page":
        return read_by_page(web_app, token_for(store, reader))
    if way == "search_page":
        return read_by_search_page(web_app, token_for(store, reader))
    if way == "search_api":
        return read_by_search_api(web_app, token_for(store, reader))
    return read_by_mail(store, reader)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("reader", list(READERS), ids=lambda reader: reader.split("@")[0])
def test_hidden_branch_shows_exactly_to_its_members(world, store, web_app, reader, way):
    sees_task, sees_hidden = READERS[reader]
    if not sees_task and way in ("read_task", "api", "page"):
        with pytest.raises(NotFound):
            read(way, store, web_app, reader, world)
        return
    assert read(way, store, web_app, reader, world) is sees_hidden
