"""Known quotes: replies that quote what we sent lose exactly our lines, and keep theirs.

Each ``tests/mail/known_*.eml`` has a sibling ``known_*.sent.txt`` with the bodies we sent
to that person (several bodies are separated by a ``-----8<----- next sent body`` line)
and a golden ``known_*.expected.json``.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from qmail.core.html import html_to_text
from qmail.core.known_quotes import remove_known_quotes
from qmail.core.mail import Trimmed
from qmail.core.trim import trim_reply
from tests.conftest import MAIL_DIR, eml_bytes, expected

FIXTURES = sorted(path.stem for path in MAIL_DIR.glob("known_*.eml"))
SEPARATOR = "-----8<----- next sent body -----8<-----\n"

NOTIFICATION = """Anna Smith wrote in #12 Release checklist:

Two questions before the release:
1. Can we ship on Friday?
2. Who updates the changelog?

Thanks,
Anna

--\x20
Reply to this mail to add to the discussion of #12.
"""


def body_text(raw: bytes) -> str:
    """The readable body: text/plain, or the HTML part as html_to_text reads it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    if part is not None:
        content = part.get_content()
    else:
        html = message.get_body(("html",))
        assert html is not None
        content = html_to_text(html.get_content())
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def sent_bodies(name: str) -> list[str]:
    """The bodies we sent to the author of fixture ``name``."""
    text = (MAIL_DIR / f"{name}.sent.txt").read_text(encoding="utf-8")
    return text.split(SEPARATOR)


def known(text: str, sent: str = NOTIFICATION, quoted: str = "") -> Trimmed:
    """Remove known quotes from ``text`` that ``trim_reply`` left, for the rule tests."""
    return remove_known_quotes(Trimmed(text, quoted), [sent])


# --- fixtures --------------------------------------------------------------------------


def test_there_are_known_fixtures_for_every_quoting_style() -> None:
    for style in ("gmail", "thunderbird", "outlook", "mobile", "html", "thanks", "unrelated"):
        assert any(style in name for name in FIXTURES), style


@pytest.mark.parametrize("name", FIXTURES)
def test_known_fixture_trims_to_golden_text(name: str) -> None:
    golden = expected(name)
    result = remove_known_quotes(trim_reply(body_text(eml_bytes(name))), sent_bodies(name))
    assert result.text == golden["text"]
    for fragment in golden["quoted_contains"]:
        assert fragment in result.quoted


@pytest.mark.parametrize("name", FIXTURES)
def test_known_quotes_lose_no_line(name: str) -> None:
    body = body_text(eml_bytes(name))
    result = remove_known_quotes(trim_reply(body), sent_bodies(name))
    kept = [line.rstrip() for line in result.text.splitlines() + result.quoted.splitlines()]
    for line in body.splitlines():
        if line.strip():
            assert line.rstrip() in kept


def test_gmail_reply_stays_as_trim_reply_cut_it() -> None:
    trimmed = trim_reply(body_text(eml_bytes("known_gmail_en")))
    assert remove_known_quotes(trimmed, sent_bodies("known_gmail_en")) == trimmed


def test_reply_quoting_nothing_we_sent_comes_back_unchanged() -> None:
    trimmed = trim_reply(body_text(eml_bytes("known_unrelated_quote_en")))
    assert remove_known_quotes(trimmed, sent_bodies("known_unrelated_quote_en")) is trimmed


def test_markerless_paste_is_invisible_to_trim_reply_alone() -> None:
    trimmed = trim_reply(body_text(eml_bytes("known_mobile_paste_en")))
    assert "Which address did you use for the reset?" in trimmed.text


# --- the rules, one at a time ----------------------------------------------------------


def test_nothing_sent_returns_the_same_value() -> None:
    trimmed = Trimmed("> 1. Can we ship on Friday?\n\nYes.")
    assert remove_known_quotes(trimmed, []) is trimmed
    assert remove_known_quotes(trimmed, ["", "\n-- \n"]) is trimmed


def test_inline_answers_survive_between_removed_lines() -> None:
    text = "> 1. Can we ship on Friday?\n\nYes.\n\n> 2. Who updates the changelog?\n\nMe."
    result = known(text)
    assert result.text == "Yes.\n\nMe."
    assert result.quoted == "> 1. Can we ship on Friday?\n\n> 2. Who updates the changelog?"


def test_removed_lines_are_appended_after_what_trim_removed() -> None:
    result = known("Yes.\n\n> 1. Can we ship on Friday?", quoted="-- \nBob")
    assert result == Trimmed("Yes.", "-- \nBob\n> 1. Can we ship on Friday?")


def test_lines_joined_by_the_client_match_across_our_line_breaks() -> None:
    text = "> Two questions before the release: 1. Can we ship on Friday? 2. Who\n\nMe."
    assert known(text).text == "Me."


def test_lines_split_by_the_client_match_even_without_markers() -> None:
    sent = "The export of the May invoices times out after 30 seconds on big accounts.\n"
    text = "The export of the May invoices\ntimes out after 30 seconds\non big accounts.\n\nFixed."
    assert known(text, sent).text == "Fixed."


def test_unmarked_continuation_of_a_wrapped_quote_is_removed() -> None:
    sent = "Could you check whether the export still runs on the old renderer?\n"
    text = "> Could you check whether the export still runs on the old\nrenderer?\n\nIt does."
    assert known(text, sent).text == "It does."


