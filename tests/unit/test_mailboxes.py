"""Reading a mailbox to import: split as the standard library splits it, oldest first,
one message at a time."""

from __future__ import annotations

import mailbox
import random
import tracemalloc
from array import array
from pathlib import Path

import pytest

from qmail.errors import QmailError
from qmail.inbound.mailboxes import UNDATED, _oldest_first, crlf, read_mailbox

LINES = [
    b"From ann@client.test Tue Jun  4 10:00:00 2024\n",
    b"From: Ann <ann@client.test>\n",
    b"Subject: hi\n",
    b"\n",
    b"\r\n",
    b">From the start\n",
    b"From here on, a line of text\n",
    b"text\n",
    b"text with CRLF\r\n",
    b"  indented\n",
]


def random_mbox(rng: random.Random) -> bytes:
    """Lines an mbox is made of, in any order: From lines anywhere, blank lines, CRLF."""
    lines = [rng.choice(LINES) for _ in range(rng.randrange(0, 40))]
    end = rng.choice([b"", b"no newline at the end", b"\n", b"\n\n"])
    return b"".join(lines) + end


@pytest.mark.parametrize("seed", range(300))
def test_mbox_is_split_as_the_standard_library_splits_it(seed: int, tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(random_mbox(random.Random(seed)))
    box = mailbox.mbox(path, create=False)
    theirs = [crlf(box.get_bytes(key)) for key in box.iterkeys()]
    box.close()
    assert list(read_mailbox("mbox", path)) == theirs  # undated: in mailbox order


def test_maildir_holds_the_files_of_cur_and_new(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir")
    for n in range(5):
        box.add(f"Subject: {n}\n\nbody {n}\n".encode())
    box.close()
    moved = next((tmp_path / "Maildir" / "new").iterdir())
    seen = moved.rename(tmp_path / "Maildir" / "cur" / f"{moved.name}:2,S")
    (tmp_path / "Maildir" / "new" / ".hidden").write_bytes(b"Subject: not mail\n\n")
    messages = read_mailbox("maildir", tmp_path / "Maildir")
    assert len(messages) == 5
    assert sorted(messages) == [f"Subject: {n}\r\n\r\nbody {n}\r\n".encode() for n in range(5)]
    assert next(iter(messages)) == crlf(seen.read_bytes())  # cur/ first, as mailbox reads


def mail(subject: str, date: str | None) -> bytes:
    dated = f"Date: {date}\n" if date else ""
    return f"From: ann@client.test\nSubject: {subject}\n{dated}\nText of {subject}.\n".encode()


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_messages_come_oldest_first_undated_first_ties_in_mailbox_order(
    kind: str, tmp_path: Path
) -> None:
    mails = [
        mail("reply", "Wed, 5 Jun 2024 09:00:00 +0000"),
        mail("undated", None),
        mail("task", "Wed, 5 Jun 2024 10:00:00 +0200"),  # 08:00 UTC: before the reply
        mail("same moment as the reply", "Wed, 5 Jun 2024 11:00:00 +0200"),
        mail("unreadable date", "soon"),
        mail("no zone", "Tue, 4 Jun 2024 10:00:00"),
    ]
    path = tmp_path / kind
    box = mailbox.mbox(path) if kind == "mbox" else mailbox.Maildir(path)
    for raw in mails:
        box.add(raw)
    box.close()
    subjects = [raw.split(b"\r\n")[1] for raw in read_mailbox(kind, path)]
    expected = [
        b"Subject: undated",
        b"Subject: unreadable date",
        b"Subject: no zone",
        b"Subject: task",
        b"Subject: reply",
        b"Subject: same moment as the reply",
    ]
    if kind == "maildir":  # ties keep the order of the folder's listing: the file system's
        expected[:2], expected[4:] = sorted(expected[:2]), sorted(expected[4:])
        subjects[:2], subjects[4:] = sorted(subjects[:2]), sorted(subjects[4:])
    assert subjects == expected


@pytest.mark.parametrize("seed", range(100))
def test_any_order_of_dates_comes_out_sorted_with_ties_in_mailbox_order(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randrange(0, 300)
    moments = [float(rng.randrange(20)) for _ in range(count)] + [UNDATED] * rng.randrange(3)
    if rng.random() < 0.5:  # mostly in order, as mail comes in
        moments.sort()
        for _ in range(rng.randrange(5)):
            if moments:
                moments[rng.randrange(len(moments))] = float(rng.randrange(20))
    if rng.random() < 0.2:
        rng.shuffle(moments)
    dates = array("d", moments)
    assert list(_oldest_first(dates)) == sorted(range(len(dates)), key=lambda i: (dates[i], i))


def test_reading_a_large_mbox_holds_one_message_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "large.mbox"
    body = b"x" * 99 + b"\n"
    with path.open("wb") as file:  # 400 messages of 100 KB: 40 MB
        for number in range(400):
            file.write(b"From ann@client.test Tue Jun  4 10:00:00 2024\n")
            file.write(
                f"Subject: {number}\nDate: Tue, 4 Jun 2024 10:00:{number % 60:02d}\n\n".encode()
            )
            file.write(body * 1000 + b"\n")
    tracemalloc.start()
    try:
        messages = read_mailbox("mbox", path)
        sizes = [len(raw) for raw in messages]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(sizes) == 400 and min(sizes) > 100_000
    assert peak < 5 * max(sizes)  # a message and its CRLF copy, never the mailbox


def test_something_that_is_not_a_mailbox_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QmailError, match="not an mbox file"):
        read_mailbox("mbox", tmp_path)
    with pytest.raises(QmailError, match=r"not a Maildir \(no cur/ or new/\)"):
        read_mailbox("maildir", tmp_path)
