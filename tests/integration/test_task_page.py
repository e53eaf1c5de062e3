"""The task page's one reply box (a branch, text, files), the team's forms (assignee,
participants), whose turn it is, clickable links, and a client's reply reopening a task.

The world of ``test_pages``: Carol (a client) opened task 1 by mail through the real SMTP
server; Alice and Bob (the team) take part.  Pages over real uvicorn + httpx; the file's
way to the client through the real outbox worker and a local aiosmtpd relay.
"""

# ruff: noqa: F811 (``world`` is a fixture imported from test_pages, then asked for by name)
from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import re
from email.message import EmailMessage

import httpx
import pytest
from sqlmodel import Session, col, select

from qmail import models, roles
from qmail.context import Context
from qmail.db import session_scope
from qmail.outbound.outbox import mail_bytes
from tests.conftest import wait_until
from tests.integration.browser import VIEWPORTS, launched, look_at, shots_dir, signed_in_page
from tests.integration.conftest import ScriptedRelay, serve_web
from tests.integration.test_auth import csrf_token, magic_link
from tests.integration.test_ingest import messages
from tests.integration.test_pages import (
    ALICE,
    BOB,
    CAROL,
    SECRET,
    add_person,
    event_kinds,
    open_hidden_branch,
    outbox_rows,
    post_form,
    signed_in,
    world,  # noqa: F401 (a fixture)
)
from tests.integration.test_threads import address, branches, person_id, tags, task_row

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 336  # 86,024 bytes: "84 KB"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def reply(
    client: httpx.Client, fields: dict, files: list | None = None, page: str = "/tasks/1"
) -> httpx.Response:
    """The reply box, as a browser submits it: multipart, with the page's CSRF token."""
    token = csrf_token(client.get(page))
    return client.post(
        "/tasks/1/messages", data={**fields, "_csrf_token": token}, files=files or []
    )


def attachments(store: Context, message_id: int) -> list[tuple[str, str, bytes]]:
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.Attachment)
            .where(models.Attachment.message_id == message_id)
            .order_by(col(models.Attachment.id))
        ).all()
        return [(row.filename, row.content_type, row.content) for row in rows]


def files_of(raw: bytes) -> dict[str, bytes]:
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    return {part.get_filename(): part.get_content() for part in mail.iter_attachments()}


def test_reply_with_files_shows_them_and_the_notifications_carry_them(world, web_server):
    files = [
        ("files", ("C:\\scans\\invoice.png", PNG, "image/png")),
        ("files", ("invoice.pdf", PDF, "application/pdf")),
        ("files", ("logo.svg", SVG, "image/svg+xml")),
    ]
    with signed_in(world, web_server, ALICE) as alice:
        answer = reply(alice, {"branch_id": "1", "text": "The corrected invoice."}, files)
        assert answer.status_code == 303, answer.text
        posted = messages(world)[-1]
        page = alice.get("/tasks/1").text
    assert attachments(world, posted.id) == [
        ("invoice.png", "image/png", PNG),
        ("invoice.pdf", "application/pdf", PDF),
        ("logo.svg", "image/svg+xml", SVG),
    ]
    png_id, _, svg_id = (int(i) for i in _attachment_ids(world, posted.id))
    assert "84 KB" in page and "10 KB" in page
    assert f'<img src="/api/attachments/{png_id}"' in page  # a raster image is previewed
    assert f'<img src="/api/attachments/{svg_id}"' not in page  # an SVG never is
    with Session(world.engine) as session:
        query = select(models.Outbox).where(models.Outbox.about_message_id == posted.id)
        rows = session.exec(query).all()
        new = {row.recipient: mail_bytes(session, row) for row in rows}
        kept = [session.get(models.OutboxStencil, row.stencil_id) for row in rows]
    assert sorted(new) == [BOB, CAROL]
    for raw in new.values():
        assert files_of(raw) == {"invoice.png": PNG, "invoice.pdf": PDF, "logo.svg": SVG}
    # Bob (team) and Carol read different stencils; the files are kept in one of them.
    assert len({stencil.id for stencil in kept if stencil}) == 2
    assert sorted(bool(stencil.files) for stencil in kept if stencil) == [False, True]


def _attachment_ids(store: Context, message_id: int) -> list[int]:
    with Session(store.engine) as session:
        statement = select(models.Attachment.id).where(models.Attachment.message_id == message_id)
        return sorted(i for i in session.exec(statement) if i is not None)