def test_nested_and_pipe_markers_and_white_space_do_not_matter() -> None:
    text = "> >  Two   questions before\n|\tthe release:\n>>1. Can we ship on Friday?\n\nYes."
    assert known(text).text == "Yes."


def test_typographic_quotes_dashes_and_unicode_forms_are_normalized() -> None:
    sent = 'It\'s the "new" renderer - caf\u00e9 edition.\n'
    text = "> It\u2019s the \u201cnew\u201d renderer \u2013 cafe\u0301 edition.\n\nOK."
    assert known(text, sent).text == "OK."


def test_html2text_markup_is_ignored() -> None:
    sent = "Open https://tasks.example.com/t/12 and see the wiki - changelog for **details**.\n"
    text = (
        "> Open <https://tasks.example.com/t/12> and see [the wiki](https://w.example) \\-\n"
        "> changelog for **details**.\n\nDone."
    )
    assert known(text, sent).text == "Done."


def test_matching_is_case_sensitive() -> None:
    text = "two questions before the release:\n\nYes."
    assert known(text).text == text


def test_a_line_with_words_of_its_own_is_kept() -> None:
    text = "> 1. Can we ship on Friday? Yes, we can.\n\nBob"
    assert known(text).text == text


def test_short_unmarked_line_alone_is_the_persons_own() -> None:
    text = "Thanks,\nBob\n\n> 2. Who updates the changelog?"
    assert known(text).text == "Thanks,\nBob"


def test_short_unmarked_line_after_a_marked_quote_and_a_blank_is_kept() -> None:
    # In our text "Thanks," follows "changelog?", but here the person signs off.
    text = "> 2. Who updates the changelog?\n\nThanks,\nBob"
    assert known(text).text == "Thanks,\nBob"


def test_short_marked_line_is_ours() -> None:
    text = "Friday is fine.\n\n> Thanks,\n> Anna"
    result = known(text)
    assert result.text == "Friday is fine."
    assert result.quoted == "> Thanks,\n> Anna"


def test_short_unmarked_lines_inside_a_pasted_run_are_ours() -> None:
    text = "Me.\n\n" + NOTIFICATION
    result = known(text)
    assert result.text == "Me."
    assert "Thanks,\nAnna" in result.quoted


def test_short_unmarked_line_opening_a_pasted_run_is_ours() -> None:
    sent = "Hi Bob,\n\nthe export of the May invoices times out.\n"
    result = known("Done.\n\nHi Bob,\n\nthe export of the May invoices times out.", sent)
    assert result.text == "Done."


def test_attribution_left_above_our_text_is_removed() -> None:
    text = "Yes.\n\nOn Mon, 3 Jun 2024 at 10:12, Anna wrote:\n\nTwo questions before the release:"
    result = known(text)
    assert result.text == "Yes."
    assert result.quoted.startswith("On Mon, 3 Jun 2024 at 10:12, Anna wrote:")


def test_own_line_ending_with_colon_above_our_text_is_kept() -> None:
    text = "My answer to point 2:\n> 2. Who updates the changelog?\n\nMe."
    assert known(text).text == "My answer to point 2:\n\nMe."


def test_our_wordless_lines_and_bare_markers_inside_a_block_are_removed() -> None:
    text = "Me.\n\n> Thanks,\n>\n> Anna\n> --\n> Reply to this mail to add to the discussion"
    assert known(text).text == "Me."


def test_persons_wordless_line_between_our_lines_is_kept() -> None:
    text = "> 1. Can we ship on Friday?\n:-)\n> 2. Who updates the changelog?"
    assert known(text).text == ":-)"


def test_everything_ours_leaves_empty_text() -> None:
    text = "> 1. Can we ship on Friday?\n>\n> 2. Who updates the changelog?"
    assert known(text) == Trimmed("", text)


def test_the_persons_own_blank_lines_are_kept() -> None:
    text = "First.\n\n\nSecond.\n\n> 1. Can we ship on Friday?\n\nThird."
    assert known(text).text == "First.\n\n\nSecond.\n\nThird."


def test_a_bare_marker_where_our_pasted_text_begins_goes_with_it() -> None:
    text = "Yes, Friday.\n\n>\n> 2. Who updates the changelog?\n>\n> Thanks,\n> Anna"
    assert known(text) == Trimmed(
        "Yes, Friday.", ">\n> 2. Who updates the changelog?\n>\n> Thanks,\n> Anna"
    )


def test_a_line_repeated_in_two_bodies_matches_the_run_it_continues() -> None:
    sent = [
        "Status: open since Monday\nTags: release\n",
        "Status: open since Monday\nTags: billing\n",
    ]
    result = remove_known_quotes(Trimmed("Ok.\n\nStatus: open since Monday\nTags: billing"), sent)
    assert result.text == "Ok."


def test_long_bodies_and_long_quotes_are_matched() -> None:
    sent = [" ".join(f"word{i}" for i in range(5_000)) + "\n"]
    text = "\n".join(" ".join(f"word{i}" for i in range(j, j + 8)) for j in range(0, 4_000, 8))
    assert remove_known_quotes(Trimmed(text + "\n\nMine."), sent).text == "Mine."
