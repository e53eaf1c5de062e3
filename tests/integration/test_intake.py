"""The public contact form: a visitor's message, the confirmation mail, and the task it opens.

The world: Alice and Bob on the team (example.com); Dana, a visitor at client.test, writes
on the form.  The app runs in-process with ``intake.enabled`` and one allowed site,
``http://shop.test``; what we send is read from the outbox, as the worker would send it.
"""

from __future__ import annotations

import re
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from itsdangerous.timed import TimestampSigner
from sqlmodel import Session, col, select

from qmail import models
from qmail.context import Context
from qmail.web.app import create_app
from tests.integration.conftest import InProcessWeb, serve_web

SHOP = "http://shop.test"
SENT = "Thank you. Please confirm your address"
ASK = "Send your message to qmail?"
DONE = "Thank you, your message is with qmail"
INVALID = "This confirmation link has expired or is not valid"
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
CONFIRM_LINK = re.compile(r"https?://\S+/intake/confirm/\S+")
DANA = {
    "email": "Dana@Client.test",
    "name": "Dana Visitor",
    "subject": "[sales] Quote for 40 licences",
    "message": "Hello, could you send us a quote for 40 licences?\n\nDana",
    "website": "",
}


def intake_app(store: Context, **intake: Any) -> InProcessWeb:
    settings = store.settings.replace(
        intake={"enabled": True, "allowed_origins": (SHOP,), **intake}
    )
    return InProcessWeb(create_app(settings, store.engine))


@pytest.fixture
def web(store: Context) -> InProcessWeb:
    return intake_app(store)


def outbox(store: Context, kind: str | None = None) -> list[models.Outbox]:
    with Session(store.engine) as session:
        statement = select(models.Outbox).order_by(col(models.Outbox.id))
        if kind is not None:
            statement = statement.where(models.Outbox.kind == kind)
        return list(session.exec(statement).all())


def submissions(store: Context) -> list[models.IntakeSubmission]:
    with Session(store.engine) as session:
        return list(session.exec(select(models.IntakeSubmission)).all())


def tasks(store: Context) -> list[models.Task]:
    with Session(store.engine) as session:
        return list(session.exec(select(models.Task)).all())


def parsed(row: models.Outbox) -> EmailMessage:
    return message_from_bytes(row.raw, policy=policy.default)  # type: ignore[return-value]


def confirm_path(row: models.Outbox) -> str:
    """The path of the confirmation link in a request mail (its text part)."""
    match = CONFIRM_LINK.search(row.text)
    assert match, row.text
    return "/" + match.group(0).split("/", 3)[3]


