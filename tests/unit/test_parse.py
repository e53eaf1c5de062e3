"""The parse stage: raw bytes of real-looking mail in, Mail or Reject values out."""

from __future__ import annotations

import base64
import email.message
import hashlib
import random
import re
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest

from qmail.core import fallback, fields, html, parse, parts, signed, uuencode
from qmail.core.charsets import decode_text
from qmail.core.mail import Address, Mail, Reject
from qmail.core.parse import parse_mail, read_message_id
from qmail.core.parts import Part, read_parts
from tests.conftest import MAIL_DIR, eml_bytes, expected

FIXTURES = sorted(path.stem for path in MAIL_DIR.glob("parse_*.eml"))
EVERY_FIXTURE = sorted(path.stem for path in MAIL_DIR.glob("*.eml"))


def parsed(name: str) -> Mail:
    mail = parse_mail(eml_bytes(name))
    assert isinstance(mail, Mail), mail
    return mail


def check_golden(mail: Mail, golden: dict[str, Any]) -> None:
    """Compare ``mail`` with the keys a golden file names; unnamed keys do not matter."""
    for key in ("message_id", "subject", "text", "from_html", "in_reply_to"):
        if key in golden:
            assert getattr(mail, key) == golden[key], key
    if "references" in golden:
        assert list(mail.references) == golden["references"]
    if "auth_results" in golden:
        assert list(mail.auth_results) == golden["auth_results"]
    if "sender" in golden:
        sender = [mail.sender.email, mail.sender.name] if mail.sender else None
        assert sender == golden["sender"]
    for key in ("to", "cc", "reply_to"):
        if key in golden:
            assert [[one.email, one.name] for one in getattr(mail, key)] == golden[key]
    if "date" in golden:
        assert (mail.date.isoformat() if mail.date else None) == golden["date"]
    for piece in golden.get("subject_contains", []):
        assert piece in mail.subject
    for piece in golden.get("text_contains", []):
        assert piece in mail.text
    for piece in golden.get("text_excludes", []):
        assert piece.lower() not in mail.text.lower(), piece
    if "automatic" in golden:
        if golden["automatic"] is None:
            assert mail.automatic is None
        else:
            assert golden["automatic"] in (mail.automatic or "")
    check_attachments(mail, golden)


def check_attachments(mail: Mail, golden: dict[str, Any]) -> None:
    found = mail.attachments
    if "attachments" in golden:
        assert [[a.filename, a.content_type, a.size] for a in found] == golden["attachments"]
    if "inline" in golden:
        inline = [[a.filename, a.content_id] for a in found if a.inline]
        assert inline == golden["inline"]
    if "attachment_names" in golden:
        assert [a.filename for a in found] == golden["attachment_names"]
    if "attachment_types" in golden:
        assert [a.content_type for a in found] == golden["attachment_types"]
    for index, piece in golden.get("attachment_contains", []):
        assert piece.encode() in found[index].content
    if "attachment_sha256" in golden:
        digests = [hashlib.sha256(a.content).hexdigest() for a in found]
        assert digests == golden["attachment_sha256"]


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_parses_as_its_golden_file_says(name: str) -> None:
    golden = expected(name)
    result = parse_mail(eml_bytes(name))
    if "reject" in golden:
        assert isinstance(result, Reject)
        assert result.code == 554
        assert result.reason.startswith(golden["reject"])
    else:
        assert isinstance(result, Mail), result
        check_golden(result, golden)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_has_crlf_line_endings(name: str) -> None:
    raw = eml_bytes(name)
    assert b"\n" not in raw.replace(b"\r\n", b"")


# --- Message-IDs ---------------------------------------------------------------------


def test_read_message_id_reads_only_the_header_block() -> None:
    raw = b"Subject: x\r\nMessage-ID:\r\n <abc@example.org>\r\n\r\nMessage-ID: <body@x>\r\n"
    assert read_message_id(raw) == "abc@example.org"