def test_a_file_alone_is_a_reply_and_nothing_at_all_is_not(world, web_server):
    with signed_in(world, web_server, CAROL) as carol:
        only_file = [("files", ("scan.pdf", PDF, "application/pdf"))]
        assert reply(carol, {"branch_id": "1", "text": ""}, only_file).status_code == 303
        empty_file = [("files", ("", b"", "application/octet-stream"))]
        assert reply(carol, {"branch_id": "1", "text": " "}, empty_file).status_code == 400
    (_, posted) = messages(world)
    assert (posted.text, attachments(world, posted.id)) == (
        "",
        [("scan.pdf", "application/pdf", PDF)],
    )


def test_one_reply_box_offers_only_the_branches_the_reader_may_post_in(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert open_hidden_branch(alice, world).status_code == 303
        team_page = alice.get("/tasks/1").text
    main, hidden = branches(world)
    assert team_page.count('id="reply-text"') == 1 and team_page.count("<textarea") == 2
    assert f'<option value="{hidden.id}">Team only (hidden)' in team_page
    with signed_in(world, web_server, CAROL) as carol:
        client_page = carol.get("/tasks/1").text
        assert client_page.count('id="reply-text"') == 1
        assert f'value="{hidden.id}"' not in client_page
        assert f'<input type="hidden" name="branch_id" value="{main.id}">' in client_page
        forged = reply(carol, {"branch_id": str(hidden.id), "text": "let me in"})
        assert forged.status_code == 404
    assert [m.text for m in messages(world) if m.branch_id == hidden.id] == [SECRET]
    assert "let me in" not in str([m.text for m in messages(world)])


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/tasks/1/assignee", {"assignee": "1"}),
        ("/tasks/1/participants", {"email": "dan@globex.test"}),
        ("/tasks/1/participants/remove", {"person_id": "1"}),
        ("/tasks/1/tags", {"add": "x"}),
        ("/tasks/1/status", {"status": "closed"}),
    ],
)
def test_team_forms_refuse_a_client_and_do_not_exist_for_an_outsider(
    world, web_server, url, fields
):
    before = event_kinds(world)
    with signed_in(world, web_server, CAROL) as carol:
        assert post_form(carol, url, fields).status_code == 403
    add_person(world, "eve@initech.test", "Eve")
    with signed_in(world, web_server, "eve@initech.test") as eve:
        assert post_form(eve, url, fields, page="/").status_code == 404
    assert event_kinds(world) == before
    assert (task_row(world).status, task_row(world).assignee_id) == ("open", None)


def test_team_assigns_from_a_list_of_team_members_and_unassigns(world, web_server):
    bob, carol = person_id(world, BOB), person_id(world, CAROL)
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/tasks/1").text
        assert f'<option value="{bob}">Bob</option>' in page
        assert f'<option value="{carol}">' not in page  # a client is no assignee
        assert post_form(alice, "/tasks/1/assignee", {"assignee": str(bob)}).status_code == 303
        assert task_row(world).assignee_id == bob
        assert f'<option value="{bob}" selected>Bob</option>' in alice.get("/tasks/1").text
        refused = post_form(alice, "/tasks/1/assignee", {"assignee": str(carol)})
        assert refused.status_code == 400
        assert post_form(alice, "/tasks/1/assignee", {"assignee": ""}).status_code == 303
        page = alice.get("/tasks/1").text
    assert task_row(world).assignee_id is None
    assert [kind for kind in event_kinds(world) if kind[0] in ("assign", "unassign")] == [
        ("assign", BOB),
        ("unassign", ""),
    ]
    assert "assigned it to bob@example.com" in page and "unassigned it" in page


