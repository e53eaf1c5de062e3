"""Turn the bytes of untrusted mail into text, whatever charset the mail claims.

Mail lies about its charset, names charsets Python has never heard of, or names none at
all.  ``decode_text`` always returns readable text: it tries the declared charset, then
UTF-8, then windows-1252 with replacement characters.  It must never raise and never
guess with statistics: the same bytes always give the same text.
"""

from __future__ import annotations

import codecs
import email.header

# Labels mail clients send that Python does not know, or knows as a smaller charset than
# the one the client really used (Outlook writes cp932 as Shift_JIS, GBK as GB2312).
_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "iso-8859-8-i": "iso8859-8",
    "windows-874": "cp874",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "unicode-1-1-utf-7": "utf-7",
}

# Codecs that are not charsets even though Python finds them by name.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode"})

# Charsets that map every byte to some character, so decoding with them never fails even
# when the bytes are really UTF-8; mail labelled with one of these but valid as UTF-8 is
# UTF-8 (a web form that declares iso-8859-1 and sends UTF-8).
_SINGLE_BYTE_PREFIXES = ("iso8859", "cp125", "cp874", "cp437", "cp850", "koi8", "latin", "mac-")


def codec_name(charset: str | None) -> str | None:
    """The Python codec for a mail charset label, or ``None`` if there is none.

    >>> codec_name("UTF8"), codec_name("koi8-r"), codec_name("x-unknown")
    ('utf-8', 'koi8-r', None)
    >>> codec_name("Shift_JIS"), codec_name(' "windows-1251" '), codec_name("base64")
    ('cp932', 'cp1251', None)
    """
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    try:
        info = codecs.lookup(_ALIASES.get(label, label))
    except (LookupError, ValueError):
        return None
    if not info._is_text_encoding or info.name in _NOT_CHARSETS:
        return None
    return info.name


def decode_text(payload: bytes, charset: str | None = None) -> str:
    r"""Decode ``payload``: the declared charset, then UTF-8, then windows-1252; never raises.

    >>> decode_text(b"caf\xc3\xa9", "utf-8"), decode_text(b"caf\xe9", "utf-8")
    ('café', 'café')
    >>> decode_text(b"caf\xc3\xa9", "iso-8859-1"), decode_text(b"\x81", "nonsense")
    ('café', '\ufffd')
    """
    declared = codec_name(charset)
    order = [declared, "utf-8"]
    if declared and declared.startswith(_SINGLE_BYTE_PREFIXES) and not payload.isascii():
        order = ["utf-8", declared]
    for name in order:
        if name is None:
            continue
        try:
            return payload.decode(name).removeprefix("\ufeff")
        except (UnicodeError, LookupError):
            continue
    return payload.decode("cp1252", errors="replace")


def repair(value: str) -> str:
    r"""Re-decode raw bytes smuggled in ``value`` as surrogate escapes.

    >>> repair("caf\udce9"), repair("caf\udcc3\udca9"), repair("plain")
    ('café', 'café', 'plain')
    """
    if value.isascii() or not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    return decode_text(value.encode("utf-8", errors="surrogateescape"))


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words with the stdlib, each through ``decode_text``.

    >>> decode_words("=?koi8-r?B?8NLJ18XU?= world"), decode_words("=?bogus?q?caf=E9?=")
    ('Привет world', 'café')
    >>> decode_words("=?utf-8?b?a?=")
    '=?utf-8?b?a?='
    """
    try:
        pieces = email.header.decode_header(value)
    except Exception:  # the stdlib raises assorted errors on broken encoded words
        return value
    return "".join(
        piece if isinstance(piece, str) else decode_text(piece, charset)
        for piece, charset in pieces
    )
