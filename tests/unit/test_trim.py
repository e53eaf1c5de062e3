"""The trim stage: replies as real mail clients write them, cut down to the new text."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from qmail.core.mail import Trimmed
from qmail.core.trim import trim_reply
from tests.conftest import MAIL_DIR, eml_bytes, expected

REPLIES = sorted(path.stem for path in MAIL_DIR.glob("reply_*.eml"))


def plain_body(raw: bytes) -> str:
    """The decoded text/plain body, read with the stdlib (parse.py is not used here)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_there_are_reply_fixtures_for_every_client() -> None:
    clients = ("gmail", "outlook", "apple_mail", "thunderbird", "iphone", "android", "yandex")
    assert len(REPLIES) >= 16
    for client in (*clients, "mailru", "signature", "inline"):
        assert any(client in name for name in REPLIES), client


@pytest.mark.parametrize("name", REPLIES)
def test_reply_fixture_trims_to_golden_text(name: str) -> None:
    golden = expected(name)
    trimmed = trim_reply(plain_body(eml_bytes(name)))
    assert trimmed.text == golden["text"]
    for fragment in golden["quoted_contains"]:
        assert fragment in trimmed.quoted
    if "quoted" in golden:
        assert trimmed.quoted == golden["quoted"]


@pytest.mark.parametrize("name", REPLIES)
def test_trimming_loses_no_line(name: str) -> None:
    body = plain_body(eml_bytes(name)).replace("\r\n", "\n")
    trimmed = trim_reply(body)
    kept = trimmed.text.splitlines() + trimmed.quoted.splitlines()
    for line in body.splitlines():
        if line.strip():
            assert line.rstrip() in (k.rstrip() for k in kept)


def test_top_posted_reply_keeps_only_new_text() -> None:
    text = (
        "Sounds good.\n\n"
        "On Mon, 3 Jun 2024 at 10:12, Anna <anna@example.com> wrote:\n"
        "> Shall we ship?\n"
        "> Anna\n"
    )
    assert trim_reply(text) == Trimmed(
        "Sounds good.",
        "On Mon, 3 Jun 2024 at 10:12, Anna <anna@example.com> wrote:\n> Shall we ship?\n> Anna",
    )


def test_sentence_mentioning_wrote_is_not_cut() -> None:
    text = "I think Bob wrote: the plan is fine.\nLet's go ahead.\n"
    assert trim_reply(text) == Trimmed("I think Bob wrote: the plan is fine.\nLet's go ahead.")


def test_attribution_without_quote_after_it_is_kept() -> None:
    text = "Here is what Bob wrote:\n\nthe plan is fine, ship it.\n"
    assert trim_reply(text).text == "Here is what Bob wrote:\n\nthe plan is fine, ship it."


def test_from_line_in_the_middle_of_text_is_not_cut() -> None:
    text = "Agreed.\n\nFrom: the team's point of view this is done.\nTo: be checked on Friday.\n"
    assert trim_reply(text) == Trimmed(text.strip())


def test_reply_that_is_all_quote_is_kept() -> None:
    text = "On Mon, 3 Jun 2024 at 10:12, Anna <anna@example.com> wrote:\n> Ship it?\n"
    assert trim_reply(text) == Trimmed(text.strip(), "")


def test_empty_reply_stays_empty() -> None:
    assert trim_reply("") == Trimmed("", "")


def test_signature_after_dash_dash_space_goes_to_quoted() -> None:
    text = "Done.\n\n-- \nBob Miller\nACME Operations\n"
    assert trim_reply(text) == Trimmed("Done.", "-- \nBob Miller\nACME Operations")


def test_dash_dash_without_space_before_a_short_block_is_a_signature() -> None:
    assert trim_reply("Done.\n--\nBob\n") == Trimmed("Done.", "--\nBob")


def test_dash_dash_without_space_before_a_long_block_is_kept() -> None:
    text = "Steps:\n--\n" + "\n".join(f"step {n}" for n in range(1, 9))
    assert trim_reply(text) == Trimmed(text)


def test_inline_answers_are_kept() -> None:
    text = (
        "On 03/06/2024 10:12, Anna wrote:\n"
        "> Can we ship on Friday?\n"
        "Yes.\n"
        "> Who writes the changelog?\n"
        "Me.\n"
        "> Thanks,\n"
        "> Anna\n"
    )
    trimmed = trim_reply(text)
    assert trimmed.text == "> Can we ship on Friday?\nYes.\n> Who writes the changelog?\nMe."
    assert trimmed.quoted == "On 03/06/2024 10:12, Anna wrote:\n> Thanks,\n> Anna"


def test_answer_below_a_single_quote_keeps_that_quote() -> None:
    text = "> Can we ship on Friday?\n\nYes, we can.\n"
    assert trim_reply(text) == Trimmed("> Can we ship on Friday?\n\nYes, we can.")


def test_gmail_attribution_wrapped_over_two_lines_is_removed() -> None:
    text = (
        "Fine.\n\n"
        "On Mon, 3 Jun 2024 at 10:12, Anna Smith via qmail <\n"
        "reply+abc@tasks.example.com> wrote:\n\n"
        "> Ship it?\n"
    )
    assert trim_reply(text).text == "Fine."


