"""Task threads through the real SMTP server: hidden team branches, CC rules, commands."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.core.addresses import reply_address
from qmail.core.mail import ReplyTarget
from tests.conftest import eml_bytes, expected
from tests.integration.conftest import SmtpServer
from tests.integration.test_ingest import FIRST, INTAKE, messages

EARLIER = datetime(2024, 6, 1, tzinfo=UTC)


def person_id(store: Context, email: str) -> int:
    with Session(store.engine) as session:
        person = session.exec(select(models.Person).where(models.Person.email == email)).one()
        assert person.id is not None
        return person.id


def branches(store: Context, number: int = 1) -> list[models.Branch]:
    with Session(store.engine) as session:
        return list(
            session.exec(
                select(models.Branch)
                .join(models.Task, col(models.Task.id) == models.Branch.task_id)
                .where(models.Task.number == number)
                .order_by(col(models.Branch.id))
            ).all()
        )


def member_emails(store: Context, branch_id: int | None) -> set[str]:
    with Session(store.engine) as session:
        return set(
            session.exec(
                select(models.Person.email)
                .join(models.BranchMember, col(models.BranchMember.person_id) == models.Person.id)
                .where(models.BranchMember.branch_id == branch_id)
            ).all()
        )


def address(store: Context, branch_id: int | None, email: str, private: bool = False) -> str:
    """The reply address a notification about ``branch_id`` to ``email`` would carry."""
    assert branch_id is not None
    token = store.tokens.make(ReplyTarget(branch_id, person_id(store, email), private))
    return reply_address(token, store.settings.mail.domain)


def task_row(store: Context, number: int = 1) -> models.Task:
    with Session(store.engine) as session:
        return session.exec(select(models.Task).where(models.Task.number == number)).one()


def tags(store: Context, number: int = 1) -> list[str]:
    with Session(store.engine) as session:
        return sorted(
            session.exec(
                select(models.Tag.name)
                .join(models.TaskTag, col(models.TaskTag.tag_id) == models.Tag.id)
                .join(models.Task, col(models.Task.id) == models.TaskTag.task_id)
                .where(models.Task.number == number)
            ).all()
        )


def api_task(web_server, store: Context, email: str, number: int = 1):
    with Session(store.engine) as session:
        person = session.exec(select(models.Person).where(models.Person.email == email)).one()
        token = create_api_token(session, person)
        session.commit()
    with web_server.client(token) as client:
        return client.get(f"/api/tasks/{number}")


def start(smtp_server: SmtpServer) -> models.Branch:
    smtp_server.send(eml_bytes(FIRST), INTAKE, sender="carol@acme.test")
    (main,) = branches(smtp_server.store)
    return main


def test_client_task_and_team_reply_share_the_main_branch(smtp_server, team):
    main = start(smtp_server)
    store = smtp_server.store
    assert member_emails(store, main.id) == {
        "carol@acme.test",
        "alice@example.com",
        "bob@example.com",
    }
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, main.id, "alice@example.com"))
    assert [m.branch_id for m in messages(store)] == [main.id, main.id]


def test_private_answer_opens_a_hidden_branch_the_client_never_sees(smtp_server, web_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    # Alice answers privately to the team, from her notification's second address.
    smtp_server.send(
        eml_bytes("team_private_reply"), address(store, main.id, "alice@example.com", private=True)
    )
    main_again, hidden = branches(store)
    assert main_again.id == main.id
    assert (hidden.hidden, hidden.parent_id) == (True, main.id)
    # Carol was copied on Alice's private mail: she is still not let in.
    assert member_emails(store, hidden.id) == {"alice@example.com", "bob@example.com"}
    # Bob answers in the hidden branch from his own notification of it.
    smtp_server.send(eml_bytes("team_private_answer"), address(store, hidden.id, "bob@example.com"))
    # Carol answers her notification of the main branch afterwards.
    smtp_server.send(
        eml_bytes("intake_followup_in_reply_to"), address(store, main.id, "carol@acme.test")
    )
    posted = [(m.branch_id, m.text) for m in messages(store)]
    assert posted == [
        (main.id, expected(FIRST)["text"]),
        (hidden.id, expected("team_private_reply")["text"]),
        (hidden.id, expected("team_private_answer")["text"]),
        (main.id, expected("intake_followup_in_reply_to")["text"]),
    ]
    seen_by_carol = api_task(web_server, store, "carol@acme.test").json()
    assert [b["id"] for b in seen_by_carol["branches"]] == [main.id]
    assert "contract lapsed" not in str(seen_by_carol)
    seen_by_bob = api_task(web_server, store, "bob@example.com").json()
    assert [b["id"] for b in seen_by_bob["branches"]] == [main.id, hidden.id]


def test_client_cannot_post_into_a_hidden_branch_even_with_its_message_ids(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    smtp_server.send(
        eml_bytes("team_private_reply"), address(store, main.id, "alice@example.com", private=True)
    )
    _, hidden = branches(store)
    # A client who somehow knows the Message-ID of the private mail, writing to intake:
    raw = eml_bytes("intake_followup_in_reply_to").replace(
        b"In-Reply-To: <5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test>",
        b"In-Reply-To: <c3d4e5f6-team-private@example.com>",
    )
    smtp_server.send(raw, INTAKE, sender="carol@acme.test")
    assert [m.branch_id for m in messages(store)].count(hidden.id) == 1
    assert len(branches(store)) == 2


def test_client_cannot_use_a_private_address(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    forged = address(store, main.id, "carol@acme.test", private=True)  # signed, but for Carol
    with smtp_server.client() as client:
        client.ehlo()
        client.mail("carol@acme.test")
        client.rcpt(forged)
        assert client.data(eml_bytes("intake_followup_in_reply_to"))[0] == 250
    smtp_server.wait_filed()
    assert len(branches(store)) == 1
    with Session(store.engine) as session:
        assert session.exec(select(models.RawMail.state)).all()[-1] == "held"


def test_team_member_copying_new_people_on_the_main_branch_makes_them_participants(
    smtp_server, team
):
    store = smtp_server.store
    main = start(smtp_server)
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, main.id, "alice@example.com"))
    assert member_emails(store, main.id) >= {"dan@acme.test", "erin@gmail.com"}


def test_copying_an_outsider_on_a_hidden_branch_is_refused_and_reported(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    smtp_server.send(
        eml_bytes("team_private_reply"), address(store, main.id, "alice@example.com", private=True)
    )
    _, hidden = branches(store)
    smtp_server.send(eml_bytes("team_reply_cc"), address(store, hidden.id, "alice@example.com"))
    assert member_emails(store, hidden.id) == {"alice@example.com", "bob@example.com"}
    assert "dan@acme.test" not in member_emails(store, hidden.id)


def test_team_commands_change_the_task_and_leave_the_text(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    assert tags(store) == ["billing", "urgent"]
    smtp_server.send(eml_bytes("team_reply_commands"), address(store, main.id, "alice@example.com"))
    task = task_row(store)
    assert tags(store) == ["urgent", "срочно"]
    assert task.status == "closed"
    assert task.assignee_id == team["bob@example.com"]
    reply = messages(store)[-1]
    assert reply.text == expected("team_reply_commands")["text_without_commands"]
    with Session(store.engine) as session:
        kinds = session.exec(
            select(models.Event.kind, models.Event.detail)
            .where(models.Event.task_id == task.id)
            .order_by(col(models.Event.id))
        ).all()
    assert [kind for kind in kinds if kind[0] in ("tag", "untag", "assign", "close")] == [
        ("tag", "срочно"),
        ("untag", "billing"),
        ("assign", "bob@example.com"),
        ("close", ""),
    ]


def test_reopen_command(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    smtp_server.send(eml_bytes("team_reply_commands"), address(store, main.id, "alice@example.com"))
    raw = eml_bytes("team_reply_cc").replace(b"\r\n\r\nCopying", b"\r\n\r\n#reopen\r\nCopying")
    smtp_server.send(raw, address(store, main.id, "alice@example.com"))
    assert task_row(store).status == "open"
    assert messages(store)[-1].text == expected("team_reply_cc")["text"]


def test_commands_from_a_client_are_ordinary_text(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    smtp_server.send(
        eml_bytes("client_reply_hash_lines"), address(store, main.id, "carol@acme.test")
    )
    assert task_row(store).status == "open"
    assert tags(store) == ["billing", "urgent"]
    assert messages(store)[-1].text == expected("client_reply_hash_lines")["text"]


def test_a_mail_of_commands_alone_posts_no_empty_message(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    raw = (
        eml_bytes("team_reply_cc")
        .replace(
            b"Copying Dan from your finance team and Erin, our accountant, as asked.", b"#close"
        )
        .replace(b"Cc: Dan Driver <dan@acme.test>, Erin <erin@gmail.com>, ", b"Cc: ")
    )
    smtp_server.send(raw, address(store, main.id, "alice@example.com"))
    assert task_row(store).status == "closed"
    assert len(messages(store)) == 1


def test_assigning_a_client_is_refused(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    raw = eml_bytes("team_reply_commands").replace(
        b"#assign bob@example.com", b"#assign carol@acme.test"
    )
    smtp_server.send(raw, address(store, main.id, "alice@example.com"))
    assert task_row(store).assignee_id is None


def test_private_reply_never_lands_in_a_hidden_branch_opened_from_the_web(smtp_server, team):
    """A web-opened hidden branch has members of its own choosing: a private reply by mail
    goes to the task's team branch instead, and joins nobody to the other one."""
    store = smtp_server.store
    main = start(smtp_server)
    with Session(store.engine) as session:
        task = session.exec(select(models.Task)).one()
        alice = session.get(models.Person, team["alice@example.com"])
        assert alice is not None and task.id is not None
        chosen = models.Branch(task_id=task.id, hidden=True, parent_id=main.id)
        session.add(chosen)
        session.flush()
        assert chosen.id is not None
        session.add(models.BranchMember(branch_id=chosen.id, person_id=alice.id))
        session.add(models.Event(task_id=task.id, branch_id=chosen.id, kind="branch_opened"))
        session.commit()
        chosen_id = chosen.id
    smtp_server.send(
        eml_bytes("team_private_answer"), address(store, main.id, "bob@example.com", private=True)
    )
    _, web_branch, team_branch = branches(store)
    assert web_branch.id == chosen_id
    assert member_emails(store, chosen_id) == {"alice@example.com"}
    assert messages(store)[-1].branch_id == team_branch.id


