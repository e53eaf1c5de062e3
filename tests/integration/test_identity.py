"""Who wrote it: through the real SMTP server, a reply address is not an identity.

The world: Carol (a client, acme.test) opened task 1; Alice and Bob (example.com) are the
team.  The author of a mail is its From address.  A reply address takes mail from the
person it was made for, or from a member of its branch (posted as that member); anyone
else's mail is held: answered 250 like any mail (we never bounce), kept, listed by
``qmail quarantine list`` and shown to the branch's team members on the task page.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from qmail import cli, models
from qmail.config import Settings
from qmail.core.addresses import reply_address
from qmail.core.mail import ReplyTarget
from qmail.core.parse import parse_mail
from qmail.inbound import importer
from tests.conftest import eml_bytes, expected
from tests.integration.conftest import SmtpServer, WebServer, serve_web
from tests.integration.test_ingest import FIRST, INTAKE, messages
from tests.integration.test_notifications import to
from tests.integration.test_pages import signed_in
from tests.integration.test_threads import address, branches, start, tags, task_row

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@acme.test"


def send_held(smtp_server: SmtpServer, raw: bytes, to: str, sender: str) -> tuple[int, bytes]:
    """Send through the real server and wait until it is filed; the answer to DATA."""
    with smtp_server.client() as client:
        client.ehlo()
        client.mail(sender)
        client.rcpt(to)
        answer = client.data(raw)
    smtp_server.wait_filed()
    return answer


def as_sender(raw: bytes, name: str, email: str) -> bytes:
    """The same mail, written by someone else."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = [
        f"From: {name} <{email}>".encode() if line.startswith(b"From:") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def quarantined(store) -> list[tuple[str, str]]:
    """(raw mail state, reason) of every open quarantine entry."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.RawMail.state, models.Quarantine.reason)
            .join(models.RawMail, col(models.RawMail.id) == models.Quarantine.raw_mail_id)
            .where(col(models.Quarantine.resolved_at).is_(None))
            .order_by(col(models.Quarantine.id))
        ).all()
    return [(state, reason) for state, reason in rows]


def people(store) -> set[str]:
    with Session(store.engine) as session:
        return set(session.exec(select(models.Person.email)).all())


def write_config(tmp_path: Path, settings: Settings, **mail: object) -> str:
    """A config file for the CLI naming the test's database (and ``mail`` keys)."""
    lines = [
        "[mail]",
        'domain = "example.com"',
        *(f"{key} = {value!r}".replace("'", '"') for key, value in mail.items()),
        "[database]",
        f'url = "{settings.database.url}"',
        "[security]",
        'secret_key = "test-secret-key-not-for-production"',
    ]
    path = tmp_path / "qmail.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


# --- reply addresses --------------------------------------------------------------------


def test_client_mailing_a_team_members_reply_address_is_refused_held_and_runs_nothing(
    smtp_server, team, tmp_path, capsys
):
    store = smtp_server.store
    main = start(smtp_server)
    dave_task = eml_bytes(FIRST).replace(b"Message-ID: <5c1f0e2a", b"Message-ID: <dave-5c1f0e2a")
    smtp_server.send(as_sender(dave_task, "Dave Client", "dave@globex.test"), INTAKE)
    raw = as_sender(eml_bytes("identity_client_to_team_address"), "Dave Client", "dave@globex.test")
    code, reply = send_held(smtp_server, raw, address(store, main.id, BOB), "dave@globex.test")
    assert (code, reply) == (250, b"2.0.0 Message accepted")
    assert len(messages(store)) == 1, "nothing is posted"
    assert (tags(store), task_row(store).status) == (["billing", "urgent"], "open")
    reason = (
        "held: dave@globex.test wrote to the reply address of bob@example.com "
        "and takes no part in that discussion"
    )
    assert quarantined(store) == [("held", reason)]
    config = write_config(tmp_path, store.settings, team_domains=["example.com"])
    assert cli.main(["quarantine", "list", "--config", config]) == 0
    assert reason in capsys.readouterr().out


