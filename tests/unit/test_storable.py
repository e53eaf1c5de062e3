"""Hostile values made to fit the database the same way on SQLite and PostgreSQL.

PostgreSQL refuses NUL in text and values longer than their column; the parse stage hands
on only what fits (``qmail.core.storable``), so one mail files alike on both databases.
"""

from __future__ import annotations

import hashlib

from qmail.core.mail import Address, Mail
from qmail.core.parse import parse_mail, read_message_id
from qmail.core.storable import ID_BYTES, storable_id, storable_text

LONG_LOCAL = "x" * 1500
LONG_ID = f"{LONG_LOCAL}@mail.acme.test"


def raw(*headers: str, body: bytes = b"Hello\r\n") -> bytes:
    head = ["From: Carol <carol@acme.test>", "To: tasks@example.com", *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


def parsed(data: bytes) -> Mail:
    mail = parse_mail(data)
    assert isinstance(mail, Mail), mail
    return mail


def folded(message_id: str) -> str:
    """A long id split over lines of at most 78 characters, as a mail program folds it."""
    chunks = [message_id[i : i + 70] for i in range(0, len(message_id), 70)]
    return "\r\n ".join(chunks)


def test_nul_characters_are_removed_from_subject_body_and_names() -> None:
    mail = parsed(
        raw(
            "Subject: Printer\x00 on fire",
            "Cc: Dan\x00 Doe <dan@acme.test>",
            "Message-ID: <nul-1@acme.test>",
            body=b"It\x00 burns.\r\n\x00\r\n",
        )
    )
    assert (mail.subject, mail.text) == ("Printer on fire", "It burns.")
    assert mail.cc == (Address("dan@acme.test", "Dan Doe"),)


def test_nul_in_an_encoded_word_is_removed_too() -> None:
    mail = parsed(raw("Subject: =?utf-8?q?Printer=00_on_fire?=", "Message-ID: <nul-2@acme.test>"))
    assert mail.subject == "Printer on fire"


def test_nul_in_a_message_id_is_dropped_wherever_the_id_is_named() -> None:
    data = raw("Subject: Hi", "Message-ID: <nul\x00-3@acme.test>")
    reply = raw(
        "Subject: Re: Hi", "In-Reply-To: <nul\x00-3@acme.test>", "Message-ID: <r@acme.test>"
    )
    assert parsed(data).message_id == read_message_id(data) == "nul-3@acme.test"
    assert parsed(reply).in_reply_to == "nul-3@acme.test"


def test_display_name_longer_than_its_column_is_cut_to_200_characters() -> None:
    mail = parsed(raw("Subject: Hi", "Message-ID: <n@acme.test>").replace(b"Carol", b"C" * 300))
    assert mail.sender == Address("carol@acme.test", "C" * 200)


def test_address_longer_than_320_characters_is_no_address() -> None:
    huge = "a" * 330 + "@acme.test"
    mail = parsed(raw("Subject: Hi", f"Cc: Dan <dan@acme.test>, <{huge}>", "Message-ID: <a@x>"))
    assert mail.cc == (Address("dan@acme.test", "Dan"),)


def test_message_id_too_long_for_its_column_is_shortened_the_same_way_wherever_named() -> None:
    data = raw("Subject: Hi", f"Message-ID: <{folded(LONG_ID)}>")
    reply = raw(
        "Subject: Re: Hi",
        f"In-Reply-To: <{folded(LONG_ID)}>",
        f"References: <root@acme.test> <{folded(LONG_ID)}>",
        "Message-ID: <reply-1@acme.test>",
    )
    digest = hashlib.sha256(LONG_ID.encode()).hexdigest()[:32]
    tail = f".{digest}@mail.acme.test"
    short = LONG_LOCAL[: ID_BYTES - len(tail)] + tail
    assert len(short) == ID_BYTES
    assert read_message_id(data) == parsed(data).message_id == short
    assert parsed(reply).in_reply_to == short
    assert parsed(reply).references == ("root@acme.test", short)


def test_message_id_of_998_bytes_is_kept_as_sent() -> None:
    exact = "y" * (ID_BYTES - len("@acme.test")) + "@acme.test"
    assert read_message_id(raw("Subject: Hi", f"Message-ID: <{folded(exact)}>")) == exact


def test_message_id_in_a_multibyte_script_fits_in_998_utf8_bytes() -> None:
    long_id = "ü" * 900 + "@acme.test"
    short = storable_id(long_id)
    assert len(short.encode()) <= ID_BYTES and short.endswith("@acme.test")
    assert short.startswith("ü" * 400) and storable_id(long_id) == short


def test_lone_surrogate_from_a_utf7_encoded_word_becomes_a_replacement_character() -> None:
    mail = parsed(raw("Subject: =?utf-7?q?Hi_+2D0-?=", "Message-ID: <u7@acme.test>"))
    assert mail.subject == "Hi \ufffd"
    assert storable_text("\ud83d\ude00 ok") == "😀 ok"


def test_attachment_name_longer_than_its_column_is_cut_keeping_its_extension() -> None:
    name = "quarterly-report-" + "x" * 300 + ".pdf"
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="' + name.encode() + b'"\r\n'
        b"\r\n%PDF-1.4\r\n--b--\r\n"
    )
    multipart = 'Content-Type: multipart/mixed; boundary="b"'
    mail = parsed(raw("Subject: Hi", "Message-ID: <att@acme.test>", multipart, body=body))
    (attachment,) = mail.attachments
    assert len(attachment.filename) == 255
    assert attachment.filename == name[:251] + ".pdf"