def test_read_message_id_matches_parse_mail() -> None:
    for name in FIXTURES:
        mail = parse_mail(eml_bytes(name))
        if isinstance(mail, Mail):
            assert read_message_id(eml_bytes(name)) == mail.message_id


def test_bracket_style_message_id_is_repaired() -> None:
    assert read_message_id(b"Message-ID: [x.1@legacy.example]\r\n\r\n") == "x.1@legacy.example"


def test_short_message_id_that_flanker_rejects_is_kept() -> None:
    assert read_message_id(b"Message-Id: <a@b>\r\n\r\nhi") == "a@b"


def test_missing_message_id_is_generated_deterministically() -> None:
    raw = b"From: a@example.org\r\nSubject: no id\r\n\r\nbody\r\n"
    first, second = read_message_id(raw), read_message_id(raw)
    assert first == second
    assert first.endswith("@generated.qmail.invalid")
    assert len(first.partition("@")[0]) == 32
    assert read_message_id(raw + b"more") != first
    assert parsed_raw(raw).message_id == first


def test_empty_message_id_is_generated() -> None:
    raw = b"From: a@example.org\r\nMessage-ID: <>\r\n\r\nbody\r\n"
    assert read_message_id(raw).endswith("@generated.qmail.invalid")


def test_references_keep_order_and_drop_duplicates() -> None:
    raw = b"From: a@example.org\r\nReferences: <1@x> <2@x>\r\n\t<1@x> <3@x>\r\n\r\nhi\r\n"
    assert parsed_raw(raw).references == ("1@x", "2@x", "3@x")


def parsed_raw(raw: bytes) -> Mail:
    mail = parse_mail(raw)
    assert isinstance(mail, Mail), mail
    return mail


# --- headers ----------------------------------------------------------------------------


def test_encoded_words_in_mixed_and_unknown_charsets_are_decoded() -> None:
    mail = parsed("parse_bad_date_and_from")
    # RFC 2047: white space between adjacent encoded words is not part of the text.
    assert mail.subject == "Status caféokПривет =?utf-8?B?broken"


def test_unreadable_date_and_sender_become_none() -> None:
    mail = parsed("parse_bad_date_and_from")
    assert mail.date is None
    assert mail.sender is None


def test_date_without_zone_is_utc() -> None:
    mail = parsed("parse_short_message_id")
    assert mail.date == datetime(2024, 6, 4, 8, 15, 42, tzinfo=UTC)


def test_missing_subject_is_empty_and_missing_date_is_none() -> None:
    mail = parsed("parse_missing_headers")
    assert mail.subject == ""
    assert mail.date is None


def test_addresses_are_lower_cased_with_decoded_names() -> None:
    mail = parsed("parse_plain_utf8")
    assert mail.sender == Address("anna.schaefer@example.org", "Anna Schäfer")
    assert mail.cc == (Address("bob@example.org", "Bob O'Neil"), Address("carol@example.org"))


def test_raw_8bit_header_in_legacy_charset_is_readable() -> None:
    raw = b"From: J\xfcrgen <j@example.de>\r\nSubject: Gr\xfc\xdfe\r\n\r\nhi\r\n"
    mail = parsed_raw(raw)
    assert mail.subject == "Grüße"
    assert mail.sender == Address("j@example.de", "Jürgen")


def test_authentication_results_are_kept_topmost_first_and_unfolded() -> None:
    raw = (
        b"Authentication-Results: mx.test; dkim=pass\r\n header.d=acme.test\r\n"
        b"Received: from x by mx.test\r\n"
        b"authentication-results: evil.test; dmarc=pass\r\n"
        b"ARC-Authentication-Results: i=1; mx.test; spf=pass\r\n"
        b"From: a@acme.test\r\n\r\nAuthentication-Results: body.test; none\r\n"
    )
    assert parsed_raw(raw).auth_results == (
        "mx.test; dkim=pass header.d=acme.test",
        "evil.test; dmarc=pass",
    )