def test_the_branchs_team_members_see_the_held_mail_on_the_task_page_and_the_client_does_not(
    smtp_server, web_server, team
):
    store = smtp_server.store
    main = start(smtp_server)
    raw = as_sender(eml_bytes("identity_client_to_team_address"), "Mallory", "mallory@evil.test")
    send_held(smtp_server, raw, address(store, main.id, BOB), "mallory@evil.test")
    with signed_in(store, web_server, BOB) as bob:
        page = bob.get("/tasks/1").text
    assert "held a mail it may not post: mallory@evil.test wrote to the reply address" in page
    with signed_in(store, web_server, CAROL) as carol:
        page = carol.get("/tasks/1").text
    assert "mallory@evil.test" not in page and "held a mail" not in page


def test_client_mailing_a_team_members_private_address_is_refused_and_opens_nothing(
    smtp_server, team
):
    store = smtp_server.store
    main = start(smtp_server)
    raw = eml_bytes("identity_client_to_team_address")
    private = address(store, main.id, BOB, private=True)
    code, reply = send_held(smtp_server, raw, private, CAROL)
    assert (code, reply) == (250, b"2.0.0 Message accepted")
    assert [branch.id for branch in branches(store)] == [main.id], "no hidden branch opens"
    assert len(messages(store)) == 1
    assert (tags(store), task_row(store).status) == (["billing", "urgent"], "open")
    assert [state for state, _ in quarantined(store)] == ["held"]


def test_a_member_of_the_branch_writing_to_a_colleagues_address_posts_as_themself(
    smtp_server, team
):
    """Carol answers Bob's notification (a reply-all, say): it is her message, and her
    command lines are plain text, as a client's always are."""
    store = smtp_server.store
    main = start(smtp_server)
    raw = eml_bytes("identity_client_to_team_address")
    assert smtp_server.send(raw, address(store, main.id, BOB), sender=CAROL) == {}
    reply = messages(store)[-1]
    with Session(store.engine) as session:
        author = session.get(models.Person, reply.author_id)
    assert author is not None and author.email == CAROL
    assert reply.text.startswith("#tag refunded\n#close\n\nBob told me on the phone")
    assert (tags(store), task_row(store).status) == (["billing", "urgent"], "open")


def test_a_team_member_of_the_branch_writing_to_a_colleagues_address_posts_with_powers(
    smtp_server, team
):
    store = smtp_server.store
    main = start(smtp_server)
    raw = eml_bytes("team_reply_commands")  # Alice's commands, sent to Bob's address
    assert smtp_server.send(raw, address(store, main.id, BOB), sender=ALICE) == {}
    assert tags(store) == ["urgent", "срочно"]
    assert task_row(store).status == "closed"
    assert messages(store)[-1].text == expected("team_reply_commands")["text_without_commands"]