def test_team_adds_someone_new_by_address_and_removes_them(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        fields = {"email": "Dan@Globex.test", "name": "Dan Delivery"}
        assert post_form(alice, "/tasks/1/participants", fields).status_code == 303
        for bad in ("not-an-address", "a b@x.test", "reply+x@example.com", "<x@y.test>"):
            assert post_form(alice, "/tasks/1/participants", {"email": bad}).status_code == 400
        page = alice.get("/tasks/1").text
        assert "Dan Delivery" in page and "dan@globex.test" in page
        dan = person_id(world, "dan@globex.test")
        remove = {"person_id": str(dan)}
        assert post_form(alice, "/tasks/1/participants/remove", remove).status_code == 303
        assert post_form(alice, "/tasks/1/participants/remove", remove).status_code == 404
    main = branches(world)[0]
    with Session(world.engine) as session:
        assert session.get(models.BranchMember, (main.id, dan)) is None
    assert [k for k in event_kinds(world) if k[0].startswith("participant")] == [
        ("participant_added", "dan@globex.test"),
        ("participant_removed", "dan@globex.test"),
    ]


def test_the_team_sees_who_unsubscribed_and_the_client_does_not(world, web_server):
    with session_scope(world.engine) as session:
        session.add(models.Mute(task_id=task_row(world).id, person_id=person_id(world, CAROL)))
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/tasks/1").text
    people = page[page.index('id="participants"') :].split("</ul>")[0].split("</li>")
    (carol_entry,) = [entry for entry in people if "Carol Client" in entry]
    assert "Carol Client" in carol_entry and "unsubscribed" in carol_entry
    with signed_in(world, web_server, CAROL) as carol:
        assert "unsubscribed" not in carol.get("/tasks/1").text


def test_waiting_on_follows_who_wrote_last_in_the_public_discussion(world, web_server):
    with signed_in(world, web_server, ALICE) as alice:
        assert "Waiting on us" in alice.get("/tasks/1").text
        assert open_hidden_branch(alice, world).status_code == 303  # hidden: not an answer
        assert "Waiting on us" in alice.get("/tasks/1").text
        assert reply(alice, {"branch_id": "1", "text": "Fixed."}).status_code == 303
        assert "Waiting on client" in alice.get("/tasks/1").text
    with signed_in(world, web_server, CAROL) as carol:
        assert "Waiting on you" in carol.get("/tasks/1").text


def test_links_in_mail_text_are_clickable_and_hostile_ones_stay_text(world, web_server):
    text = (
        "See [the invoice](https://acme.test/inv?a=1&b=2) and https://acme.test/faq.\n"
        "[click](javascript:alert(1)) data:text/html,<b>x</b> <a href=x>raw</a>"
    )
    with signed_in(world, web_server, CAROL) as carol:
        assert reply(carol, {"branch_id": "1", "text": text}).status_code == 303
        page = carol.get("/tasks/1").text
    rel = 'rel="nofollow noopener noreferrer"'
    assert f'<a href="https://acme.test/inv?a=1&amp;b=2" {rel}>the invoice</a>' in page
    assert f'<a href="https://acme.test/faq" {rel}>https://acme.test/faq</a>.' in page
    assert "[click](javascript:alert(1))" in page and 'href="javascript' not in page
    assert "&lt;a href=x&gt;raw&lt;/a&gt;" in page and "<a href=x>" not in page


def test_upload_limits_are_those_of_mail(world, web_server):
    small = world.settings.replace(smtp={"max_message_size": 50_000})
    with serve_web(small, world.engine) as server, signed_in(world, server, CAROL) as carol:
        fits = [("files", ("a.bin", b"a" * 40_000, "application/octet-stream"))]
        assert reply(carol, {"branch_id": "1", "text": "fits"}, fits).status_code == 303
        big = [("files", ("big.bin", b"b" * 60_000, "application/octet-stream"))]
        too_large = reply(carol, {"branch_id": "1", "text": "too big"}, big)
        assert too_large.status_code == 413
        many = [("files", (f"{n}.txt", b"x", "text/plain")) for n in range(21)]
        too_many = reply(carol, {"branch_id": "1", "text": "too many"}, many)
        assert too_many.status_code == 400 and "at most 20 files" in too_many.text
    assert [m.text for m in messages(world)][1:] == ["fits"]


def test_a_file_replied_from_the_web_reaches_the_client_intact(
    world, web_server, relay, loop_thread
):
    """Alice replies with a file; the real outbox worker delivers it to a local relay."""
    handler = ScriptedRelay()
    delivering = dataclasses.replace(
        world, settings=world.settings.replace(outbound=dataclasses.asdict(relay(handler)))
    )
    with signed_in(world, web_server, ALICE) as alice:
        files = [("files", ("invoice.pdf", PDF, "application/pdf"))]
        fields = {"branch_id": "1", "text": "Here is the corrected invoice."}
        assert reply(alice, fields, files).status_code == 303
    posted = messages(world)[-1]
    (notification,) = [
        row
        for row in outbox_rows(world)
        if row.about_message_id == posted.id and row.recipient == CAROL
    ]
    sent_to_carol = f"<{notification.message_id}>".encode()

    async def start() -> asyncio.Task[None]:
        return asyncio.create_task(roles.deliverer(delivering, interval=0.05))

    worker = loop_thread.run(start())
    try:
        wait_until(lambda: any(sent_to_carol in raw for _, _, raw in handler.received), 20)
    finally:
        loop_thread.loop.call_soon_threadsafe(worker.cancel)
    (raw,) = [raw for _, rcpts, raw in handler.received if sent_to_carol in raw]
    assert [
        sender_and_recipients[1]
        for sender_and_recipients in handler.received
        if sent_to_carol in sender_and_recipients[2]
    ] == [[CAROL]]
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["To"] == f"Carol Client <{CAROL}>"
    assert "Here is the corrected invoice." in mail.get_body(("plain",)).get_content()
    assert files_of(raw) == {"invoice.pdf": PDF}


def mail_reply(sender: str, subject: str, text: str) -> bytes:
    mail = EmailMessage()
    mail["From"], mail["Subject"] = sender, subject
    mail["Message-ID"] = f"<{abs(hash((sender, text)))}@mail.test>"
    mail.set_content(text)
    return mail.as_bytes()


def test_a_clients_mail_reopens_a_closed_task_and_a_team_members_does_not(
    world, web_server, smtp_server
):
    main = branches(world)[0]
    with signed_in(world, web_server, ALICE) as alice:
        assert post_form(alice, "/tasks/1/status", {"status": "closed"}).status_code == 303
    thanks = mail_reply(ALICE, "Re: [#1] Invoice", "Closing this, thanks.")
    smtp_server.send(thanks, address(world, main.id, ALICE), sender=ALICE)
    assert task_row(world).status == "closed"
    again = mail_reply(CAROL, "Re: [#1] Invoice", "Sorry, one more line is missing.")
    smtp_server.send(again, address(world, main.id, CAROL), sender=CAROL)
    assert task_row(world).status == "open"
    assert [k for k in event_kinds(world) if k[0] in ("close", "reopen")] == [
        ("close", ""),
        ("reopen", "by replying"),
    ]
    with Session(world.engine) as session:
        reopened = session.exec(select(models.Event).where(models.Event.kind == "reopen")).one()
    assert reopened.person_id == person_id(world, CAROL)
    with signed_in(world, web_server, ALICE) as alice:
        page = alice.get("/tasks/1").text
    assert "status-open" in page and "reopened it by replying" in page


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_team_member_assigns_tags_and_replies_with_a_file_in_a_browser(
    world, web_server, request, tmp_path, viewport
):
    """Chromium, at a laptop's and a phone's width: the forms work as a person uses them."""
    folder = shots_dir(request)
    scan = tmp_path / "scan.png"
    scan.write_bytes(PNG)
    link = magic_link(world, web_server, person_id(world, ALICE))
    with launched() as browser:
        page = signed_in_page(browser, link, VIEWPORTS[viewport])
        page.goto(f"{web_server.base_url}/tasks/1")
        look_at(page, folder, "task")
        page.select_option("#assignee", label="Bob")
        page.get_by_role("button", name="Assign").click()
        page.wait_for_selector("#assignee option[selected]", state="attached")
        page.fill("#add-tag", "refund")
        page.get_by_role("button", name="Add tag").click()
        page.wait_for_selector("form.tag:has-text('refund')")
        page.fill("#reply-text", "The corrected invoice is attached.")
        page.set_input_files("#reply-files", str(scan))
        page.locator("form.reply button[type=submit]").click()
        page.wait_for_url(re.compile(r"/tasks/1#message-\d+$"))
        look_at(page, folder, "replied")
        thread = page.inner_text("#branch-1")
    assert "The corrected invoice is attached." in thread and "scan.png" in thread
    assert (task_row(world).assignee_id, tags(world)) == (
        person_id(world, BOB),
        ["billing", "refund", "urgent"],
    )
    posted = messages(world)[-1]
    assert attachments(world, posted.id) == [("scan.png", "image/png", PNG)]