def test_mail_without_authentication_results_has_none() -> None:
    assert parsed("parse_plain_utf8").auth_results == ()


def test_mbox_from_line_is_skipped() -> None:
    raw = b"From someone@example.org Tue Jun  4 10:15:42 2024\r\nSubject: hi\r\n\r\nbody\r\n"
    assert parsed_raw(raw).subject == "hi"


# --- bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("parse_koi8r", "Добрый день"),
        ("parse_windows1251", "«Кавычки»"),
        ("parse_iso8859_15_euro", "450 €"),
        ("parse_shift_jis", "①～③"),
        ("parse_iso2022jp", "テストメール"),
        ("parse_no_charset_8bit", "Größe"),
    ],
)
def test_body_charsets_are_decoded(name: str, words: str) -> None:
    assert words in parsed(name).text


def test_lying_charset_degrades_to_readable_text() -> None:
    assert "Grüße aus Köln" in parsed("parse_lying_charset").text
    assert "voilà le résumé" in parsed("parse_lying_charset_latin1_declared").text
    assert "Prüfung bestanden" in parsed("parse_unknown_charset").text


def test_undecodable_bytes_become_replacement_characters() -> None:
    assert decode_text(b"ok \x81\x8d", "no-such-charset") == "ok \ufffd\ufffd"


def test_html_only_mail_becomes_readable_text() -> None:
    mail = parsed("parse_html_only")
    assert mail.from_html
    assert "[updated spec](https://docs.example.com/spec?v=2&lang=en)" in mail.text
    assert "Sales chart Q2" in mail.text


def test_hostile_html_never_reaches_text() -> None:
    text = parsed("parse_html_only").text
    for leak in ("LEAK", "<", "javascript", "document.cookie", "SECRET-TITLE", "font-family"):
        assert leak not in text


def test_html_text_is_plain_not_markdown_escaped() -> None:
    text = html.html_to_text("<p>1. first</p><p>- dash</p><table><tr><td>a</td><td>b</td></tr>")
    assert text == "1. first\n\n- dash\n\na b"


def test_multipart_alternative_prefers_plain_text() -> None:
    mail = parsed("parse_alternative")
    assert not mail.from_html
    assert "new numbers" in mail.text
    assert "<" not in mail.text


def test_empty_plain_part_falls_back_to_html() -> None:
    mail = parsed("parse_empty_plain_uses_html")
    assert mail.from_html
    assert mail.text == "Only the HTML part has words."


def test_html_part_without_charset_uses_its_meta_charset() -> None:
    markup = '<html><head><meta charset="windows-1251"></head><p>Привет</p>'.encode("cp1251")
    raw = b"From: a@example.org\r\nContent-Type: text/html\r\n\r\n" + markup
    assert parsed_raw(raw).text == "Привет"


def test_text_part_with_attachment_disposition_is_an_attachment() -> None:
    mail = parsed("parse_attachment_rfc2047")
    assert mail.text == "Drei Dateien anbei."
    assert mail.attachments[1].content == b"Notizen zur Besprechung\r\n"


def test_signature_delimiter_keeps_its_trailing_space() -> None:
    assert "\n-- \nAnna" in parsed("parse_plain_utf8").text


# --- attachments -----------------------------------------------------------------------


def test_inline_image_in_related_part_keeps_its_content_id() -> None:
    image, pdf = parsed("parse_apple_mixed_related").attachments
    assert image.inline and image.content_id == "F3A1B2C4-5D6E-4F70-8192-A3B4C5D6E7F8"
    assert image.content.startswith(b"\x89PNG")
    assert not pdf.inline and pdf.content.startswith(b"%PDF")


def test_non_ascii_attachment_names_are_decoded() -> None:
    names = [a.filename for a in parsed("parse_attachment_rfc2231").attachments]
    assert names == ["Счёт №5.pdf", "Prüfbericht – Mai.xlsx"]
    assert parsed("parse_outlook_nested").attachments[1].filename == "Prüfbericht.xlsx"


