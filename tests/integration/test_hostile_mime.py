"""Hostile MIME through ``accept()``: whatever arrives, nothing is lost and nothing is left
undecided.  Every mail ends posted, held, ignored (automatic mail) or quarantined with a
reason the team can read, and no mail is left pending; checked with generated mail
(hypothesis): broken boundaries, nesting, wrong encodings and charsets, NUL bytes, absurd
headers, truncation."""

from __future__ import annotations

import string
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from qmail import models
from qmail.context import Context
from qmail.core.mail import Envelope
from qmail.inbound import pipeline

NOW = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
ENDINGS = {"done", "held", "ignored", "quarantined"}

HEADER_NAMES = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Date",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "MIME-Version",
    "Auto-Submitted",
    "Reply-To",
    "X-Weird",
)
CONTENT_TYPES = (
    "text/plain",
    "text/html",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/related",
    "multipart/signed",
    "message/rfc822",
    "message/delivery-status",
    "application/octet-stream",
    "image/png",
    "text/calendar",
    "",
    "garbage",
)
CHARSETS = ("utf-8", "iso-8859-1", "koi8-r", "utf-7", "gb2312", "x-unknown", "", "utf-16")
ENCODINGS = ("7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus", "")

# Text as hostile mail has it: any unicode (NUL, surrogate-free), encoded words, specials.
wild_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=string.printable, max_size=200),
    st.sampled_from(
        (
            "=?utf-8?b?w7Y=?=",
            "=?utf-8?q?broken",
            "=?x-unknown?b?AAAA?=",
            '"unterminated <a@b',
            "<>",
            "a@b, , <c@d>",
            "\x00",
            "x" * 2000,
            "=?utf-7?Q?+AOQ-?=",
            "Re: [#1] Fw: [billing] #urgent",
        )
    ),
)


@st.composite
def headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    fields = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), wild_text), max_size=12))
    if draw(st.booleans()):
        fields.append(("From", draw(st.sampled_from(("Carol <carol@acme.test>", "", "@", "x")))))
    return fields


@st.composite
def part(draw: st.DrawFn, depth: int = 0) -> bytes:
    kind = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    boundary = draw(st.sampled_from(("b1", "----=_NextPart_000_0023", '"quoted"', "", "a b")))
    params = f"; charset={charset}" if charset else ""
    if kind.startswith("multipart"):
        params += f"; boundary={boundary}" if boundary else ""
    head = f"Content-Type: {kind}{params}\r\nContent-Transfer-Encoding: {encoding}\r\n"
    if draw(st.booleans()):
        name = draw(st.sampled_from(("a.txt", "=?utf-8?q?=C3=A4.pdf?=", "", "../../etc/passwd")))
        head += f'Content-Disposition: attachment; filename="{name}"\r\n'
    if kind.startswith("multipart") and depth < 3:
        marker = boundary.strip('"') or "b1"
        children = draw(st.lists(part(depth + 1), max_size=3))
        inner = b"".join(f"--{marker}\r\n".encode() + child for child in children)
        closing = draw(st.sampled_from((f"--{marker}--\r\n", "", f"--{marker}\r\n")))
        body = inner + closing.encode()
    elif kind == "message/rfc822" and depth < 3:
        body = draw(mail(depth + 1))
    else:
        body = draw(st.binary(max_size=300)) + b"\r\n"
    return head.encode() + b"\r\n" + body


@st.composite
def mail(draw: st.DrawFn, depth: int = 0) -> bytes:
    head = b"".join(
        f"{name}: {value}\r\n".encode("utf-8", "surrogatepass") for name, value in draw(headers())
    )
    raw = head + draw(part(depth))
    if draw(st.booleans()):  # damage it: cut it short, or splice bytes in
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=20))
    return raw


def endings(store: Context) -> list[tuple[str, str | None]]:
    """Every kept mail's state, with the reason it was held or quarantined (if any)."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(models.RawMail.state, models.Quarantine.reason).outerjoin(
                models.Quarantine, col(models.Quarantine.raw_mail_id) == models.RawMail.id
            )
        ).all()
    return [(state, reason) for state, reason in rows]


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=mail())
def test_every_hostile_mail_ends_posted_held_ignored_or_quarantined_with_a_reason(
    store: Context, raw: bytes
) -> None:
    envelope = Envelope("client@acme.test", ("tasks@example.com",))
    outcome = pipeline.accept(raw, envelope, store, NOW)
    assert outcome.state in ENDINGS
    for state, reason in endings(store):
        assert state in ENDINGS, "nothing is left pending or half-done"
        if state in {"held", "quarantined"}:
            assert reason and reason.strip(), f"a {state} mail says why"