def test_a_colleague_copied_by_the_person_is_held_not_posted_as_the_person(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    raw = eml_bytes("identity_colleague_reply_all")
    code, _ = send_held(smtp_server, raw, address(store, main.id, CAROL), "dan@acme.test")
    assert code == 250
    assert len(messages(store)) == 1
    assert "dan@acme.test" not in people(store)
    (held,) = quarantined(store)
    assert "dan@acme.test wrote to the reply address of carol@acme.test" in held[1]


# --- without a reply address ------------------------------------------------------------


def test_a_forged_team_from_with_a_task_number_adds_nobody_and_mails_nobody(smtp_server, team):
    """From: Bob (envelope mallory@evil.test), Subject: Re: [#1], Cc: Mallory, to the intake:
    Mallory is not added to task 1 and is sent nothing, least of all a sign-in link."""
    store = smtp_server.store
    start(smtp_server)
    outbox_before = len(to(store, BOB)) + len(to(store, ALICE))
    raw = eml_bytes("identity_forged_team_from")
    code, _ = send_held(smtp_server, raw, INTAKE, "mallory@evil.test")
    assert code == 250
    assert [state for state, _ in quarantined(store)] == ["held"]
    assert "mallory@evil.test" not in people(store)
    with Session(store.engine) as session:
        to_mallory = session.exec(
            select(models.Outbox).where(models.Outbox.recipient == "mallory@evil.test")
        ).all()
    assert to_mallory == []
    assert len(messages(store)) == 1 and tags(store) == ["billing", "urgent"]
    assert len(to(store, BOB)) + len(to(store, ALICE)) == outbox_before


def test_an_outsider_copying_many_team_addresses_creates_no_team_members(smtp_server, team):
    store = smtp_server.store
    raw = eml_bytes(FIRST)
    made_up = ",\r\n ".join(f"staff{n}@example.com" for n in range(200))
    raw = raw.replace(b"\r\nSubject:", f"\r\nCc: {made_up}\r\nSubject:".encode(), 1)
    assert b"staff199@example.com" in raw
    assert smtp_server.send(raw, INTAKE, sender=CAROL) == {}
    assert people(store) == {ALICE, BOB, CAROL}
    with Session(store.engine) as session:
        told = set(
            session.exec(
                select(models.Outbox.recipient).where(models.Outbox.kind == "notification")
            ).all()
        )
    assert told == {ALICE, BOB}, "triage goes to the team the configuration names"


def test_a_team_members_new_task_without_proof_opens_without_powers(smtp_server, team):
    """Opening a task from a team address needs no proof, but copies nobody in and runs no
    command until the trusted authentication server vouches for the From."""
    store = smtp_server.store
    raw = eml_bytes("identity_forged_team_from").replace(
        b"Subject: Re: [#1] Invoice 2024-17 is missing a line", b"Subject: Refund for ACME"
    )
    assert smtp_server.send(raw, INTAKE, sender="mallory@evil.test") == {}
    (message,) = messages(store)
    assert message.text.startswith("#tag paid\n\nCarol, I am copying Mallory")
    assert tags(store) == []
    assert "mallory@evil.test" not in people(store)


def test_commands_sent_into_a_hidden_branch_change_nothing_the_client_sees(
    smtp_server, web_server, team
):
    store = smtp_server.store
    main = start(smtp_server)
    with Session(store.engine) as session:
        updated_before = session.get(models.Task, main.task_id).updated_at  # type: ignore[union-attr]
    raw = eml_bytes("team_private_reply").replace(
        b"\r\n\r\n", b"\r\n\r\n#tag finance-q4\r\n#close\r\n\r\n", 1
    )
    assert smtp_server.send(raw, address(store, main.id, ALICE, private=True), ALICE) == {}
    task = task_row(store)
    assert (tags(store), task.status, task.updated_at) == (
        ["billing", "urgent"],
        "open",
        updated_before,
    )
    hidden = branches(store)[1]
    private = messages(store)[-1]
    assert private.branch_id == hidden.id and private.text.startswith("#tag finance-q4\n#close")
    (refusal,) = to(store, ALICE, "refusal")
    body = refusal.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "- #tag finance-q4\n- #close\n" in body and "were not carried out" in body
    with signed_in(store, web_server, CAROL) as carol:
        activity = carol.get("/activity").text
        api = carol.get("/api/tasks/1").json()
    assert "tagged" not in activity and "closed" not in activity
    assert api["tags"] == [] and api["status"] == "open"  # tags are the team's alone


# --- the same rules for every way mail comes in -----------------------------------------


def test_import_and_quarantine_retry_hold_what_smtp_holds(smtp_server, team, tmp_path, capsys):
    store = smtp_server.store
    start(smtp_server)
    box = mailbox.mbox(tmp_path / "old.mbox")
    box.add(eml_bytes("identity_forged_team_from"))
    box.close()
    raws = importer.read_mailbox("mbox", tmp_path / "old.mbox")
    counts = importer.import_messages(store, raws)
    assert counts.states == {"held": 1}
    assert len(messages(store)) == 1
    config = write_config(tmp_path, store.settings, team_domains=["example.com"])
    assert cli.main(["quarantine", "retry", "--config", config]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "held"
    assert [state for state, _ in quarantined(store)] == ["held"]
    assert len(messages(store)) == 1 and "mallory@evil.test" not in people(store)


# --- the trusted authentication server ---------------------------------------------------

TRUSTED = "mx.example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's tests run with a trusted authentication server configured."""
    return settings.replace(mail={"trusted_authserv_id": TRUSTED})


def with_auth_results(raw: bytes, *values: str) -> bytes:
    """``raw`` as the receiving MTA would hand it over, with its verdicts on top."""
    headers = b"".join(f"Authentication-Results: {value}\r\n".encode() for value in values)
    return headers + raw


def test_a_from_failing_dmarc_at_the_trusted_server_is_held(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    raw = with_auth_results(
        eml_bytes("team_reply_commands"),
        f"{TRUSTED}; dmarc=fail (p=reject) header.from=example.com",
    )
    code, _ = send_held(smtp_server, raw, address(store, main.id, ALICE), ALICE)
    assert code == 250
    assert len(messages(store)) == 1 and task_row(store).status == "open"
    (held,) = quarantined(store)
    assert "DMARC" in held[1]


def test_the_same_verdict_from_an_untrusted_server_is_ignored(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    raw = with_auth_results(
        eml_bytes("team_reply_commands"), "mx.evil.test; dmarc=fail header.from=example.com"
    )
    assert smtp_server.send(raw, address(store, main.id, ALICE), sender=ALICE) == {}
    assert task_row(store).status == "closed"
    assert quarantined(store) == []


def test_a_passing_verdict_lets_a_team_member_answer_by_subject_with_powers(smtp_server, team):
    store = smtp_server.store
    start(smtp_server)
    raw = eml_bytes("team_reply_commands").replace(
        b"In-Reply-To: <5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test>\r\n"
        b"References: <5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test>\r\n",
        b"",
    )
    assert parse_mail(raw).in_reply_to is None  # type: ignore[union-attr]
    forged = with_auth_results(raw, "mx.evil.test; dmarc=pass header.from=example.com")
    code, _ = send_held(smtp_server, forged, INTAKE, ALICE)
    assert code == 250
    assert [state for state, _ in quarantined(store)] == ["held"], "a pass from anybody else"
    proven = with_auth_results(
        raw.replace(b"Message-ID: <b7e9c1d2", b"Message-ID: <proven-b7e9c1d2"),
        f"{TRUSTED}; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com",
        f"{TRUSTED}; dmarc=pass (p=reject) header.from=example.com",
    )
    assert smtp_server.send(proven, INTAKE, sender=ALICE) == {}
    assert task_row(store).status == "closed"
    assert tags(store) == ["urgent", "срочно"]


# --- team membership you can trust --------------------------------------------------------


def api_status(web_server: WebServer, token: str) -> int:
    with web_server.client(token) as client:
        return client.get("/api/tasks/1").status_code


def test_team_role_follows_the_configuration_and_person_set(
    smtp_server, web_server: WebServer, tmp_path, capsys
):
    """Zoe at example.com sees task 1 (which she takes no part in) exactly while she is on
    the team: by the configuration as it is now, or by her explicit role."""
    store = smtp_server.store
    start(smtp_server)
    config = write_config(tmp_path, store.settings, team_domains=["example.com"])
    assert cli.main(["person", "add", "zoe@example.com", "--config", config]) == 0
    assert cli.main(["token", "create", "zoe@example.com", "--config", config]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    assert api_status(web_server, token) == 200  # this web app's team domain: example.com
    no_team_domains = store.settings.replace(mail={"team_domains": ()})
    with serve_web(no_team_domains, store.engine) as reconfigured:
        assert api_status(reconfigured, token) == 404
        assert cli.main(["person", "set", "zoe@example.com", "--team", "--config", config]) == 0
        assert api_status(reconfigured, token) == 200
    assert cli.main(["person", "set", "zoe@example.com", "--external", "--config", config]) == 0
    assert api_status(web_server, token) == 404
    assert cli.main(["person", "set", "zoe@example.com", "--by-config", "--config", config]) == 0
    assert api_status(web_server, token) == 200
    capsys.readouterr()
    (tmp_path / "elsewhere").mkdir()
    elsewhere = write_config(tmp_path / "elsewhere", store.settings)  # no team domains
    assert cli.main(["person", "list", "--config", elsewhere]) == 0
    assert "zoe@example.com\t\texternal (by mail.team_domains)\n" in capsys.readouterr().out
    assert cli.main(["person", "list", "--config", config]) == 0
    assert "zoe@example.com\t\tteam member (by mail.team_domains)\n" in capsys.readouterr().out


def test_a_genuine_reply_address_whose_discussion_is_gone_is_quarantined_with_the_reason(
    smtp_server, team
):
    store = smtp_server.store
    start(smtp_server)
    with Session(store.engine) as session:
        carol = session.exec(select(models.Person).where(models.Person.email == CAROL)).one()
        assert carol.id is not None
        gone = store.tokens.make(ReplyTarget(branch_id=999, person_id=carol.id))
    to_gone = reply_address(gone, store.settings.mail.domain)
    raw = eml_bytes("intake_followup_in_reply_to")
    code, _ = send_held(smtp_server, raw, to_gone, CAROL)
    assert code == 250
    gone_reason = "refused: 550 5.1.1 This discussion no longer exists"
    assert quarantined(store) == [("quarantined", gone_reason)]
    assert len(messages(store)) == 1