def test_attachment_names_lose_paths_and_control_characters() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''..%2Fetc%2Fpasswd%07X\r\n"
        b"\r\nroot\r\n--b--\r\n"
    )
    assert parsed_raw(raw).attachments[0].filename == ".._etc_passwd_X"


def test_forwarded_message_is_an_eml_attachment() -> None:
    (forwarded,) = parsed("parse_forwarded_rfc822").attachments
    assert forwarded.filename.endswith(".eml")
    assert forwarded.content.startswith(b"From: Dana Scully")


# --- malformed input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n",
        b"no headers at all, just words\r\n",
        bytes(range(256)) * 8,
        b"\xff\xfe\x00S\x00u\x00b\x00j\x00e\x00c\x00t\x00",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary",
    ],
)
def test_garbage_is_rejected_not_raised(raw: bytes) -> None:
    result = parse_mail(raw)
    assert isinstance(result, Reject)
    assert result.reply.startswith("554 5.6.0 Malformed message: ")


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: only headers",
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        b"From: a@example.org\r\nContent-Type: text/plain; charset=\r\n\r\n\xff\xfe",
        b"From: a@example.org\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64==\r\n",
        b"From: a@example.org\r\nContent-Type: ;;;==\r\n\r\nbody",
    ],
)
def test_odd_but_readable_mail_parses(raw: bytes) -> None:
    assert isinstance(parse_mail(raw), Mail)


@pytest.mark.parametrize("name", FIXTURES)
def test_damaged_fixture_never_raises(name: str) -> None:
    raw = eml_bytes(name)
    rng = random.Random(name)
    for _ in range(15):
        start = rng.randrange(len(raw))
        damaged = bytearray(raw[:start] + raw[start + rng.randrange(300) :])
        for _ in range(rng.randrange(4)):
            if damaged:
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        assert isinstance(parse_mail(bytes(damaged)), Mail | Reject)


def test_truncated_mail_keeps_what_arrived() -> None:
    mail = parsed("parse_truncated_boundary")
    assert mail.text == "Photo attached (the connection dropped)."
    assert mail.attachments[0].content.startswith(b"\xff\xd8\xff")


def test_reject_reason_is_one_ascii_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_: str) -> None:
        raise parse.MimeError("Ungültige\r\nStruktur " + "x" * 500)

    monkeypatch.setattr(parse.mime, "from_string", refuse)
    monkeypatch.setattr(parse, "read_with_stdlib", lambda _: None)  # nothing can read it
    result = parse_mail(eml_bytes("parse_plain_utf8"))
    assert isinstance(result, Reject)
    assert result.reason.startswith("5.6.0 Malformed message: Ung?ltige Struktur xxx")
    assert result.reason.isascii() and len(result.reason) < 250


def test_flanker_crash_falls_back_to_the_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(_: str) -> None:
        raise AttributeError("flanker bug")

    monkeypatch.setattr(parse.mime, "from_string", crash)
    mail = parsed("parse_apple_mixed_related")
    assert mail.text.startswith("Here is the floor plan")
    assert [a.filename for a in mail.attachments] == ["floorplan.png", "contract-signed.pdf"]
    assert mail.attachments[0].content_id == "F3A1B2C4-5D6E-4F70-8192-A3B4C5D6E7F8"
    forwarded = parsed("parse_forwarded_rfc822").attachments[0]
    assert b"The case file is in the cabinet." in forwarded.content


def test_stdlib_crash_after_flanker_crash_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(_: object) -> None:
        raise RecursionError("too deep")

    monkeypatch.setattr(parse.mime, "from_string", crash)
    monkeypatch.setattr(parse, "read_with_stdlib", crash)
    result = parse_mail(eml_bytes("parse_plain_utf8"))
    assert isinstance(result, Reject)
    assert "RecursionError" in result.reason


