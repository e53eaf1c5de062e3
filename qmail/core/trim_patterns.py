"""How mail programs introduce the history under a reply, per language: a table of *trim*.

Each ``History`` lists what clients in one language write between the new text and the
quoted or pasted history: attribution lines ("On ..., Anna <a@b> wrote:"), the labels of
an Outlook header block (From/Sent/To/Subject) and separator lines ("-----Original
Message-----").  What closes the new text (footers, sign-offs) is in ``trim_closings``.
``trim_lines`` compiles both once; a new language or client phrase is a change here only.

Entries are plain words, compared without regard to case.  A phrase belongs to the
language of the client that writes it, even when it is English.  Pure data: no logic.
"""

# Cyrillic and CJK letters below are meant as they are.
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("from", "date", "to", "cc", "subject")


@dataclass(frozen=True)
class History:
    """What the mail programs of one language write above the history they include."""

    # How an attribution ends, right before its colon: "wrote", "a écrit", "napisał(a)".
    wrote: tuple[str, ...] = ()
    # Verbs that name and address follow: "Op ... schreef Naam <a@b>:".
    wrote_before_name: tuple[str, ...] = ()
    # Words an attribution starts with ("On", "Le", "W dniu"): they let one wrapped over
    # two or three lines be read as one.
    leads: tuple[str, ...] = ()
    # Outlook header block labels, by role (``ROLES``), in that order.
    headers: tuple[tuple[str, ...], ...] = ()
    # Separator phrases, written between dashes: "-----Original Message-----".
    separators: tuple[str, ...] = ()
    # Whole lines announcing a forward, before a colon: "Begin forwarded message:".
    forwards: tuple[str, ...] = ()
    # What help desks write over the history: "##- Please type your reply above this line -##".
    reply_above: tuple[str, ...] = ()


