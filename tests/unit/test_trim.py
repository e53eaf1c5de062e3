"""The trim stage: replies as real mail clients write them, cut down to the new text."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from qmail.core.html import html_to_text
from qmail.core.mail import Trimmed
from qmail.core.trim import trim_reply
from tests.conftest import MAIL_DIR, eml_bytes, expected

REPLIES = sorted(path.stem for path in MAIL_DIR.glob("reply_*.eml"))
# One fixture per class of issue 9 and per language, and one per trap that must be kept:
# trim_<class>[_<variant>]_<language>.
TRIMS = sorted(path.stem for path in MAIL_DIR.glob("trim_*.eml"))
LANGUAGES = ("en", "ru", "uk", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "no", "da", "fi",
             "zh", "ja")  # fmt: skip


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


def test_there_are_trim_fixtures_for_every_class_and_language() -> None:
    for kind in ("attribution", "history", "footer", "signature"):
        for language in LANGUAGES:
            assert any(
                name.startswith(f"trim_{kind}_") and name.endswith(f"_{language}") for name in TRIMS
            ), (kind, language)
    for variant in ("quote", "quote_top", "attribution_date_first", "attribution_you_wrote",
                    "attribution_mailto", "attribution_zoho", "history_decorated",
                    "footer_outlook_android", "footer_windows_mail", "footer_phone",
                    "footer_blackberry", "footer_airmail", "footer_yahoo", "footer_list",
                    "signature_dash_name", "signature_delimiter"):  # fmt: skip
        assert f"trim_{variant}_en" in TRIMS, variant


def test_there_is_a_fixture_for_every_trap() -> None:
    for trap in ("regards", "sent_from", "on_wrote", "url_wrote", "code_block", "inline"):
        assert f"trim_trap_{trap}_en" in TRIMS, trap


@pytest.mark.parametrize("name", REPLIES + TRIMS)
def test_reply_fixture_trims_to_golden_text(name: str) -> None:
    golden = expected(name)
    trimmed = trim_reply(plain_body(eml_bytes(name)))
    assert trimmed.text == golden["text"]
    for fragment in golden["quoted_contains"]:
        assert fragment in trimmed.quoted
    if "quoted" in golden:
        assert trimmed.quoted == golden["quoted"]


@pytest.mark.parametrize("name", REPLIES + TRIMS)
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


# --- issue 9: history that is not quoted, wrapped attributions, footers, signatures ------


@pytest.mark.parametrize(
    "attribution",
    [
        "W dniu 2017-01-09 11:59:39 użytkownik Anna <a@b.pl> napisał:",
        "Dnia 27 grudnia 2016 12:08 Anna <a@b.pl> napisał(a):",
        "Den 4 juni 2024 kl. 09:12 skrev Anna Lind <a@b.se>:",
        "tir. 4. jun. 2024 kl. 09:12 skrev Kari <k@b.no>:",
        "ti 4.6.2024 klo 9.12 Anna Korhonen (a@b.fi) kirjoitti:",
        "вт, 4 черв. 2024 р. о 09:12 Андрій <a@b.ua> пише:",
        "2024-06-04 9:12 GMT+02:00 Jan Jansen <jan@x.nl>:",
        '30.09.2017, 18.30, "John - Doe" <j.doe@x.com>:',
        "Wednesday, 17 November 2021, 3:32 PM +0300 from j@x.com <j@x.com>:",
        "2024年6月4日(火) 9:12 田中 花子 <t@x.jp>:",
        "在 2024年6月4日，15:12，李娜 <l@x.cn> 写道：",
        "Test user <test@example.com> schrieb:",
        "On Nov 26, 2013 you wrote:",
        "---- On Tue, 04 Jun 2024 12:42:13 +0530 Anna <a@x.in> wrote ----",
    ],
)
def test_attribution_over_unquoted_history_cuts_the_rest(attribution: str) -> None:
    text = f"New text.\n\n{attribution}\n\nThe old mail, pasted without quote marks.\n"
    assert trim_reply(text) == Trimmed(
        "New text.", f"{attribution}\n\nThe old mail, pasted without quote marks."
    )


@pytest.mark.parametrize(
    "lines",
    [
        ["On Nov 21, 2014,", "at 10:18,", "John Doe <john@doe.example> wrote:"],
        ["On Dec 16, 2011, at 12:47 PM, Corey", "<reply@reply.example>", "wrote:"],
        ["Max <max@x.de> schrieb am Di., 4. Juni 2024,", "09:12:"],
        ["tir. 18. apr. 2017 kl. 13:09 skrev Test user <test@example.com", ">:"],
        ["On Tue, Jun 4, 2024 at 9:12 AM Anna <a@x.com<mailto:", "a@x.com>> wrote:"],
    ],
)
def test_attribution_wrapped_over_several_lines_is_removed(lines: list[str]) -> None:
    attribution = "\n".join(lines)
    text = f"Fine.\n\n{attribution}\n\n> Ship it?\n"
    assert trim_reply(text) == Trimmed("Fine.", f"{attribution}\n\n> Ship it?")


def test_a_sentence_above_an_attribution_is_not_read_as_its_first_line() -> None:
    text = "On Friday we ship\nOn Mon, 3 Jun 2024, Anna <a@x.com> wrote:\n> Ship it?\n"
    assert trim_reply(text).text == "On Friday we ship"


@pytest.mark.parametrize(
    "line",
    [
        "Here is what Bob wrote:",  # no date, no address
        "Tomorrow 10:00 call with Anna <anna@example.com>:",  # a plan, not a date first
        "Agenda for 10:30:",
    ],
)
def test_a_line_like_an_attribution_without_its_marks_keeps_what_follows(line: str) -> None:
    text = f"Hi,\n\n{line}\n\n- budget\n- hiring\n"
    assert trim_reply(text) == Trimmed(text.strip())


def test_attribution_with_a_date_inside_a_paragraph_keeps_what_follows() -> None:
    text = "As agreed, and\nOn 3 June 2024 the vendor wrote:\nthe licence renews itself.\n"
    assert trim_reply(text) == Trimmed(text.strip())


def test_header_block_may_start_with_its_date() -> None:
    header = "Gesendet: Dienstag, 04. Juni 2024 um 09:12 Uhr\nVon: Max <m@x.de>\nAn: j@x.de"
    text = f"Ok.\n\n{header}\nBetreff: Drucker\nDer Drucker ist repariert."
    assert trim_reply(text).text == "Ok."


def test_the_long_quoted_line_a_client_wrapped_stays_with_its_quote() -> None:
    long_line = "> Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nullam pharetra d"
    text = f"New.\n\nOn Mon, 3 Jun 2024, Anna <a@x.com> wrote:\n{long_line}\nignissim odio?\n>\n"
    assert trim_reply(text).text == "New."


def test_lone_phone_footer_above_pasted_history_cuts_it() -> None:
    text = "On my way.\n\nSent from my Wiko RIDGE FAB 4G\n\nThe old mail, pasted as is.\n"
    assert trim_reply(text) == Trimmed(
        "On my way.", "Sent from my Wiko RIDGE FAB 4G\n\nThe old mail, pasted as is."
    )


@pytest.mark.parametrize(
    "footer",
    [
        "Get Outlook for Android<https://aka.ms/AAb9ysg>",
        "Sent from Mail for Windows",
        "(sent from a phone)",
        "Sent from my BlackBerry® wireless device",
        "Sent via BlackBerry by AT&T",
        "Sent with Airmail",
        "Sent from Yahoo Mail on Android",
        "Sent from TypeApp<http://www.typeapp.com/r?b=2621>",
        "Надіслано з iPhone",
        "Gesendet von Outlook für Android<https://aka.ms/ghei36>",
        "Envoyé à partir de Outlook pour iOS<https://aka.ms/o0ukef>",
        "Wysłane z iPhone'a",
        "Skickat från min iPhone",
        "Sendt fra min iPhone",
        "Lähetetty iPhonesta",
        "发自我的iPhone",
        "iPhoneから送信",
        "Sent from Mail (https://go.microsoft.com/fwlink/?LinkId=550986) for Windows 10",
        "Sent from the all new AOL app for iOS",
        "Sent wirelessly from my BlackBerry device on the Bell network.",
        "Diese Nachricht wurde von meinem Android-Mobiltelefon mit K-9 Mail gesendet.",
        "Verzonden van mijn Android apparaat met K-9 Mail.",
        "从 Windows 版邮件发送",
    ],
)
def test_more_footers_go_to_quoted(footer: str) -> None:
    assert trim_reply(f"On my way.\n\n{footer}\n") == Trimmed("On my way.", footer)


@pytest.mark.parametrize(
    "line",
    [
        "Sent from my desk, the phone is dead.",
        "Sent from a magnificent torch of pixels",
        "Sent via FedEx, tracking number 1234.",
    ],
)
def test_a_sentence_that_starts_like_a_footer_is_kept(line: str) -> None:
    assert trim_reply(f"Done.\n\n{line}\n").text == f"Done.\n\n{line}"


@pytest.mark.parametrize("delimiter", ["___", "~~~~~~", "=====", "*****", "+++++", "—————"])
def test_delimiter_line_over_contact_lines_is_a_signature(delimiter: str) -> None:
    signature = f"{delimiter}\nJane Roe\nACME Ltd.\n+44 20 7946 0000"
    assert trim_reply(f"Done.\n\n{signature}\n") == Trimmed("Done.", signature)


def test_delimiter_line_over_a_name_is_a_signature() -> None:
    signature = "___\nJane van Roe\nHead of Sales"
    assert trim_reply(f"Done.\n\n{signature}") == Trimmed("Done.", signature)


@pytest.mark.parametrize("own", ["Q1: 100\nQ2: 200", "See you tomorrow", "Next steps"])
def test_delimiter_line_over_the_persons_own_lines_is_kept(own: str) -> None:
    text = f"Figures for May:\n\n---\n{own}"
    assert trim_reply(text) == Trimmed(text)


def test_name_signed_with_a_dash_is_a_signature_but_a_list_is_not() -> None:
    assert trim_reply("Thanks.\n\n-Abhishek Kona\n") == Trimmed("Thanks.", "-Abhishek Kona")
    assert trim_reply("Thanks.\n\n- John\n") == Trimmed("Thanks.", "- John")
    assert trim_reply("Todo:\n-Milk\n-Eggs\n").text == "Todo:\n-Milk\n-Eggs"
    assert trim_reply("Who stays late:\n- Bob\n").text == "Who stays late:\n- Bob"


def test_sign_off_name_and_contact_lines_are_a_signature() -> None:
    signature = "Best regards,\nJane Roe\nACME Ltd.\n+44 20 7946 0000\njane@acme.example"
    assert trim_reply(f"Done.\n\n{signature}\n") == Trimmed("Done.", signature)


def test_sign_off_and_name_alone_stay_as_the_persons_closing() -> None:
    text = "Done.\n\nBest regards,\nJane Roe\nOperations | ACME Ltd."
    assert trim_reply(text) == Trimmed(text)


def test_postscript_under_a_sign_off_is_kept() -> None:
    text = "Done.\n\nThanks,\nJane\nPS: call me at +44 20 7946 0000 if it breaks again"
    assert trim_reply(text) == Trimmed(text)


def test_name_and_two_contact_lines_at_the_end_are_a_signature() -> None:
    signature = "Jane Roe\n+44 20 7946 0000\nhttps://acme.example"
    assert trim_reply(f"Done.\n\n{signature}") == Trimmed("Done.", signature)


def test_a_signature_never_takes_the_first_line() -> None:
    text = "Jane Roe\n+44 20 7946 0000\nhttps://acme.example"
    assert trim_reply(text) == Trimmed(text)


def test_nothing_inside_a_code_block_counts() -> None:
    text = "Script:\n\n```\n-- \nSent from my iPhone\nFrom: a\nSent: b\nTo: c\n```\n\nThat is all."
    assert trim_reply(text) == Trimmed(text)


@pytest.mark.parametrize(
    "separator",
    [
        "##- Please type your reply above this line -##",
        "-- Reply above this line --",
        "------------------ Original ------------------",
        "------------------ 原始邮件 ------------------",
        "--- Оригінальне повідомлення ---",
    ],
)
def test_separator_lines_of_help_desks_and_webmails_cut(separator: str) -> None:
    text = f"Fixed, thanks.\n\n{separator}\nFrom: support@example.com\nThe old mail."
    assert trim_reply(text).text == "Fixed, thanks."


def test_horde_quoting_line_is_an_attribution() -> None:
    text = "Agreed.\n\nQuoting Anna Smith <anna@example.com>:\n\n> Shall we ship?\n"
    assert trim_reply(text).text == "Agreed."


def test_heading_underline_over_a_short_list_is_kept() -> None:
    text = "Thanks to:\n\nCore developers\n---------------\n- Jane Roe (jane.example.org)"
    assert trim_reply(text) == Trimmed(text)


def test_a_last_paragraph_of_data_is_no_contact_block() -> None:
    data = '    Delivery Channels: [\n      "arn:aws:sns:123456789012",\n      "123456789012"'
    text = f"Output:\n\n{data}"
    assert trim_reply(text) == Trimmed(text)


def test_outlook_html_reply_read_by_html_to_text_is_trimmed() -> None:
    markup = (
        "<div>Ok, done.</div><div><br></div><div>Best regards,<br>Jane Roe<br>ACME Ltd.<br>"
        "+44 20 7946 0000</div><hr><div id='divRplyFwdMsg'><b>From:</b> Anna &lt;a@x.com&gt;"
        "<br><b>Sent:</b> Monday, June 3, 2024 10:12 AM<br><b>To:</b> Jane<br>"
        "<b>Subject:</b> [#12] Login</div><div>The login page returns 500.</div>"
    )
    trimmed = trim_reply(html_to_text(markup))
    assert trimmed.text == "Ok, done."
    assert trimmed.quoted.startswith("Best regards,\nJane Roe")