def test_broken_encoded_word_falls_back_to_stdlib_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(_: str) -> None:
        raise ValueError("flanker bug")

    monkeypatch.setattr(parse, "mime_to_unicode", crash)
    assert parse.decode_header("=?utf-8?q?caf=C3=A9?= ok") == "café ok"


def test_html2text_crash_falls_back_to_stripping_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(_: object, __: str) -> str:
        raise AssertionError("html2text bug")

    monkeypatch.setattr(html._Reader, "handle", crash)
    text = html.html_to_text("<p>Hi <script>evil()</script><b>there</b></p><style>x{}</style>")
    assert text == "Hi  there"


def test_empty_leaves_are_not_attachments() -> None:
    root = Part("multipart/mixed", children=(Part("text/plain", b"hi"), Part("image/png")))
    assert read_parts(root) == ("hi", False, ())


# --- what flanker refuses: the stdlib fallback (issue 9) --------------------------------


def flanker_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_: str) -> None:
        raise parse.MimeError("refused")

    monkeypatch.setattr(parse.mime, "from_string", refuse)


@pytest.mark.parametrize("name", EVERY_FIXTURE)
def test_stdlib_fallback_reads_every_fixture_as_flanker_does(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_flanker = parse_mail(eml_bytes(name))
    flanker_refuses(monkeypatch)
    by_stdlib = parse_mail(eml_bytes(name))
    if isinstance(by_flanker, Reject):
        assert isinstance(by_stdlib, Reject)
    else:
        assert by_stdlib == by_flanker


@pytest.mark.parametrize(
    "name",
    [
        "parse_outlook_express_unquoted_boundary",
        "parse_javamail_unquoted_boundary",
        "parse_forwarded_broken_rfc822",
    ],
)
def test_mail_flanker_refuses_is_read_by_the_stdlib(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(parse_mail(eml_bytes(name)), Mail)
    monkeypatch.setattr(parse, "read_with_stdlib", lambda _: None)
    refused = parse_mail(eml_bytes(name))
    assert isinstance(refused, Reject)
    assert refused.reason.endswith("Multipart message without starting boundary")


def test_refusal_names_what_flanker_found() -> None:
    refused = parse_mail(eml_bytes("parse_multipart_without_boundary"))
    assert refused == Reject(554, "5.6.0 Malformed message: Multipart message without boundary")


def test_broken_forwarded_message_is_kept_as_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(_: object) -> bytes:
        raise UnicodeEncodeError("ascii", "x", 0, 1, "broken header")

    monkeypatch.setattr(email.message.Message, "as_bytes", crash)  # never re-generated
    raw = eml_bytes("parse_forwarded_broken_rfc822")
    (forwarded,) = parsed("parse_forwarded_broken_rfc822").attachments
    start = raw.index(b"From: Finance Robot")
    assert forwarded.content == raw[start : raw.rindex(b"\r\n--------------0mXyT3bQ8vK2")]


def test_broken_inner_multipart_becomes_an_opaque_attachment() -> None:
    inner = b'Content-Type: multipart/alternative; boundary="in"\r\n\r\n--lost\r\nhi\r\n'
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=out\r\n\r\n"
        b"--out\r\nContent-Type: text/plain\r\n\r\nThe table is broken.\r\n--out\r\n"
        + inner
        + b"--out--\r\n"
    )
    mail = parsed_raw(raw)
    assert mail.text == "The table is broken."
    (opaque,) = mail.attachments
    assert (opaque.filename, opaque.content_type) == ("attachment-1.bin", "multipart/alternative")
    assert opaque.content == b"--lost\r\nhi\r\n"  # the stdlib leaves the CRLF of a multipart


def test_multipart_whose_boundary_never_appears_is_refused() -> None:
    raw = b'From: a@example.org\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--y\r\nhi\r\n'
    result = parse_mail(raw)
    assert isinstance(result, Reject)
    assert result.reason.startswith("5.6.0 Malformed message: ")


def test_stdlib_tree_of_a_bare_message() -> None:
    message = email.message.Message()
    message["Content-Type"] = "message/rfc822"
    message.set_payload(["not a message"])
    assert fallback.part_from_email(message) == Part("message/rfc822")


# --- address comments and file names (issue 9) ------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ('"Jan" <jan@x.nl> (Sales dept)', "Jan"),
        ("Jan Jansen <jan@x.nl> (Sales)", "Jan Jansen"),
        ("jan@x.nl (Jan Jansen)", "Jan Jansen"),
        ("<jan@x.nl> (Jan Jansen)", "Jan Jansen"),
        ("(Jan Jansen) jan@x.nl", "Jan Jansen"),
        ('"Jan (Sales)" <jan@x.nl>', "Jan (Sales)"),
        ("jan@x.nl (Jan", "Jan"),
        ("jan@x.nl (=?utf-8?q?J=C3=B6rg?=)", "Jörg"),
        ("=?utf-8?q?J=C3=B6rg?= <jan@x.nl> (=?utf-8?q?K=C3=B6ln?=)", "Jörg"),
        ("Jan <jan@x.nl (inside the brackets)>", "Jan"),
        ("jan@x.nl", ""),
    ],
)
def test_address_comments_are_comments_unless_there_is_no_name(value: str, name: str) -> None:
    assert parse.addresses(value) == (Address("jan@x.nl", name),)


