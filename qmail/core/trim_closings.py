"""How new text is closed, per language: the footer and sign-off tables of *trim*.

``FOOTERS`` are whole lines that phones and mail apps append under what the person wrote
("Sent from my iPhone", "Von meinem iPhone gesendet", "Get Outlook for iOS"), as regular
expressions matched case-sensitively, as the apps write them.  ``SIGN_OFFS`` are the
closings people type ("Best regards", "С уважением"), plain words compared without
regard to case and punctuation.  A sign-off alone is the person's own text; only with a
name and contact lines under it is it a signature (``trim_signatures``).  Pure data.
"""

# Cyrillic and CJK letters below are meant as they are.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

# "Sent from my X": X is a device, named with a capital (BlackBerry, Samsung, Wiko) or
# iPhone/iPad, or a generic word; "Sent from my desk, ..." is a sentence, not a footer.
_DEVICE = r"(?:i(?:Phone|Pad|Pod)|[A-Z0-9]|mobile|phone|smartphone|tablet|cell)"
# An app's name, no sentence: "Sent with Airmail", "Sent from Mail for Windows".
_APP = r"(?:[A-Z]|Mail\b)[^,;:!?]{0,50}"

# fmt: off
FOOTERS: dict[str, tuple[str, ...]] = {
    "en": (rf"Sent from my {_DEVICE}.*", rf"Sent (?:from|with|via|using) {_APP}",
           r"Sent wirelessly (?:from|via) .+",
           r"Sent (?:from|via|with) the (?:all new )?(?:AOL|Samsung|Yahoo|Outlook|Gmail)\b.*",
           r"\(?[Ss]ent from (?:a|my) (?:phone|mobile(?: device| phone)?|tablet|smartphone)\)?",
           r"Get (?:Outlook|Airmail|Spark|BlueMail|the Yahoo Mail app)\b.*"),
    "ru": (r"Отправлено (?:с|из|через) .+", r"Получить Outlook для .+"),
    "uk": (r"Надіслано (?:з|із|через) .+", r"Отримати Outlook для .+"),
    "de": (r"Von meinem .+ gesendet\.?", r"Gesendet (?:von|mit|über) .+",
           r"Diese Nachricht wurde von meinem .+ gesendet\..*",
           r"Outlook für .+ (?:beziehen|herunterladen)"),
    "fr": (r"Envoyé (?:de|depuis|à partir de|avec) .+", r"(?:Obtenir|Télécharger) Outlook pour .+"),
    "es": (r"Enviado desde .+", r"Obtener Outlook para .+"),
    "it": (r"Inviato da .+", r"Inviato dal mio .+", r"(?:Scarica|Ottieni) Outlook per .+"),
    "pt": (r"Enviado (?:do|de|a partir do) .+", r"Obter o Outlook para .+"),
    "nl": (r"(?:Verzonden|Verstuurd) (?:vanaf|van|met|vanuit) .+", r"Outlook voor .+ downloaden"),
    "pl": (r"Wysłan[eoa] (?:z|przy użyciu) .+", r"Pobierz (?:aplikację )?Outlook .+"),
    "sv": (r"Skickat? från .+", r"Skickades från .+", r"Skaffa Outlook för .+"),
    "no": (r"Sendt fra .+", r"Få Outlook for .+"),
    "da": (r"Sendt fra .+", r"Hent Outlook til .+"),
    "fi": (r"Lähetetty .+(?:sta|stä|lta|ltä|stani|stäni)", r"Hanki Outlook .+"),
    "zh": (r"(?:发自|來自|来自)我的\s?.+", r"从\s?.+\s?发送", r"获取 Outlook for .+"),
    "ja": (r".{1,30}から送信", r"Outlook for .+ を入手"),
}

SIGN_OFFS: dict[str, tuple[str, ...]] = {
    "en": ("Regards", "Best regards", "Kind regards", "Warm regards", "Warmest regards",
           "Best wishes", "Best", "All the best", "Cheers", "Thanks", "Thank you", "Many thanks",
           "Thanks again", "Thanks in advance", "Sincerely", "Yours sincerely", "Yours truly",
           "Yours", "Respectfully", "Take care", "BR"),
    "ru": ("С уважением", "С наилучшими пожеланиями", "Спасибо", "Всего доброго",
           "Всего хорошего", "Хорошего дня"),
    "uk": ("З повагою", "Дякую", "З найкращими побажаннями", "Гарного дня"),
    "de": ("Mit freundlichen Grüßen", "Freundliche Grüße", "Viele Grüße", "Beste Grüße",
           "Liebe Grüße", "Herzliche Grüße", "Schöne Grüße", "Grüße", "Gruß", "MfG", "LG", "VG",
           "Danke", "Vielen Dank"),
    "fr": ("Cordialement", "Bien cordialement", "Bien à vous", "Bien à toi", "Salutations",
           "Meilleures salutations", "Sincères salutations", "Amicalement", "Merci",
           "Merci beaucoup", "Bonne journée", "Bonne soirée"),
    "es": ("Saludos", "Un saludo", "Saludos cordiales", "Atentamente", "Un abrazo", "Gracias",
           "Muchas gracias"),
    "it": ("Cordiali saluti", "Distinti saluti", "Saluti", "Un saluto", "Grazie", "Grazie mille",
           "Buona giornata", "A presto"),
    "pt": ("Atenciosamente", "Cumprimentos", "Melhores cumprimentos", "Abraços", "Abraço",
           "Obrigado", "Obrigada", "Saudações", "Att"),
    "nl": ("Met vriendelijke groet", "Met vriendelijke groeten", "Vriendelijke groet",
           "Hartelijke groet", "Groeten", "Groet", "Bedankt", "Mvg"),
    "pl": ("Pozdrawiam", "Pozdrawiam serdecznie", "Serdecznie pozdrawiam", "Z poważaniem",
           "Z wyrazami szacunku", "Dziękuję", "Pozdrowienia"),
    "sv": ("Med vänliga hälsningar", "Vänliga hälsningar", "Bästa hälsningar", "Hälsningar",
           "Mvh", "Tack"),
    "no": ("Med vennlig hilsen", "Vennlig hilsen", "Beste hilsen", "Hilsen", "Takk"),
    "da": ("Med venlig hilsen", "Venlig hilsen", "Bedste hilsner", "De bedste hilsner", "Hilsen",
           "Mvh", "Tak"),
    "fi": ("Ystävällisin terveisin", "Parhain terveisin", "Terveisin", "Kiitos"),
    "zh": ("此致", "敬礼", "此致敬礼", "谢谢", "祝好", "顺祝商祺"),
    "ja": ("よろしくお願いします", "よろしくお願いいたします", "宜しくお願いします",
           "以上", "敬具"),
}
# fmt: on