def confirm(client: Any, path: str) -> Any:
    """What the visitor does: open the link, press the button."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = CSRF_FIELD.search(page.text)
    assert token, page.text
    return client.post(path, data={"_csrf_token": token.group(1)})


def test_message_opens_a_task_once_its_address_is_confirmed(store, web, team):
    with web.client() as client:
        answer = client.post("/intake", data=DANA)
        assert answer.status_code == 200
        assert SENT in answer.text
        # Nothing is opened and nobody is created before the address is confirmed.
        assert tasks(store) == []
        (request,) = outbox(store)
        assert (request.kind, request.recipient, request.person_id) == (
            "intake",
            "dana@client.test",
            None,
        )
        mail = parsed(request)
        assert mail["Subject"] == "Please confirm your message to qmail"
        assert mail["To"] == "dana@client.test"
        assert mail["Auto-Submitted"] == "auto-generated"
        assert 'The subject began: "[sales] Quote for 40 licences"' in request.text
        assert "licences?" not in request.text  # the message itself is never sent out
        path = confirm_path(request)

        page = client.get(path)
        assert ASK in page.text
        assert "dana@client.test" in page.text
        assert tasks(store) == []  # opening the link (a mail scanner) changes nothing
        done = confirm(client, path)
        assert done.status_code == 200
        assert DONE in done.text

    (task,) = tasks(store)
    assert task.title == "Quote for 40 licences"
    with Session(store.engine) as session:
        (message,) = session.exec(select(models.Message)).all()
        author = session.get(models.Person, message.author_id)
        tags = session.exec(select(models.Tag.name)).all()
        (submission,) = session.exec(select(models.IntakeSubmission)).all()
    assert message.text == "Hello, could you send us a quote for 40 licences?\n\nDana"
    assert (author.email, author.name, author.role) == ("dana@client.test", "Dana Visitor", None)
    assert tags == ["sales"]
    assert submission.task_id == task.id and submission.confirmed_at is not None
    # As if Dana had mailed tasks@example.com: she is acknowledged, the team is told.
    (ack,) = outbox(store, "ack")
    assert ack.recipient == "dana@client.test"
    assert parsed(ack)["Subject"] == "[#1] Quote for 40 licences"
    told = sorted(row.recipient for row in outbox(store, "notification"))
    assert told == ["alice@example.com", "bob@example.com"]


def test_confirming_twice_opens_one_task(store, web, team):
    with web.client() as client:
        client.post("/intake", data=DANA)
        path = confirm_path(outbox(store, "intake")[0])
        token = CSRF_FIELD.search(client.get(path).text)
        assert token
        first = client.post(path, data={"_csrf_token": token.group(1)})
        again = client.post(path, data={"_csrf_token": token.group(1)})
        page = client.get(path)
    assert DONE in first.text and DONE in again.text and DONE in page.text
    assert len(tasks(store)) == 1
    assert len(outbox(store, "ack")) == 1
    assert len(outbox(store, "notification")) == 2


def test_forged_and_expired_links_are_refused(store, web, monkeypatch):
    with web.client() as client:
        signed_at = int(time.time()) - store.settings.intake.confirm_ttl - 5
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
        client.post("/intake", data=DANA)  # its link signed ttl + 5 seconds ago
        monkeypatch.undo()
        expired = confirm_path(outbox(store, "intake")[0])
        prefix, _, token = expired.rpartition("/")
        forged = f"{prefix}/{token[:-3]}{'AAA' if not token.endswith('AAA') else 'BBB'}"
        for path in (expired, forged, "/intake/confirm/in_WzEsImFiYyJd.forged"):
            page = client.get(path)
            assert page.status_code == 400, path
            assert INVALID in page.text
            assert client.post(path).status_code == 403  # no CSRF token: refused first
    assert tasks(store) == []
    (submission,) = submissions(store)
    assert submission.confirmed_at is None


def test_a_link_for_a_deleted_submission_does_not_confirm_a_newer_one(store, web):
    """SQLite may give a deleted row's id to the next row; the link's nonce tells them apart."""
    with web.client() as client:
        client.post("/intake", data=DANA)
        old_path = confirm_path(outbox(store, "intake")[0])
        with Session(store.engine) as session:
            for row in session.exec(select(models.IntakeSubmission)).all():
                session.delete(row)
            session.commit()
        client.post("/intake", data={**DANA, "email": "erin@client.test"})
        page = client.get(old_path)
    assert page.status_code == 400
    assert INVALID in page.text


def test_too_many_messages_from_one_address_are_refused_with_429(store, web):
    limit = store.settings.intake.per_address_per_hour
    with web.client() as client:
        for _ in range(limit):
            assert client.post("/intake", data=DANA).status_code == 200
        refused = client.post("/intake", data=DANA, headers={"Accept": "application/json"})
        page = client.post("/intake", data=DANA)
        other = client.post("/intake", data={**DANA, "email": "erin@client.test"})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3600"
    assert refused.json() == {
        "error": "Too many messages from this address. Please try again in an hour."
    }
    assert page.status_code == 429
    assert "Too many messages from this address" in page.text
    assert other.status_code == 200
    assert len(outbox(store, "intake")) == limit + 1


def test_too_many_messages_from_one_ip_are_refused_with_429(store):
    web = intake_app(store, per_ip_per_hour=2)
    with web.client() as client:
        for name in ("dana", "erin"):
            email = f"{name}@client.test"
            assert client.post("/intake", data={**DANA, "email": email}).status_code == 200
        refused = client.post(
            "/intake",
            data={**DANA, "email": "fred@client.test"},
            headers={"Accept": "application/json"},
        )
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "Too many messages from your network. Please try again in an hour."
    }
    assert len(submissions(store)) == 2


def test_past_the_overall_hourly_cap_nobody_gets_a_confirmation_mail(store):
    web = intake_app(store, per_hour=2)
    with web.client() as client:
        for name in ("dana", "erin"):
            email = f"{name}@client.test"
            assert client.post("/intake", data={**DANA, "email": email}).status_code == 200
        refused = client.post(
            "/intake",
            data={**DANA, "email": "fred@other.test"},
            headers={"Accept": "application/json"},
        )
    assert refused.status_code == 429
    busy = "We are receiving too many messages. Please try again later."
    assert refused.json() == {"error": busy}
    assert [row.recipient for row in outbox(store)] == ["dana@client.test", "erin@client.test"]


def test_a_filled_in_honeypot_gets_a_thank_you_and_nothing_is_kept_or_sent(store, web):
    with web.client() as client:
        page = client.post("/intake", data={**DANA, "website": "http://spam.test"})
        json_answer = client.post(
            "/intake",
            data={**DANA, "website": "http://spam.test"},
            headers={"Accept": "application/json", "Origin": SHOP},
        )
    assert page.status_code == 200 and SENT in page.text
    assert json_answer.status_code == 200 and json_answer.json()["status"] == "sent"
    assert submissions(store) == []
    assert outbox(store) == []


@pytest.mark.parametrize(
    ("email", "message", "problem"),
    [
        ("tasks@example.com", "Hello", "Please give an address of your own."),
        ("x@support.example.com", "Hello", "Please give an address of your own."),
        ("dana@client.test, erin@client.test", "Hello", "Please give one valid email address."),
        ("dana@client.test", "   ", "Please write a message."),
    ],
)
def test_a_bad_message_is_shown_again_with_the_problem(store, web, email, message, problem):
    with web.client() as client:
        page = client.post("/intake", data={**DANA, "email": email, "message": message})
        answer = client.post(
            "/intake",
            data={**DANA, "email": email, "message": message},
            headers={"Accept": "application/json"},
        )
    assert page.status_code == 400
    assert problem in page.text
    assert "Quote for 40 licences" in page.text  # what they typed is kept in the form
    assert answer.status_code == 400 and answer.json() == {"error": problem}
    assert outbox(store) == [] and submissions(store) == []


def test_the_form_is_not_there_unless_enabled(store, web_app):
    with web_app.client() as client:
        assert client.get("/intake").status_code == 404
        assert client.post("/intake", data=DANA).status_code == 404
        assert client.get("/intake/confirm/in_anything").status_code == 404
    assert submissions(store) == []


def test_only_allowed_sites_may_post_and_only_they_get_cors_headers(store, web):
    json = {"Accept": "application/json"}
    with web.client() as client:
        allowed = client.post("/intake", data=DANA, headers={**json, "Origin": SHOP})
        evil = client.post(
            "/intake",
            data={**DANA, "email": "erin@client.test"},
            headers={**json, "Origin": "http://evil.test"},
        )
        null = client.post(
            "/intake",
            data={**DANA, "email": "fred@client.test"},
            headers={**json, "Origin": "null"},
        )
        own = client.post(
            "/intake",
            data={**DANA, "email": "gina@client.test"},
            headers={"Origin": web.base_url},
        )
        other_name = client.post(  # qmail reached as localhost: its own page all the same
            "/intake",
            data={**DANA, "email": "hans@client.test"},
            headers={"Origin": "http://localhost:8000", "Host": "localhost:8000"},
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-credentials" not in allowed.headers
    assert allowed.json() == {
        "status": "sent",
        "message": "Thank you. Please confirm your address: we have sent you a mail with a"
        " link. Your message reaches us once you follow it.",
    }
    for refused in (evil, null):
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers
    assert other_name.status_code == 200
    assert sorted(row.email for row in submissions(store)) == [
        "dana@client.test",
        "gina@client.test",
        "hans@client.test",
    ]


def test_the_confirmation_mail_quotes_at_most_the_start_of_the_subject(store, web):
    subject = "Buy now at http://spam.test " + "x" * 150
    with web.client() as client:
        client.post("/intake", data={**DANA, "subject": subject})
    (request,) = outbox(store)
    quoted = re.search(r'The subject began: "([^"]*)"', request.text.replace("\n", " "))
    assert quoted is not None
    assert quoted.group(1) == subject[:59].rstrip() + "…"
    assert "Dana Visitor" not in request.text and "Dana Visitor" not in str(parsed(request)["To"])


def test_unconfirmed_messages_are_deleted_once_their_link_has_expired(store, web):
    with web.client() as client:
        client.post("/intake", data=DANA)
        with Session(store.engine) as session:
            (old,) = session.exec(select(models.IntakeSubmission)).all()
            old.created_at = old.created_at.replace(year=old.created_at.year - 1)
            session.add(old)
            session.commit()
        client.post("/intake", data={**DANA, "email": "erin@client.test"})
    assert [row.email for row in submissions(store)] == ["erin@client.test"]


def test_two_confirmations_at_the_same_moment_open_one_task(store, team):
    """Two clicks (or a scanner and a person) at once, through the real server."""
    settings = store.settings.replace(intake={"enabled": True})
    with serve_web(settings, store.engine) as server:
        clients = [server.client() for _ in range(2)]
        clients[0].post("/intake", data=DANA)
        path = confirm_path(outbox(store, "intake")[0])
        tokens = []
        for client in clients:
            found = CSRF_FIELD.search(client.get(path).text)
            assert found
            tokens.append(found.group(1))
        start = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def click(index: int) -> None:
            start.wait()
            answers[index] = clients[index].post(path, data={"_csrf_token": tokens[index]})

        threads = [threading.Thread(target=click, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for client in clients:
            client.close()
    assert [answer.status_code for answer in answers] == [200, 200]
    assert all(DONE in answer.text for answer in answers)
    (task,) = tasks(store)
    assert len(outbox(store, "ack")) == 1
    (submission,) = submissions(store)
    assert submission.task_id == task.id


def test_scripts_may_post_json_or_multipart(store, web):
    with web.client() as client:
        as_json = client.post("/intake", json={**DANA, "email": "dana@client.test"})
        as_multipart = client.post(
            "/intake",
            files={"attachment": ("a.txt", b"ignored")},
            data={**DANA, "email": "erin@client.test"},
            headers={"Accept": "application/json"},
        )
        garbled = client.post(
            "/intake", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        wrong_type = client.post("/intake", json={**DANA, "email": 42})
        plain = client.post(
            "/intake",
            content=b"email=x",
            headers={"Content-Type": "text/plain", "Accept": "application/json"},
        )
    assert (as_json.status_code, as_json.json()["status"]) == (200, "sent")
    assert (as_multipart.status_code, as_multipart.json()["status"]) == (200, "sent")
    assert garbled.status_code == 400
    assert garbled.json()["error"].startswith("The message could not be read")
    assert wrong_type.status_code == 400
    assert plain.status_code == 415
    assert plain.json() == {"error": "Please post the form as a form or as application/json."}
    assert sorted(row.email for row in submissions(store)) == [
        "dana@client.test",
        "erin@client.test",
    ]


def test_preflight_says_yes_to_allowed_sites_only(store, web):
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with web.client() as client:
        allowed = client.options("/intake", headers={**ask, "Origin": SHOP})
        evil = client.options("/intake", headers={**ask, "Origin": "http://evil.test"})
    assert allowed.status_code == 204, (allowed.headers, allowed.text)
    assert allowed.headers["access-control-allow-origin"] == SHOP, allowed.headers
    assert allowed.headers["access-control-allow-methods"] == "POST"
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    assert evil.status_code == 204
    assert "access-control-allow-origin" not in evil.headers