def test_file_names_are_read_the_same_from_flanker_and_the_stdlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ["Frösche.txt", "Grüße aus Köln.pdf", "Äpfel.txt"]
    assert [a.filename for a in parsed("parse_rfc2231_quoted").attachments] == names
    flanker_refuses(monkeypatch)
    assert [a.filename for a in parsed("parse_rfc2231_quoted").attachments] == names


# --- uuencode (issue 9) -----------------------------------------------------------------


def test_uuencode_lines_that_lost_their_trailing_spaces_still_decode() -> None:
    # Pine's uuencode writes spaces, which relays strip from the ends of lines.
    raw = re.sub(rb" +\r\n", b"\r\n", eml_bytes("parse_pine_x_uuencode"))
    assert raw != eml_bytes("parse_pine_x_uuencode")
    (config,) = parsed_raw(raw).attachments
    assert (
        hashlib.sha256(config.content).hexdigest()
        == expected("parse_pine_x_uuencode")["attachment_sha256"][0]
    )


@pytest.mark.parametrize(
    "body",
    [
        b"begin 644 cut.bin\r\nM86)C\r\n",  # the end never came
        b"begin 644 a.txt\r\n#86)C\r\n`\r\nend\r\nbegin 644 b.txt\r\n#86)C\r\n`\r\nend\r\n",
        b"SGVsbG8gd29ybGQ=\r\n",  # base64 under the wrong name
    ],
)
def test_uuencoded_part_that_is_not_one_block_is_kept_as_sent(body: bytes) -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: application/octet-stream; name="data.bin"\r\n'
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\n" + body + b"--b--\r\n"
    )
    (kept,) = parsed_raw(raw).attachments
    assert (kept.filename, kept.content) == ("data.bin", body.removesuffix(b"\r\n"))


def test_uuencoded_block_in_a_quote_stays_text() -> None:
    body = "Did you mean this?\n\n> begin 644 a.txt\n> #86)C\n> `\n> end"
    raw = b"From: a@example.org\r\n\r\n" + body.replace("\n", "\r\n").encode()
    mail = parsed_raw(raw)
    assert (mail.text, mail.attachments) == (body, ())


# --- signed mail (issue 9) --------------------------------------------------------------


def test_signature_file_outside_a_signed_mail_is_an_attachment() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nThe signature of the release.\r\n--b\r\n"
        b'Content-Type: application/pgp-signature; name="qtool-2.4.1.tar.gz.asc"\r\n\r\n'
        b"-----BEGIN PGP SIGNATURE-----\r\n\r\niQE=\r\n-----END PGP SIGNATURE-----\r\n--b--\r\n"
    )
    (signature,) = parsed_raw(raw).attachments
    assert signature.filename == "qtool-2.4.1.tar.gz.asc"


