"""The whole way once: mail in through the real SMTP server, out through the real JSON API."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from qmail.auth.api_tokens import create_api_token
from qmail.core.mail import Address
from qmail.models import Person
from qmail.people import get_person
from tests.conftest import eml_bytes, expected
from tests.integration.test_ingest import INTAKE, NOW_FOR_PEOPLE


@pytest.fixture
def alice_token(store) -> str:
    """A bearer token for Alice, a team member (example.com is the team's domain)."""
    with Session(store.engine) as session:
        alice = get_person(session, Address("alice@example.com", "Alice"), NOW_FOR_PEOPLE)
        token = create_api_token(session, alice)
        session.commit()
        return token


def only_task(web_server, token: str) -> dict:
    with web_server.client(token) as client:
        (item,) = client.get("/api/tasks").json()["items"]
        return client.get(f"/api/tasks/{item['number']}").json()


def test_cyrillic_subject_and_koi8r_body_arrive_readable(smtp_server, web_server, alice_token):
    smtp_server.send(eml_bytes("parse_koi8r"), INTAKE, sender="ivan@example.ru")
    task = only_task(web_server, alice_token)
    assert task["title"] == "Сверка финансов"
    (message,) = task["branches"][0]["messages"]
    assert message["author"] == {"email": "ivan@example.ru", "name": "Иван Петров"}
    assert message["text"] == expected("parse_koi8r")["text"]  # a sign-off without "-- " stays
    assert message["quoted"] == ""


def test_html_only_mail_arrives_as_readable_text_without_hostile_html(
    smtp_server, web_server, alice_token
):
    smtp_server.send(eml_bytes("parse_html_only"), INTAKE, sender="grace@example.org")
    (message,) = only_task(web_server, alice_token)["branches"][0]["messages"]
    golden = expected("parse_html_only")
    full = message["text"] + message["quoted"]
    for fragment in golden["text_contains"]:
        assert fragment in full
    for fragment in golden["text_excludes"]:
        assert fragment not in full


def test_attachment_with_a_non_ascii_name_downloads_intact(smtp_server, web_server, alice_token):
    smtp_server.send(eml_bytes("parse_attachment_rfc2231"), INTAKE, sender="buh@example.ru")
    (message,) = only_task(web_server, alice_token)["branches"][0]["messages"]
    listed = [(a["filename"], a["content_type"], a["size"]) for a in message["attachments"]]
    assert listed == [tuple(item) for item in expected("parse_attachment_rfc2231")["attachments"]]
    with web_server.client(alice_token) as client:
        download = client.get(message["attachments"][0]["url"])
    assert download.status_code == 200
    assert len(download.content) == 28
    assert download.headers["content-type"] == "application/pdf"
    assert (
        "filename*=UTF-8''%D0%A1%D1%87%D1%91%D1%82%20%E2%84%965.pdf"
        in (download.headers["content-disposition"])
    )


def test_inline_image_and_attachment_of_apple_mail_belong_to_their_message(
    smtp_server, web_server, alice_token
):
    smtp_server.send(eml_bytes("parse_apple_mixed_related"), INTAKE, sender="mia@icloud.example")
    (message,) = only_task(web_server, alice_token)["branches"][0]["messages"]
    assert [a["filename"] for a in message["attachments"]] == [
        "floorplan.png",
        "contract-signed.pdf",
    ]
    assert message["text"] == expected("parse_apple_mixed_related")["text"]


def test_client_reply_by_token_shows_in_the_api_with_its_quote_removed(
    smtp_server, web_server, alice_token
):
    from tests.integration.test_ingest import author_address, open_first_task

    open_first_task(smtp_server)
    raw = eml_bytes("reply_outlook_desktop_en")
    sender, address = author_address(smtp_server.store, raw)
    smtp_server.send(raw, address, sender=sender)
    _first, reply = only_task(web_server, alice_token)["branches"][0]["messages"]
    golden = expected("reply_outlook_desktop_en")
    assert reply["author"]["email"] == sender == "tom.baker@acme.example"
    assert reply["text"] == golden["text"]
    assert all(fragment in reply["quoted"] for fragment in golden["quoted_contains"])
    assert reply["source"] == "email"


def test_notification_in_the_maildir_is_answered_and_the_answer_lands_in_the_thread(
    smtp_server, web_server, team, tmp_path
):
    """The whole loop: a client's mail, the team's notification delivered by the worker to
    the real Maildir, a reply to its Reply-To through the real SMTP server, the magic link
    in it signing the team member in."""
    import asyncio
    import email
    import email.policy
    import re
    from email.message import EmailMessage

    import httpx

    from qmail.outbound import delivery

    store = smtp_server.store
    smtp_server.send(eml_bytes("intake_thunderbird_en"), INTAKE, sender="carol@acme.test")
    maildir = tmp_path / "outbox"
    counts = asyncio.run(
        delivery.send_pending(store.engine, store.settings, delivery.MaildirTransport(maildir))
    )
    assert counts.sent == 3  # Alice, Bob, and Carol's acknowledgement
    delivered = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((maildir / "new").iterdir())
    ]
    (to_bob,) = [
        mail for mail in delivered if mail["To"].addresses[0].addr_spec == "bob@example.com"
    ]
    # Bob answers from his mail program.
    answer = EmailMessage()
    answer["From"] = "Bob <bob@example.com>"
    answer["To"] = to_bob["Reply-To"]
    answer["Subject"] = "Re: " + to_bob["Subject"]
    answer["Message-ID"] = "<bob-answer-1@example.com>"
    answer["In-Reply-To"] = to_bob["Message-ID"]
    answer["References"] = f"{to_bob['References']} {to_bob['Message-ID']}"
    quoted = "\n".join(
        "> " + line for line in to_bob.get_body(("plain",)).get_content().splitlines()
    )
    answer.set_content(f"I'll send the corrected invoice today.\n\n{quoted}\n")
    raw = answer.as_bytes(policy=email.policy.SMTP)  # CRLF line ends, as on the wire
    smtp_server.send(raw, to_bob["Reply-To"].addresses[0].addr_spec, sender="bob@example.com")
    with web_server.client(alice_token_for(store)) as client:
        thread = client.get("/api/tasks/1").json()["branches"][0]["messages"]
    assert [(m["author"]["email"], m["text"]) for m in thread] == [
        ("carol@acme.test", expected("intake_thunderbird_en")["text"]),
        ("bob@example.com", "I'll send the corrected invoice today."),
    ]

    # The magic link in Bob's mail signs him in (GET shows a form, POST spends it) and
    # lands on the task.
    def open_in_qmail(mail: EmailMessage) -> httpx.Response:
        link = re.search(
            r"http://127\.0\.0\.1:8000(/auth/magic/\S+)", mail.get_body(("plain",)).get_content()
        )
        assert link is not None
        with httpx.Client(base_url=web_server.base_url) as browser:
            form = browser.get(link.group(1))
            csrf = re.search(r'name="_csrf_token" value="([^"]+)"', form.text)
            assert csrf is not None
            signed_in = browser.post(link.group(1), data={"_csrf_token": csrf.group(1)})
            assert signed_in.status_code == 303
            assert signed_in.headers["location"] == "/tasks/1"
            return browser.get(signed_in.headers["location"])

    assert "Invoice 2024-17 is missing a line" in open_in_qmail(to_bob).text
    # Carol's acknowledgement still signs her in after she signed in another way.
    (to_carol,) = [
        mail for mail in delivered if mail["To"].addresses[0].addr_spec == "carol@acme.test"
    ]
    with Session(store.engine) as session:
        carol = session.exec(select(Person).where(Person.email == "carol@acme.test")).one()
    fresh = f"/auth/magic/{store.links.make_login(carol.id)}"
    with httpx.Client(base_url=web_server.base_url) as browser:
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', browser.get(fresh).text)
        assert csrf is not None
        assert browser.post(fresh, data={"_csrf_token": csrf.group(1)}).status_code == 303
    assert "I&#39;ll send the corrected invoice today." in open_in_qmail(to_carol).text


def alice_token_for(store) -> str:
    with Session(store.engine) as session:
        alice = get_person(session, Address("alice@example.com"), NOW_FOR_PEOPLE)
        token = create_api_token(session, alice)
        session.commit()
    return token