def test_private_reply_from_a_hidden_branch_notification_stays_in_that_branch(smtp_server, team):
    store = smtp_server.store
    main = start(smtp_server)
    smtp_server.send(
        eml_bytes("team_private_reply"), address(store, main.id, "alice@example.com", private=True)
    )
    hidden = branches(store)[1]
    smtp_server.send(
        eml_bytes("team_private_answer"), address(store, hidden.id, "bob@example.com", private=True)
    )
    assert len(branches(store)) == 2
    assert messages(store)[-1].branch_id == hidden.id


def test_activity_in_a_hidden_branch_does_not_move_the_task_for_the_client(
    smtp_server, web_server, team
):
    store = smtp_server.store
    main = start(smtp_server)
    before = api_task(web_server, store, "carol@acme.test").json()["updated_at"]
    smtp_server.send(
        eml_bytes("team_private_reply"), address(store, main.id, "alice@example.com", private=True)
    )
    hidden = branches(store)[1]
    smtp_server.send(eml_bytes("team_private_answer"), address(store, hidden.id, "bob@example.com"))
    assert api_task(web_server, store, "carol@acme.test").json()["updated_at"] == before
    smtp_server.send(
        eml_bytes("intake_followup_in_reply_to"), address(store, main.id, "carol@acme.test")
    )
    assert api_task(web_server, store, "carol@acme.test").json()["updated_at"] > before


def test_a_team_reply_copying_three_thousand_people_adds_the_first_hundred(smtp_server, team):
    """One mail must not stall the others: a mass mailing makes no mass of participants."""
    store = smtp_server.store
    main = start(smtp_server)
    copied = ",\r\n ".join(f"p{n}@client.test" for n in range(3000))  # folded
    raw = (
        "From: Alice Admin <alice@example.com>\r\nTo: support@example.com\r\n"
        f"Cc: {copied}\r\nSubject: Re: [#1] invoice\r\n"
        "Message-ID: <mass-1@example.com>\r\n\r\nCopying everyone.\r\n"
    ).encode()
    assert smtp_server.send(raw, address(store, main.id, "alice@example.com")) == {}
    added = {email for email in member_emails(store, main.id) if email.endswith("@client.test")}
    assert added == {f"p{n}@client.test" for n in range(100)}