def test_inline_pgp_without_its_signature_stays_as_sent() -> None:
    raw = eml_bytes("parse_mutt_inline_pgp").replace(b"-----END PGP SIGNATURE-----", b"")
    text = parsed_raw(raw).text
    assert text.startswith("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nHi all,")
    assert "- - fixed the build on arm64" in text


def test_inline_pgp_keeps_the_words_around_it() -> None:
    body = (
        "Forwarded as it came:\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
        "Signed words.\n-----BEGIN PGP SIGNATURE-----\n\niQE=\n-----END PGP SIGNATURE-----\n"
        "-- \nlist footer"
    )
    raw = b"From: a@example.org\r\n\r\n" + body.replace("\n", "\r\n").encode()
    assert parsed_raw(raw).text == "Forwarded as it came:\nSigned words.\n-- \nlist footer"


# --- garbage in the new readers never raises (issue 9) ----------------------------------


def test_new_readers_never_raise_on_garbage() -> None:
    rng = random.Random(9)
    pieces = [
        "begin 644 a.txt", "#86)C", "`", "end", "M", "-----BEGIN PGP SIGNED MESSAGE-----",
        "Hash: SHA1", "", "- -- ", "-----BEGIN PGP SIGNATURE-----", "-----END PGP SIGNATURE-----",
        '"', "(", ")", "\\", "<", ">", ",", ";", ":", "=?utf-7?B?", "?=", "*0*=", "''", "%F6",
    ]  # fmt: skip
    for _ in range(400):
        text = "".join(rng.choice(pieces) + rng.choice(["", "\n", " "]) for _ in range(30))
        lifted, files = uuencode.lift_files(text)
        if not files:
            assert lifted == text
        assert set(lifted.split("\n")) <= set(text.split("\n"))
        signed.unarmour(text)
        parse.addresses(text.replace("\n", " "))
        fields.parameter("attachment; " + text.replace("\n", " "), "filename")


# --- large mail: long runs of body lines set aside while flanker reads (issue 10) -------


