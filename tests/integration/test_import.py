"""Importing an existing mailbox (mbox, Maildir) as task threads, through the CLI."""

from __future__ import annotations

import mailbox

import pytest
from sqlmodel import Session, select

from qmail import cli, models
from tests.conftest import eml_bytes, expected
from tests.integration.test_cli import write_config
from tests.integration.test_ingest import messages, tasks

# Oldest first by Date, whatever their order in the mailbox.
MAILS = [
    "intake_out_of_office",
    "intake_followup_in_reply_to",
    "intake_thunderbird_en",
    "parse_koi8r",
]


def fill(box: mailbox.Mailbox) -> None:
    for name in MAILS:
        box.add(eml_bytes(name))
    box.close()


@pytest.fixture
def config(settings, tmp_path) -> str:
    return write_config(settings, tmp_path / "qmail.toml")


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_a_mailbox_comes_in_as_threads_without_telling_anyone(
    kind, config, store, tmp_path, capsys
):
    path = tmp_path / ("old.mbox" if kind == "mbox" else "Maildir")
    fill(mailbox.mbox(path) if kind == "mbox" else mailbox.Maildir(path))
    assert cli.main(["import", kind, str(path), "--config", config]) == 0
    assert capsys.readouterr().out == "imported 4 messages: 3 done, 1 ignored\n"
    assert [task.title for task in tasks(store)] == [
        "Invoice 2024-17 is missing a line",
        "Сверка финансов",
    ]
    first, followup = messages(store, 1)
    assert followup.branch_id == first.branch_id  # threaded by In-Reply-To
    assert followup.text == expected("intake_followup_in_reply_to")["text"]
    with Session(store.engine) as session:
        assert session.exec(select(models.Outbox)).all() == []  # old mail tells nobody
    # Running it again (say, after an interruption) adds nothing.
    assert cli.main(["import", kind, str(path), "--config", config]) == 0
    assert capsys.readouterr().out == "imported 4 messages: none new, 4 already there\n"
    assert len(tasks(store)) == 2


def test_importing_something_that_is_not_a_mailbox_is_a_one_line_error(config, tmp_path, capsys):
    assert cli.main(["import", "maildir", str(tmp_path), "--config", config]) == 1
    assert capsys.readouterr().err == f"qmail: error: not a Maildir (no cur/ or new/): {tmp_path}\n"
    assert cli.main(["import", "mbox", str(tmp_path / "nope"), "--config", config]) == 1