def test_text_line_right_above_an_attribution_stays_text() -> None:
    text = "Thanks\nOn Mon, 3 Jun 2024 at 10:12, Anna <anna@example.com> wrote:\n> Ship it?\n"
    assert trim_reply(text).text == "Thanks"


def test_html2text_quotes_and_bold_outlook_headers_are_recognised() -> None:
    text = (
        "Ok.\n\n"
        "**From:** Anna <anna@example.com>\n"
        "**Sent:** Monday, June 3, 2024 10:12 AM\n"
        "**To:** Bob <bob@example.com>\n\n"
        "> Ship it?\n"
    )
    assert trim_reply(text) == Trimmed("Ok.", text.split("\n\n", 1)[1].strip())


def test_outlook_separator_goes_to_quoted_with_the_headers() -> None:
    text = (
        "Ok.\n\n________________________________\n\n"
        "From: Anna <anna@example.com>\nSent: Monday\nSubject: Ship\n\nShip it?"
    )
    trimmed = trim_reply(text)
    assert trimmed.text == "Ok."
    assert trimmed.quoted.startswith("________________________________")


def test_original_message_line_alone_cuts() -> None:
    text = "Ok.\n\n-----Ursprüngliche Nachricht-----\nHallo"
    assert trim_reply(text) == Trimmed("Ok.", "-----Ursprüngliche Nachricht-----\nHallo")


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my Android",
        "Get Outlook for iOS",
        "Отправлено с iPhone",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Inviato da iPhone",
        "Enviado desde mi iPhone",
        "Enviado do meu iPhone",
        "Verzonden vanaf mijn iPhone",
    ],
)
def test_mobile_footer_goes_to_quoted(footer: str) -> None:
    assert trim_reply(f"On my way.\n\n{footer}\n") == Trimmed("On my way.", footer)


def test_footer_words_followed_by_more_text_are_kept() -> None:
    text = "Sent from my laptop, the phone is dead.\nCall me later.\n"
    assert trim_reply(text).text == text.strip()


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 3 Jun 2024 at 10:12, Name <a@b.com> wrote:",
        "On 3 Jun 2024, at 10:12, Name <a@b.com> wrote:",
        "On 03/06/2024 10:12, Name wrote:",
        '03.06.2024, 10:12, "Иван" <ivan@yandex.ru>:',
        "03.06.2024, 10:12, Иван Петров <ivan@yandex.ru>:",
        "Понедельник, 3 июня 2024, 10:12 +03:00 от Иван <ivan@mail.ru>:",
        "пн, 3 июн. 2024 г. в 10:12, Иван <ivan@x.ru>:",
        "3 июня 2024 г., в 10:12, Иван написал(а):",
        "Il giorno lun 3 giu 2024 alle ore 10:12 Nome <a@b.it> ha scritto:",
        "Am Mo., 3. Juni 2024 um 10:12 Uhr schrieb Name <a@b.de>:",
        "Le lun. 3 juin 2024 à 10:12, Nom <a@b.fr> a écrit :",
        "El lun, 3 jun 2024 a las 10:12, Nombre (<a@b.es>) escribió:",
        "Em seg., 3 de jun. de 2024 às 10:12, Nome <a@b.pt> escreveu:",
        "Op ma 3 jun 2024 om 10:12 schreef Naam <a@b.nl>:",
    ],
)
def test_attribution_before_a_quote_goes_to_quoted(attribution: str) -> None:
    text = f"New text.\r\n\r\n{attribution}\r\n\r\n> old text\r\n"
    assert trim_reply(text) == Trimmed("New text.", f"{attribution}\n\n> old text")


@pytest.mark.parametrize(
    "header",
    [
        "От: Иван <i@x.ru>\nОтправлено: 3 июня 2024 г. 10:12\nКому: a@x.ru\nТема: Re: [#12]",
        "Von: Max <m@x.de>\nGesendet: Montag, 3. Juni 2024 10:12\nAn: a@x.de\nBetreff: AW:",
        "De : Nom <n@x.fr>\nEnvoyé : lundi 3 juin 2024 10:12\nÀ : a@x.fr\nObjet : RE:",
        "Da: Nome <n@x.it>\nInviato: lunedì 3 giugno 2024 10:12\nA: a@x.it\nOggetto: R:",
        "De: Nombre <n@x.es>\nEnviado: lunes, 3 de junio de 2024 10:12\nPara: a@x.es\nAsunto:",
    ],
)
def test_localized_outlook_header_block_cuts(header: str) -> None:
    assert trim_reply(f"Ok.\n\n{header}\n\nold text") == Trimmed("Ok.", f"{header}\n\nold text")


def test_html2text_address_link_in_attribution_is_recognised() -> None:
    attribution = '03.06.2024, 10:12, "Иван" <[ivan@yandex.ru](mailto:ivan@yandex.ru)>:'
    text = f"Ок.\n\n{attribution}\n\n> Вопрос\n"
    assert trim_reply(text) == Trimmed("Ок.", f"{attribution}\n\n> Вопрос")
