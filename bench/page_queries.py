"""The page queries alone, in process: CPU time per call on a ``bench/scale.py`` database.

Times the queries behind the address book, a contact's page, a tag's task list and the
company filters (the inbox's and the activity tape's) as a team member (alice) and as the
busy client ``bench/scale.py`` picks, with
``time.process_time`` (the median of ``--repeat`` calls after one warm-up): on a machine
shared with other work, CPU time says what a query costs where the clock says how busy
the machine was.  Only public query functions are called, so an older checkout runs it
too (``PYTHONPATH=/path/to/checkout``).  Prints figures; asserts nothing.

    .venv/bin/python bench/page_queries.py sqlite:////tmp/qmail-scale/1000000.db
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

sys.path.append(str(Path(__file__).parents[1]))  # bench; PYTHONPATH may name another qmail

from bench import scale_data
from qmail import models
from qmail.access import Reader
from qmail.config import load
from qmail.db import create_db_engine
from qmail.queries.activity_filters import ActivityFilters
from qmail.queries.contacts import address_book, contact, shared_tasks
from qmail.queries.events import activity
from qmail.queries.filters import Filters
from qmail.queries.search import search_page
from qmail.queries.tasks import search_tasks
from qmail.queries.views import views_of

ONLY = [""]  # --only
BUSY_CLIENT = (
    "SELECT person_id FROM branchmember WHERE person_id > 5 GROUP BY person_id"
    " HAVING count(*) <= 200 ORDER BY count(*) DESC LIMIT 1"
)


def timed(engine: Any, name: str, call: Callable[[Session], object], repeat: int) -> None:
    if ONLY[0] not in name:
        return
    with Session(engine) as session:
        call(session)
        spent = []
        for _ in range(repeat):
            started = time.process_time()
            call(session)
            spent.append(1000 * (time.process_time() - started))
    print(f"| {name} | {statistics.median(spent):.2f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the database, e.g. sqlite:////tmp/qmail-scale/1000000.db")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--only", default="", help="only the cases whose names contain this")
    args = parser.parse_args()
    ONLY[0] = args.only
    env = {"QMAIL_DATABASE__URL": args.url, "QMAIL_MAIL__TEAM_DOMAINS": "team.test"}
    engine = create_db_engine(load(env=env))
    with Session(engine) as session:
        alice = session.get(models.Person, 1)
        client = session.get(models.Person, session.execute(text(BUSY_CLIENT)).scalar_one())
        assert alice is not None and client is not None
        session.expunge_all()
    team, outsider = Reader(alice, True), Reader(client, False)
    bob = "bob@team.test"

    def contact_page(reader: Reader) -> Callable[[Session], object]:
        def call(session: Session) -> object:
            found = contact(session, reader, bob)
            assert found is not None
            return shared_tasks(session, reader, found)

        return call

    for who, reader in (("team", team), ("client", outsider)):
        book: dict[str, Callable[[Session], object]] = {
            "a teammate as a contact": partial(contact, person=reader, email=bob),
            "a teammate's contact page": contact_page(reader),
            "address book, first page": partial(address_book, person=reader),
        }
        for name, call in book.items():
            timed(engine, f"{who}: {name}", call, args.repeat)
    tag_pages: dict[str, Callable[[Session], object]] = {
        "team: a tag's first 50 tasks, no count": lambda s: search_tasks(
            s, team, "tag5", None, None, 50, count_limit=0
        ),
        "team: API ?tag=, with total": lambda s: search_tasks(s, team, "tag5", None, None, 50),
        "team: API ?tag=&status=open": lambda s: search_tasks(s, team, "tag5", "open", None, 50),
        "team: the inbox's views under a tag": lambda s: views_of(s, team, Filters(tag="tag5")),
        "team: API list, no filter": lambda s: search_tasks(s, team, None, None, None, 50),
    }
    for name, call in tag_pages.items():
        timed(engine, name, call, args.repeat)
    company = client.email.rpartition("@")[2]  # the busy client's, as bench/scale.py asks
    for who, reader in (("team", team), ("client", outsider)):
        filters, tape = Filters(company=company), ActivityFilters(company=company)
        company_pages: dict[str, Callable[[Session], object]] = {
            "inbox ?company=, first page": lambda s, r=reader, f=filters: search_tasks(
                s, r, None, None, None, 50, where=f.conditions(r), count_limit=0
            ),
            "inbox ?company=, the views and its count": partial(
                views_of, person=reader, current=filters
            ),
            "activity ?company=, first page": partial(activity, person=reader, filters=tape),
        }
        for name, call in company_pages.items():
            timed(engine, f"{who}: {name}", call, args.repeat)
    words = scale_data.vocabulary(random.Random(10))  # as bench/scale.py searches
    searches = {
        "a word in 98% of messages": words[0],
        "in 5%": words[60],
        "in 0.2%": words[3000],
        "in 0.02%": words[20000],
        "two words": f"{words[60]} {words[400]}",
        "a common and a rare word": f"{words[0]} {words[20000]}",
    }
    for who, reader in (("team", team), ("client", outsider)):
        for name, q in searches.items():
            timed(
                engine,
                f"{who}: search, {name}",
                partial(search_page, person=reader, q=q, offset=0),
                args.repeat,
            )
    engine.dispose()


if __name__ == "__main__":
    main()
