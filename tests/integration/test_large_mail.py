"""Large mail and large mailboxes (issue 10): a mail at the size limit comes in whole, and
an import reads its mailbox one message at a time."""

from __future__ import annotations

import random
import smtplib
from email.message import EmailMessage

from sqlmodel import Session, select

from qmail import models
from qmail.auth.api_tokens import create_api_token
from qmail.context import Context
from qmail.inbound import importer
from tests.conftest import eml_bytes, wait_until
from tests.integration.conftest import SmtpServer, WebServer
from tests.integration.test_import import MAILS
from tests.integration.test_ingest import tasks

CLIENT = "client@acme.test"


def mail_with_a_file(content: bytes) -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"] = f"Carol <{CLIENT}>", "tasks@example.com"
    mail["Subject"], mail["Message-ID"] = "The scans of March", "<scans-march@acme.test>"
    mail.set_content("Hello,\n\nall the scans of March are attached.\n\nCarol\n")
    mail.add_attachment(content, maintype="application", subtype="pdf", filename="march.pdf")
    return mail.as_bytes().replace(b"\n", b"\r\n")


def test_a_mail_at_the_size_limit_is_filed_and_its_file_served_intact(
    smtp_server: SmtpServer, web_server: WebServer, store: Context
) -> None:
    content = random.Random(10).randbytes(18_000_000)  # 24.3 MB in base64: just under 25 MiB
    raw = mail_with_a_file(content)
    assert store.settings.smtp.max_message_size - 2_000_000 < len(raw)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=120) as client:
        assert client.sendmail(CLIENT, ["tasks@example.com"], raw) == {}
    (task,) = wait_until(lambda: tasks(store), timeout=60)
    assert task.title == "The scans of March"
    with Session(store.engine) as session:
        carol = session.exec(select(models.Person).where(models.Person.email == CLIENT)).one()
        token = create_api_token(session, carol)
        session.commit()
    with web_server.client(token) as http:
        http.timeout = 120
        (branch,) = http.get(f"/api/tasks/{task.number}").json()["branches"]
        (message,) = branch["messages"]
        assert message["text"] == "Hello,\n\nall the scans of March are attached.\n\nCarol"
        (attachment,) = message["attachments"]
        assert (attachment["filename"], attachment["size"]) == ("march.pdf", len(content))
        served = http.get(attachment["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/pdf"
    assert served.content == content


def raw_mail_count(store: Context) -> int:
    with Session(store.engine) as session:
        return len(session.exec(select(models.RawMail.id)).all())


def test_import_files_each_chunk_before_it_reads_the_next(store: Context) -> None:
    stored_when_read: list[int] = []

    def mailbox_being_read():
        for name in MAILS:
            stored_when_read.append(raw_mail_count(store))
            yield eml_bytes(name)

    counts = importer.import_messages(store, mailbox_being_read(), chunk=2)
    assert (counts.total, counts.states) == (4, {"done": 3, "ignored": 1})
    # A mailbox read whole first would show [0, 0, 0, 0]: every message read, none filed.
    assert stored_when_read == [0, 0, 2, 2]
