"""Reading the pages' URL-encoded forms, strictly: anything malformed is a 400.

Litestar turns a field that appears once into a string and a repeated one into a list,
so checkboxes (``member``) may come either way; every other field must come at most once.
The values are typed by hand rather than by a msgspec struct: an empty ``<select>`` option
is ``""``, which a struct would reject as a non-integer, and a page must accept it.
"""

from __future__ import annotations

from typing import Annotated

from litestar.enums import RequestEncodingType
from litestar.params import Body

from qmail.errors import BadRequest
from qmail.web.api import MAX_TEXT

Form = Annotated[dict[str, str | list[str]], Body(media_type=RequestEncodingType.URL_ENCODED)]


def form_value(form: dict[str, str | list[str]], name: str) -> str:
    """A field given at most once (a repeated field is a forged form)."""
    value = form.get(name, "")
    if isinstance(value, list):
        raise BadRequest(f"{name} was given more than once")
    return value


def form_ids(form: dict[str, str | list[str]], name: str) -> list[int]:
    """The ids of a field that may repeat (checkboxes); an empty field gives none."""
    values = form.get(name, [])
    found = []
    for value in [values] if isinstance(values, str) else values:
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise BadRequest(f"{name} must be a number")
        found.append(int(text))
    return found


def form_id(form: dict[str, str | list[str]], name: str) -> int | None:
    """An optional id: an empty field (a select's "none" option) gives ``None``."""
    value = form_value(form, name)
    return form_ids(form, name)[0] if value.strip() else None


def message_text(form: dict[str, str | list[str]], required: bool = True) -> str:
    """The ``text`` of a form as a message: browsers send CRLF; empty only when optional."""
    text = form_value(form, "text").replace("\r\n", "\n").strip()
    if len(text) > MAX_TEXT:
        raise BadRequest(f"text is longer than {MAX_TEXT} characters")
    if required and not text:
        raise BadRequest("text must not be empty")
    return text