@pytest.mark.parametrize("name", EVERY_FIXTURE)
def test_every_fixture_reads_the_same_with_its_body_lines_set_aside(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = parse_mail(eml_bytes(name))
    monkeypatch.setattr(parse, "MIN_RUN", 1)  # every run of body lines, however short
    assert parse_mail(eml_bytes(name)) == whole


def large_mail(size: int, subtype: str = "pdf") -> tuple[bytes, bytes]:
    """A mail of about ``size`` bytes with one base64 attachment, and that attachment."""
    content = random.Random(size).randbytes(size * 57 // 78)
    mail = email.message.EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "ann@client.test", "tasks@example.com", "Scan"
    mail.set_content("Hello,\n\nthe scan is attached.\n")
    mail.add_attachment(content, maintype="application", subtype=subtype, filename="scan.pdf")
    return mail.as_bytes().replace(b"\n", b"\r\n"), content


def test_a_20_mb_attachment_is_read_without_a_copy_of_the_mail() -> None:
    raw, content = large_mail(20_000_000)
    tracemalloc.start()
    try:
        mail = parse_mail(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(mail, Mail) and mail.text == "Hello,\n\nthe scan is attached."
    (attachment,) = mail.attachments
    assert attachment.filename == "scan.pdf" and attachment.content == content
    # The file, decoded where it lies in the mail (flanker alone took 12 times the mail).
    assert peak < 1.2 * len(raw)


def test_mail_that_holds_the_marker_word_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = eml_bytes("parse_plain_utf8").replace(b"\r\n\r\n", b"\r\n\r\nqmailhollow0x\r\n", 1)
    whole = parse_mail(raw)
    monkeypatch.setattr(parse, "MIN_RUN", 1)
    assert parse_mail(raw) == whole
    assert isinstance(whole, Mail) and whole.text.startswith("qmailhollow0x\n")


@pytest.mark.parametrize("seed", range(200))
def test_base64_decodes_the_same_on_the_fast_path_as_forgiving_every_fault(seed: int) -> None:
    rng = random.Random(seed)
    encoded = bytearray(base64.encodebytes(rng.randbytes(rng.randrange(0, 60))))
    for _ in range(rng.randrange(0, 4)):  # damage: stray bytes, lost letters, padding
        position = rng.randrange(len(encoded) + 1)
        damage = rng.choice([b"=", b"==", b"!", b" ", b"\r\n", b"\xff", b"-_", b""])
        encoded[position : position + rng.randrange(0, 3)] = damage
    body = bytes(encoded)
    assert parts.transfer_decode("base64", body) == parts._forgiving_base64(body)


def test_a_mass_mailing_names_at_most_a_hundred_people_per_field() -> None:
    copied = ", ".join(f"Person {n} <p{n}@client.test>" for n in range(3000))
    raw = f"From: a@b.test\r\nTo: {copied}\r\nCc: {copied}\r\n\r\nHello\r\n".encode()
    mail = parse_mail(raw)
    assert isinstance(mail, Mail)
    assert len(mail.to) == len(mail.cc) == parse.MAX_ADDRESSES == 100
    assert mail.cc[-1] == Address("p99@client.test", "Person 99")


def test_a_mail_with_too_many_header_fields_is_refused_as_malformed() -> None:
    fields = "".join(f"X-Filler-{n}: x\r\n" for n in range(parse.MAX_HEADER_FIELDS))
    raw = f"From: a@b.test\r\n{fields}\r\nHello\r\n".encode()
    assert parse_mail(raw) == Reject(554, "5.6.0 Malformed message: more than 1000 header fields")
    assert isinstance(parse_mail(raw.replace(b"X-Filler-0: x\r\n", b"")), Mail)


def _leaves(part: Part) -> list[tuple[str, str, str | None, str, bytes]]:
    if part.children:
        return [leaf for child in part.children for leaf in _leaves(child)]
    return [(part.content_type, part.disposition, part.content_id, part.filename, part.payload)]


def test_whichever_parser_reads_a_mail_its_parts_say_the_same():
    """Flanker reads the tree; each part's disposition, encoding, Content-ID and file name
    are read from its bytes, as for the standard library's parts: every mail of the corpus
    gives the same parts either way."""
    differ, compared = [], 0
    for path in sorted(MAIL_DIR.glob("*.eml")):
        raw = path.read_bytes()
        by_flanker, by_stdlib = parse.read_tree(raw), fallback.read_with_stdlib(raw)
        if isinstance(by_flanker, str) or by_stdlib is None or not fields.header_fields(raw):
            continue  # (a mail flanker refuses, or one refused for having no header)
        compared += 1
        if _leaves(by_flanker) != _leaves(by_stdlib):
            differ.append(path.name)
    assert differ == [] and compared > 150


def test_a_parts_fields_are_read_whatever_their_case_spacing_and_parameters():
    raw = (
        b"From: a@b.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: ATTACHMENT ; filename="a;b.pdf"\r\n'
        b"Content-Transfer-Encoding:  Base64 \r\n"
        b"Content-ID: < logo@x >\r\n\r\n" + base64.b64encode(b"%PDF-1.4 tiny") + b"\r\n--b--\r\n"
    )
    root = parse.read_tree(raw)
    assert isinstance(root, Part)
    assert _leaves(root) == [
        ("text/plain", "", None, "", b"Hello"),
        ("application/pdf", "attachment", "logo@x", "a;b.pdf", b"%PDF-1.4 tiny"),
    ]
    assert _leaves(root) == _leaves(fallback.read_with_stdlib(raw))  # type: ignore[arg-type]