# fmt: off
HISTORY: dict[str, History] = {
    "en": History(
        wrote=("wrote",), wrote_before_name=("Quoting",), leads=("On", "At", "Quoting"),
        headers=(("From",), ("Sent", "Date"), ("To",), ("Cc", "Bcc"), ("Subject",)),
        # "Original": Foxmail and QQ Mail in English, "---------- Original ----------".
        separators=("Original Message", "Forwarded message", "Original"),
        forwards=("Begin forwarded message",),
        reply_above=("reply above this line", "write above this line", "respond above this line"),
    ),
    "ru": History(
        wrote=("написал", "написала", "написал(а)"), wrote_before_name=("писали",),
        headers=(("От",), ("Отправлено", "Дата"), ("Кому",), ("Копия",), ("Тема",)),
        separators=("Исходное сообщение", "Пересылаемое сообщение", "Пересланное сообщение"),
        forwards=("Начало переадресованного сообщения",),
    ),
    "uk": History(
        wrote=("написав", "написала", "написав(ла)", "пише"), wrote_before_name=("писали",),
        headers=(("Від",), ("Надіслано", "Дата"), ("Кому",), ("Копія",), ("Тема",)),
        separators=("Оригінальне повідомлення", "Пересилане повідомлення"),
    ),
    "de": History(
        wrote=("geschrieben",), wrote_before_name=("schrieb", "Zitat von"),
        leads=("Am", "Zitat von"),
        headers=(("Von",), ("Gesendet", "Datum"), ("An",), ("Cc", "Kopie"), ("Betreff",)),
        separators=("Ursprüngliche Nachricht", "Weitergeleitete Nachricht", "Originalnachricht"),
        forwards=("Anfang der weitergeleiteten Nachricht", "Anfang der weitergeleiteten E-Mail"),
        reply_above=("oberhalb dieser Zeile",),
    ),
    "fr": History(
        wrote=("a écrit", "écrit"), leads=("Le",),
        headers=(("De",), ("Envoyé", "Envoyé le", "Date", "Message du"), ("À", "A", "Pour"),
                 ("Cc", "Copie", "Copie à"), ("Objet", "Sujet")),
        separators=("Message d'origine", "Message original", "Message transféré"),
        forwards=("Début du message réexpédié", "Début du message transféré"),
        reply_above=("au-dessus de cette ligne",),
    ),
    "es": History(
        wrote=("escribió", "ha escrit", "va escriure"), leads=("El",),
        headers=(("De",), ("Enviado", "Enviado el", "Fecha"), ("Para",), ("CC", "CCO"),
                 ("Asunto",)),
        separators=("Mensaje original", "Mensaje reenviado"),
        forwards=("Comienzo del mensaje reenviado", "Inicio del mensaje reenviado"),
        reply_above=("encima de esta línea",),
    ),
    "it": History(
        wrote=("ha scritto", "scritto"), leads=("Il", "In data"),
        headers=(("Da",), ("Inviato", "Data"), ("A",), ("Cc",), ("Oggetto",)),
        separators=("Messaggio originale", "Messaggio inoltrato"),
        forwards=("Inizio messaggio inoltrato",),
    ),
    "pt": History(
        wrote=("escreveu",), leads=("Em", "Às"),
        headers=(("De",), ("Enviado", "Enviada", "Data"), ("Para",), ("Cc",), ("Assunto",)),
        separators=("Mensagem original", "Mensagem encaminhada"),
        forwards=("Início da mensagem reencaminhada", "Início da mensagem encaminhada"),
    ),
    "nl": History(
        wrote=("het volgende geschreven", "geschreven"), wrote_before_name=("schreef",),
        leads=("Op",),
        headers=(("Van",), ("Verzonden", "Datum"), ("Aan",), ("CC",), ("Onderwerp",)),
        separators=("Oorspronkelijk bericht", "Origineel bericht", "Doorgestuurd bericht"),
        forwards=("Begin doorgestuurd bericht",),
    ),
    "pl": History(
        wrote=("napisał", "napisała", "napisał(a)", "pisze"), leads=("W dniu", "Dnia"),
        headers=(("Od",), ("Wysłano", "Wysłane", "Data"), ("Do",), ("DW", "Kopia"), ("Temat",)),
        separators=("Wiadomość oryginalna", "Oryginalna wiadomość", "Przekazana wiadomość"),
    ),
    "sv": History(
        wrote_before_name=("skrev",), leads=("Den",),
        headers=(("Från",), ("Skickat", "Datum"), ("Till",), ("Kopia",), ("Ämne",)),
        separators=("Ursprungligt meddelande", "Vidarebefordrat meddelande"),
        forwards=("Vidarebefordrat brev",),
    ),
    "no": History(
        wrote_before_name=("skrev",), leads=("Den",),
        headers=(("Fra",), ("Sendt", "Dato"), ("Til",), ("Kopi",), ("Emne",)),
        separators=("Opprinnelig melding", "Videresendt melding"),
    ),
    "da": History(
        wrote_before_name=("skrev",), leads=("Den",),
        headers=(("Fra",), ("Sendt", "Dato"), ("Til",), ("Cc",), ("Emne",)),
        separators=("Oprindelig besked", "Oprindelig meddelelse", "Videresendt besked"),
    ),
    "fi": History(
        wrote_before_name=("kirjoitti",),
        headers=(("Lähettäjä",), ("Lähetetty", "Päivämäärä"), ("Vastaanottaja",), ("Kopio",),
                 ("Aihe",)),
        separators=("Alkuperäinen viesti", "Välitetty viesti"),
    ),
    "zh": History(
        wrote=("写道", "寫道"), leads=("在",),
        headers=(("发件人", "寄件者", "發件人"), ("发送时间", "日期", "寄件日期", "發送時間"),
                 ("收件人", "收件者"), ("抄送", "副本"), ("主题", "主旨", "主題")),
        separators=("原始邮件", "原始郵件", "转发邮件", "轉寄郵件"),
    ),
    "ja": History(
        wrote=("のメッセージ", "書きました", "書き込みました"),
        headers=(("差出人", "送信者"), ("送信日時", "日付"), ("宛先",), ("CC",), ("件名",)),
        separators=("元のメッセージ", "転送されたメッセージ"),
    ),
    # Met in mail forwarded from elsewhere: Hungarian, Czech, Slovak, Turkish, Greek,
    # Romanian, Croatian, Bulgarian, Baltic, Estonian, Indonesian, Vietnamese, Korean.
    "other": History(
        wrote=("írta", "napsal", "napsala", "napsal(a)", "napísal", "napísala", "napísal(a)",
               "yazdı", "έγραψε", "a scris", "je napisao", "je napisala", "написа", "rašė",
               "rakstīja", "kirjutas", "menulis", "đã viết", "작성"),
        headers=(("Feladó", "Kimden"), ("Elküldve", "Odesláno", "Gönderildi", "Tarih"),
                 ("Címzett", "Komu", "Kime"), (), ("Tárgy", "Předmět", "Konu")),
        separators=("Eredeti üzenet", "Původní zpráva", "Orijinal Mesaj"),
    ),
}
# fmt: on
