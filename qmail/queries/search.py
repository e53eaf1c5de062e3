"""Full-text search over message texts and task titles, ranked, with highlighted snippets.

The indexes are the database's own (migrations 0008 and 0016): SQLite's FTS5 tables
``message_fts`` (a message's text, and its branch id as a token) and ``task_fts``, kept
in step by triggers; PostgreSQL's generated ``search`` columns (``tsvector``,
GIN-indexed).  The words of a query come from ``core.search``.

Permissions are those of every other read: a message counts only when ``branch_visible``
says its branch may be read, a title only when ``task_visible`` says its task may, so a
hidden branch never lends a word, a snippet or a hit to an outsider.  Two plans, as in
``qmail.access`` (``_Plan`` chooses): the matches are read from the index newest first and
checked one by one (for the team, who may read nearly everything), or the index is asked
for the words in the reader's own branches (an outsider; on SQLite the branch ids they
may read go into the FTS5 query, and what it finds is checked once more).  Either way at
most ``CANDIDATES`` matching messages are ranked (the newest ones), so a word found in
half of a million messages costs what a rare one costs; ``Found.exact`` says when the
list was cut there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import bindparam, func, literal_column, table
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.access import Reader, branch_visible, task_visible
from qmail.core.search import (
    MARK_END,
    MARK_START,
    fts5_any,
    fts5_query,
    fts5_text_query,
    highlight,
    mark_words,
    scorer,
    search_terms,
    tsquery,
)

CANDIDATES = 200
MANY = 100_000  # matches an outsider's search may read whole from the index (see _Plan)
LOOKUP_COST = 100  # looking one row up costs about as much as reading this many matches
BRANCH_TOKENS = 2_000  # a client's search names at most this many branches to the index
PROBE = 1_000  # a word with no more matches than this is rare: they are read whole
OWN_BATCH = 200  # their own rows looked up in the index at once
TITLE_WEIGHT = 2.0  # a word of the title says more about a task than one of its messages
SNIPPET_WORDS = 24
PAGE_SIZE = 20
_LESS_THAN = "\ue000"  # a private-use character: no parser makes anything of it

_MESSAGE_FTS = table("message_fts", literal_column("rowid"))
_TASK_FTS = table("task_fts", literal_column("rowid"))
_FTS_MESSAGE: Any = literal_column("message_fts")
_FTS_MESSAGE_ROWID: Any = literal_column("message_fts.rowid")
_FTS_TASK: Any = literal_column("task_fts")
_FTS_TASK_ROWID: Any = literal_column("task_fts.rowid")


@dataclass(frozen=True)
class Match:
    """A task that matches, its score (higher is better) and its best matching message."""

    task_id: int
    score: float
    message_id: int | None


@dataclass(frozen=True)
class Found:
    matches: list[Match]  # best first
    exact: bool  # False: only the newest CANDIDATES matching messages were ranked


def find_tasks(session: Session, person: Reader, terms: tuple[str, ...]) -> Found:
    """The tasks ``person`` may see whose title or visible messages contain ``terms``."""
    if not terms:
        return Found([], True)
    plan = _Plan(session, person, terms)
    messages, titles = plan.messages(), plan.titles()
    best: dict[int, Match] = {}
    for message_id, task_id, points in messages:
        found = best.get(task_id)
        if found is None or points > found.score:
            best[task_id] = Match(task_id, points, message_id)
    for task_id, points in titles:
        found = best.get(task_id)
        weighted = TITLE_WEIGHT * points
        if found is None:
            best[task_id] = Match(task_id, weighted, None)
        elif weighted > found.score:
            best[task_id] = Match(task_id, weighted, found.message_id)
    ranked = sorted(best.values(), key=lambda match: (-match.score, -match.task_id))
    return Found(ranked, not plan.cut)


class _Plan:
    """How to find the matches on this database for this reader (see the module docstring).

    On SQLite, for the team (who may read nearly everything) the index drives, newest
    match first, each checked.  For anyone else, the index is asked for the words in
    their branches (``_in_branches``); their tasks' titles, and the messages of someone
    in more than ``BRANCH_TOKENS`` branches, are matched against their own ids
    (``_own_matches``).  The matches are scored here, from their text
    (``core.search.scorer``): FTS5's ``bm25`` would first count every message holding each
    word, a cost that grows with the database (and, asked about one row at a time, it
    counts again each time).  PostgreSQL's planner makes these choices itself, and its
    ``ts_rank`` needs no counting.
    """

    def __init__(self, session: Session, person: Reader, terms: tuple[str, ...]) -> None:
        self.session, self.person, self.terms = session, person, terms
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.query = _fts_query(terms, self.sqlite)  # titles (and PostgreSQL's messages)
        self.message_query = _fts_query(terms, self.sqlite, message_text=True)
        self.cut = False  # whether a list of candidates was full

    def _run(self, statement: Any, text_column: int) -> list[Any]:
        rows = self.session.execute(statement.limit(CANDIDATES)).all()
        self.cut = self.cut or len(rows) >= CANDIDATES
        if not self.sqlite:
            return [(*row[:text_column], float(row[text_column])) for row in rows]
        score = scorer(self.terms)
        return [(*row[:text_column], score(row[text_column])) for row in rows]

    def messages(self) -> list[tuple[int, int, float]]:
        """(message id, task id, score) of the newest visible messages that match."""
        message, branch = models.Message, aliased(models.Branch)
        visible = branch_visible(self.person, branch)
        if not self.sqlite:
            search: Any = literal_column("message.search")
            statement = (
                select(col(message.id), col(message.task_id), func.ts_rank(search, self.query))
                .join(branch, col(branch.id) == message.branch_id)
                .where(search.op("@@")(self.query), visible)
                .order_by(col(message.id).desc())
            )
        elif self.person.is_team:
            statement = (
                select(col(message.id), col(message.task_id), col(message.text))
                .select_from(_MESSAGE_FTS)
                .join(message, col(message.id) == _FTS_MESSAGE_ROWID)
                .join(branch, col(branch.id) == message.branch_id)
                .where(_FTS_MESSAGE.op("MATCH")(self.message_query), visible)
                .order_by(_FTS_MESSAGE_ROWID.desc())
            )
        else:
            branches = list(self.session.execute(select(col(branch.id)).where(visible)).scalars())
            if len(branches) <= BRANCH_TOKENS:
                found = self._in_branches(branches)
            else:  # a query that long would cost more than the lookups
                own = select(col(message.id)).join(branch, col(branch.id) == message.branch_id)
                found = self._own_matches("message_fts", own.where(visible), text_only=True)
            statement = (  # the found ids, checked once more against what they may read
                select(col(message.id), col(message.task_id), col(message.text))
                .join(branch, col(branch.id) == message.branch_id)
                .where(col(message.id).in_(found), visible)
                .order_by(col(message.id).desc())
            )
        return self._run(statement, 2)

    def _in_branches(self, branches: list[int]) -> list[int]:
        """The newest messages of these branches that match, ``CANDIDATES`` at most: the
        words in the ``text`` column and one of the branches in ``branch_id`` (migration
        0016), so that FTS5 intersects the word's list with the branches' own."""
        if not branches:
            return []
        raw = self.session.connection().connection.driver_connection
        assert raw is not None
        query = f"{fts5_text_query(self.terms)} AND branch_id : ({fts5_any(branches)})"
        rows = raw.execute(
            "SELECT rowid FROM message_fts WHERE message_fts MATCH ? ORDER BY rowid DESC LIMIT ?",
            (query, CANDIDATES + 1),
        )
        found = [row[0] for row in rows]
        self.cut = self.cut or len(found) > CANDIDATES
        return found[:CANDIDATES]

    def titles(self) -> list[tuple[int, float]]:
        """(task id, score) of the newest visible tasks whose title matches."""
        task = models.Task
        if not self.sqlite:
            search: Any = literal_column("task.search")
            statement = (
                select(col(task.id), func.ts_rank(search, self.query))
                .where(search.op("@@")(self.query), task_visible(self.person))
                .order_by(col(task.id).desc())
            )
        elif self.person.is_team:
            statement = (
                select(col(task.id), col(task.title))
                .select_from(_TASK_FTS)
                .join(task, col(task.id) == _FTS_TASK_ROWID)
                .where(_FTS_TASK.op("MATCH")(self.query), task_visible(self.person))
                .order_by(_FTS_TASK_ROWID.desc())
            )
        else:
            own = select(col(task.id)).where(task_visible(self.person))
            found = self._own_matches("task_fts", own)
            statement = (
                select(col(task.id), col(task.title))
                .where(col(task.id).in_(found))
                .order_by(col(task.id).desc())
            )
        return self._run(statement, 1)

    def _own_matches(self, fts: str, own: Any, text_only: bool = False) -> list[int]:
        """Of the ids ``own`` selects (the reader's messages or tasks), the newest that
        match in the full-text table ``fts``, ``CANDIDATES`` at most.

        The newest ``PROBE`` matches are read first: a word with no more than that is rare,
        and these are all of its matches.  Otherwise how many there are is estimated from
        how far back the ``PROBE``-th one lies, and whichever costs less is done: every
        match is read inside SQLite and only the reader's kept (about ``LOOKUP_COST``
        matches cost what one lookup does), or their own are looked up in the index,
        newest first, ``OWN_BATCH`` at a time, until ``CANDIDATES`` are found (for a word in more
        than ``MANY``, the first batch that holds any suffices).  Each lookup is one ``rowid = ?``
        seek in the word's list: SQLite runs ``rowid IN (...)`` next to ``MATCH`` as one
        seek per id (``EXPLAIN QUERY PLAN``: ``INDEX 0:=M1``).
        """
        ids = sorted(self.session.execute(own).scalars(), reverse=True)
        if not ids:
            return []
        # plain SQL on the driver's own connection: this may read thousands of ids
        raw = self.session.connection().connection.driver_connection
        assert raw is not None
        query = fts5_text_query(self.terms) if text_only else fts5_query(self.terms)
        matching = f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?"
        newest = [
            row[0]
            for row in raw.execute(f"{matching} ORDER BY rowid DESC LIMIT ?", (query, PROBE + 1))
        ]
        if len(newest) <= PROBE:  # a rare word: these are all of its matches
            every = set(newest)
            return [found for found in ids if found in every][:CANDIDATES]
        span = max(newest[0] - newest[-1], 1)
        estimate = PROBE * newest[0] // span  # matches, if they are spread evenly
        # lookups stop at CANDIDATES found: as many as that takes, if the reader's own
        # hold the word as often as the rest do
        lookups = min(len(ids), CANDIDATES * span // max(PROBE, 1) + OWN_BATCH)
        if estimate <= MANY and estimate < LOOKUP_COST * lookups:
            # "+rowid": an expression, so SQLite reads the word's list through once and
            # checks each match against the reader's ids (not one seek per id)
            rows = raw.execute(
                f"{matching} AND +rowid IN (SELECT value FROM json_each(?))"
                " ORDER BY rowid DESC LIMIT ?",
                (query, json.dumps(ids), CANDIDATES + 1),
            )
            found = [row[0] for row in rows]
            self.cut = self.cut or len(found) > CANDIDATES
            return found[:CANDIDATES]
        found = []
        for start in range(0, len(ids), OWN_BATCH):
            batch = ids[start : start + OWN_BATCH]
            marks = ", ".join("?" for _ in batch)
            rows = raw.execute(f"{matching} AND rowid IN ({marks})", (query, *batch))
            found.extend(sorted((row[0] for row in rows), reverse=True))
            if len(found) >= CANDIDATES or (estimate > MANY and found):
                self.cut = True  # enough, or a word this common: the newest found suffice
                break
        return found[:CANDIDATES]


def _fts_query(terms: tuple[str, ...], sqlite: bool, message_text: bool = False) -> Any:
    if sqlite:
        return bindparam("fts_query", (fts5_text_query if message_text else fts5_query)(terms))
    return func.to_tsquery("simple", bindparam("fts_query", tsquery(terms)))


def snippets(session: Session, terms: tuple[str, ...], message_ids: list[int]) -> dict[int, str]:
    """HTML snippets of these messages around the words found (escaped, then marked)."""
    if not message_ids or not terms:
        return {}
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = _fts_query(terms, sqlite, message_text=True)
    if sqlite:
        snippet = func.snippet(_FTS_MESSAGE, 0, MARK_START, MARK_END, "…", SNIPPET_WORDS)
        statement = (
            select(_FTS_MESSAGE_ROWID, snippet)
            .select_from(_MESSAGE_FTS)
            .where(_FTS_MESSAGE.op("MATCH")(query), _FTS_MESSAGE_ROWID.in_(message_ids))
        )
    else:
        options = (
            f'StartSel="{MARK_START}", StopSel="{MARK_END}", MaxWords={SNIPPET_WORDS}, '
            'MinWords=10, MaxFragments=2, FragmentDelimiter=" … "'
        )
        # ts_headline drops what looks like an HTML tag: hide "<" from it, and put it back
        text = func.replace(func.left(col(models.Message.text), 100_000), "<", _LESS_THAN)
        statement = select(
            col(models.Message.id), func.ts_headline("simple", text, query, options)
        ).where(col(models.Message.id).in_(message_ids))
    return {
        row_id: highlight(text.replace(_LESS_THAN, "<"))
        for row_id, text in session.execute(statement)
    }


@dataclass(frozen=True)
class Hit:
    """One task found, as the search page shows it: title and snippet are HTML (escaped
    text with the words found in ``<mark>``), the snippet from its best message, if any."""

    number: int
    title: Markup
    status: str
    updated_at: datetime
    snippet: Markup | None
    message_id: int | None
    author: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    total: int
    exact: bool
    next_offset: int | None


def search_page(
    session: Session, person: Reader, q: str, offset: int, limit: int = PAGE_SIZE
) -> Results:
    """A page of what ``person`` finds for ``q``, best first, ready to show."""
    terms = search_terms(q)
    found = find_tasks(session, person, terms)
    page = found.matches[offset : offset + limit]
    tasks = {
        task.id: task
        for task in session.exec(
            select(models.Task).where(col(models.Task.id).in_([m.task_id for m in page]))
        )
    }
    message_ids = [match.message_id for match in page if match.message_id is not None]
    authors = {
        message_id: (name or email, sent_at)
        for message_id, name, email, sent_at in session.execute(
            select(
                col(models.Message.id),
                col(models.Person.name),
                col(models.Person.email),
                col(models.Message.sent_at),
            )
            .join(models.Person, col(models.Person.id) == models.Message.author_id)
            .where(col(models.Message.id).in_(message_ids))
        )
    }
    found_snippets = snippets(session, terms, message_ids)
    hits = []
    for match in page:
        task = tasks[match.task_id]
        author, sent_at = authors.get(match.message_id or 0, (None, None))
        snippet = found_snippets.get(match.message_id or 0)
        hits.append(
            Hit(
                number=task.number,
                title=Markup(highlight(mark_words(task.title, terms))),
                status=task.status,
                updated_at=task.updated_at,
                snippet=Markup(snippet) if snippet is not None else None,
                message_id=match.message_id,
                author=author,
                sent_at=sent_at,
            )
        )
    following = offset + limit if offset + limit < len(found.matches) else None
    return Results(hits, len(found.matches), found.exact, following)
