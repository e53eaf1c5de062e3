"""Paging through long lists: keyset cursors, and counts that stop early.

A list page is read newest first by an indexed key such as ``(updated_at, id)``; the next
page starts after the last row shown, named by an opaque cursor.  Reading page 1,000
costs what page 1 costs, and a row added meanwhile shifts nothing.  Ranked lists (search
results) have no such key: their cursor names an offset into a bounded list.

No page counts every row each time it is shown: ``count_upto`` stops at ``COUNT_LIMIT``.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select, tuple_
from sqlmodel import Session

from qmail.errors import BadRequest
from qmail.models import UTCDateTime

COUNT_LIMIT = 10_000


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("invalid cursor") from None


def key_cursor(when: datetime, row_id: int) -> str:
    """The cursor of the page after the row ``(when, row_id)``."""
    return _encode(f"k{when.isoformat()}|{row_id}")


def read_key_cursor(cursor: str) -> tuple[datetime, int]:
    """``(when, row_id)`` from ``key_cursor``; a cursor that is not one is a bad request."""
    text = _decode(cursor)
    when, _, row_id = text[1:].partition("|")
    try:
        if not text.startswith("k"):
            raise ValueError(text)
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None:
            raise ValueError(when)
        return moment, int(row_id)
    except ValueError:
        raise BadRequest("invalid cursor") from None


def key_text_cursor(first: str, second: str) -> str:
    """The cursor of the page after the row whose key is the text pair ``(first, second)``."""
    return _encode("t" + json.dumps([first, second]))


def read_key_text_cursor(cursor: str) -> tuple[str, str]:
    text = _decode(cursor)
    try:
        first, second = json.loads(text[1:]) if text.startswith("t") else (None, None)
    except ValueError:
        raise BadRequest("invalid cursor") from None
    if not isinstance(first, str) or not isinstance(second, str):
        raise BadRequest("invalid cursor")
    return first, second


def offset_cursor(offset: int) -> str:
    """The cursor of a ranked list's page starting at ``offset``."""
    return _encode(f"o{offset}")


def read_offset_cursor(cursor: str) -> int:
    text = _decode(cursor)
    if not text.startswith("o") or not text[1:].isdigit():
        raise BadRequest("invalid cursor")
    return int(text[1:])


def before(when: Any, row_id: Any, cursor: tuple[datetime, int]) -> Any:
    """A condition: the row ``(when, row_id)`` comes after ``cursor`` in newest-first order.

    A row-value comparison, which both databases read as a range of the index on
    ``(when, row_id)``.
    """
    moment, last_id = cursor
    return tuple_(when, row_id) < tuple_(literal(moment, UTCDateTime()), literal(last_id))


def count_upto(session: Session, statement: Any, limit: int = COUNT_LIMIT) -> tuple[int, bool]:
    """How many rows ``statement`` selects, counting no further than ``limit``; and whether
    that is the exact number."""
    bounded = statement.limit(limit + 1).subquery()
    found = int(session.execute(select(func.count()).select_from(bounded)).scalar_one())
    return min(found, limit), found <= limit
