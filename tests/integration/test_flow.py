"""The whole way once: mail in through the real SMTP server, out through the real JSON API."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from qmail.apitokens import create_api_token
from qmail.core.mail import Address
from qmail.people import get_person
from tests.conftest import eml_bytes, expected
from tests.integration.test_ingest import INTAKE, NOW_FOR_PEOPLE


@pytest.fixture
def alice_token(store) -> str:
    """A bearer token for Alice, a team member (example.com is the team's domain)."""
    with Session(store.engine) as session:
        alice = get_person(
            session, Address("alice@example.com", "Alice"), store.settings, NOW_FOR_PEOPLE
        )
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
    from tests.integration.test_ingest import open_first_task, token_for

    open_first_task(smtp_server)
    address = token_for(smtp_server.store, 1, "carol@acme.test")
    smtp_server.send(eml_bytes("reply_outlook_desktop_en"), address, sender="carol@acme.test")
    _first, reply = only_task(web_server, alice_token)["branches"][0]["messages"]
    golden = expected("reply_outlook_desktop_en")
    assert reply["author"]["email"] == "carol@acme.test"
    assert reply["text"] == golden["text"]
    assert all(fragment in reply["quoted"] for fragment in golden["quoted_contains"])
    assert reply["source"] == "email"
