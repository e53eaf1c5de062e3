"""Whole pages in process: the CPU a request costs (app, handler, queries, template).

Serves the app of this checkout (or of ``PYTHONPATH``) on a ``bench/scale.py`` database
through Litestar's test client, requests each page of ``bench/scale.py`` as the team
member and the busy client ``bench/scale.py`` picks, and prints the median CPU time of
``--repeat`` requests after a warm-up (``time.process_time``: every thread of the
process, so the test client's own share is in it too; ``health``, a page that reads
nothing, shows that floor).  CPU time, not the clock: on a shared machine it says what
a page costs where the clock says how busy the machine was.  With 16 connections on two
cores a page's p99 is several times this figure (``bench/scale.py``).  Prints figures;
asserts nothing.

    .venv/bin/python bench/page_cost.py sqlite:////tmp/qmail-scale/100000.db
    .venv/bin/python bench/page_cost.py sqlite:////tmp/qmail-scale/100000.db --pages inbox,task
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).parents[1]))  # bench; PYTHONPATH may name another qmail

from bench import scale, scale_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a bench/scale.py database")
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--pages", default="", help="only pages whose names start so")
    args = parser.parse_args()
    os.environ.update(
        {
            "QMAIL_DATABASE__URL": args.url,
            "QMAIL_MAIL__TEAM_DOMAINS": scale_data.TEAM_DOMAIN,
            "QMAIL_SECURITY__SECRET_KEY": scale.SECRET,
        }
    )
    from litestar.testing import TestClient

    visitors = scale.visitors(args.url)
    terms = scale.search_terms()
    wanted = tuple(name.strip() for name in args.pages.split(",") if name.strip())
    app = scale.app()
    with TestClient(app, base_url="http://bench.local") as client:
        for visitor in visitors:
            headers = {"Authorization": f"Bearer {visitor.token}"}
            paths = {"health": ["/api/health"] * args.repeat}
            paths |= scale.pages(visitor, terms, random.Random(2))
            for page, urls in paths.items():
                if wanted and page != "health" and not page.startswith(wanted):
                    continue
                for url in urls[:10]:  # warm-up: templates compiled, statements cached
                    response = client.get(url, headers=headers)
                    assert response.status_code == 200, (page, url, response.status_code)
                spent = []
                for url in (urls * (args.repeat // len(urls) + 1))[: args.repeat]:
                    started = time.process_time()
                    client.get(url, headers=headers)
                    spent.append(time.process_time() - started)
                print(f"{visitor.name:6} {page:20} {statistics.median(spent) * 1000:7.2f} ms CPU")


if __name__ == "__main__":
    main()
