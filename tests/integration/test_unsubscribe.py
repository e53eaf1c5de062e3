"""Unsubscribing from a task by the List-Unsubscribe link of a notification (RFC 8058)."""

from __future__ import annotations

import httpx
from sqlmodel import Session, select

from qmail import models
from tests.conftest import eml_bytes
from tests.integration.test_ingest import FIRST, INTAKE
from tests.integration.test_notifications import to
from tests.integration.test_threads import address, branches


def unsubscribe_url(smtp_server, web_server, email: str) -> str:
    (mail,) = to(smtp_server.store, email)
    url = mail["List-Unsubscribe"].strip("<>")
    # The test app listens on its own port; the path is what the link carries.
    return web_server.base_url + url[url.index("/unsubscribe/") :]


def mutes(store) -> list[tuple[int, int]]:
    with Session(store.engine) as session:
        return [(m.task_id, m.person_id) for m in session.exec(select(models.Mute)).all()]


def test_one_click_unsubscribe_mutes_the_task_for_that_person(smtp_server, web_server, team):
    store = smtp_server.store
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    url = unsubscribe_url(smtp_server, web_server, "bob@example.com")
    page = httpx.get(url)  # a mail scanner, or the person looking first
    assert page.status_code == 200 and "Stop mail about task #1?" in page.text
    assert mutes(store) == []
    # What a mail program sends for RFC 8058 one-click: no cookie, no CSRF token.
    answer = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "Unsubscribed" in answer.text
    assert mutes(store) == [(1, team["bob@example.com"])]
    assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert len(mutes(store)) == 1
    main = branches(store)[0]
    smtp_server.send(
        eml_bytes("intake_followup_in_reply_to"), address(store, main.id, "carol@acme.test")
    )
    assert len(to(store, "bob@example.com")) == 1
    assert len(to(store, "alice@example.com")) == 2


def test_damaged_unsubscribe_link_changes_nothing(smtp_server, web_server, team):
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    url = unsubscribe_url(smtp_server, web_server, "bob@example.com")
    for damaged in (url[:-3], url.replace("/un_", "/ml_")):
        assert httpx.post(damaged, data={"List-Unsubscribe": "One-Click"}).status_code == 400
        assert httpx.get(damaged).status_code == 400
    assert mutes(smtp_server.store) == []
