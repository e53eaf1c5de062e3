"""Companies: their pages, and the team's renames and merges, which everything follows.

The world is the address book's exchange (``test_contacts.exchange``, eight real mails
through the real SMTP server): Alice and Bob are the team (example.com); Carol and Dan
(who writes from eu.acme.test) are ACME, in task 1, which also has a hidden branch of
Alice and Bob; Erin is Globex, in task 2.  Pages are read over the real web server,
signed in by magic link; forms are posted with the CSRF token the page carries.
"""

from __future__ import annotations

import re
from datetime import UTC
from html import unescape

import httpx
import pytest
from sqlmodel import Session, select

from qmail import companies, models
from qmail.companies import at_company
from qmail.core.mail import Address
from qmail.db import session_scope
from qmail.people import get_person
from tests.integration.conftest import WebServer
from tests.integration.test_contacts import (
    ALICE,
    BOB,
    CAROL,
    DAN,
    ERIN,
    NAMES,
    TEAM_JOINED,
    book,
    date_of,
    exchange,  # noqa: F401 (a fixture)
)
from tests.integration.test_pages import post_form, signed_in

ACME = "/companies/acme.test"


def section(page: httpx.Response, name: str) -> str:
    """The text of the page's ``<section id=name>``, tags removed, spaces collapsed."""
    assert page.status_code == 200, page.text
    found = re.search(rf'<section[^>]*id="{name}"[^>]*>(.*?)</section>', page.text, re.S)
    assert found, f"no section {name}"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def stamp(number: int) -> str:
    return date_of(number).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def close_task(web_server: WebServer, token: str, number: int) -> None:
    with web_server.client(token) as http:
        answer = http.patch(f"/api/tasks/{number}", json={"status": "closed"})
    assert answer.status_code == 200, answer.text


def inbox_numbers(client: httpx.Client, query: str) -> list[int]:
    page = client.get(f"/{query}")
    assert page.status_code == 200, page.text
    return sorted({int(n) for n in re.findall(r'href="/tasks/(\d+)"', page.text)})


def test_the_company_page_shows_people_tasks_last_contact_and_who_talks_with_it(
    smtp_server,
    web_server,
    exchange,  # noqa: F811
):
    store = smtp_server.store
    close_task(web_server, exchange[ALICE], 2)
    with signed_in(store, web_server, ALICE) as alice:
        page = alice.get(ACME)
        assert section(page, "people") == (
            "People (2) Name Address Tasks Last seen (UTC) "
            f"{NAMES[CAROL]} {CAROL} 1 {stamp(6)} {NAMES[DAN]} {DAN} 1 {stamp(6)}"
        )
        facts = re.search(r'<dl class="facts">(.*?)</dl>', page.text, re.S)
        assert facts is not None
        assert " ".join(re.sub(r"<[^>]+>", " ", facts.group(1)).split()) == (
            f"Domains acme.test Last contact {stamp(6)} UTC Open tasks 1 Closed tasks 0"
        )
        assert "Invoice" in section(page, "open-tasks") and "#1" in section(page, "open-tasks")
        assert section(page, "closed-tasks") == "Closed tasks No closed tasks."
        # Task 1's main branch: Carol 1, Alice 2, Dan 4, Carol 6; the hidden branch has
        # nobody from ACME, so Alice's and Bob's messages there do not count.
        assert section(page, "talkers") == (
            f"Who on the team talks with them most {NAMES[ALICE]} ({ALICE}): 1 message"
        )
        globex = alice.get("/companies/globex.test")
        assert section(globex, "closed-tasks").startswith("Closed tasks # Title")
        assert section(globex, "talkers").endswith(f"{NAMES[BOB]} ({BOB}): 1 message")
        assert alice.get("/companies/gmail.com").status_code == 404
        assert alice.get("/companies/nobody-here.test").status_code == 404
        # a sub-domain is its company's
        sub = alice.get("/companies/eu.acme.test")
        assert (sub.status_code, sub.headers["location"]) == (301, ACME)


def test_merging_and_renaming_is_followed_by_the_book_the_inbox_the_tape_and_the_pages(
    smtp_server,
    web_server,
    exchange,  # noqa: F811
):
    store = smtp_server.store
    with signed_in(store, web_server, ALICE) as alice:
        assert inbox_numbers(alice, "?company=acme.test") == [1]
        assert tape_numbers(alice, "?company=acme.test") == {1}
        merged = post_form(alice, f"{ACME}/merge", {"domain": "erin@globex.test"}, page=ACME)
        assert (merged.status_code, merged.headers["location"]) == (303, ACME)
        renamed = post_form(alice, f"{ACME}/name", {"name": "  ACME  Group "}, page=ACME)
        assert (renamed.status_code, renamed.headers["location"]) == (303, ACME)

        page = alice.get(ACME)
        assert "<h1>ACME Group</h1>" in page.text
        assert "Domains acme.test, globex.test" in " ".join(
            re.sub(r"<[^>]+>", " ", page.text).split()
        )
        assert "People (3)" in section(page, "people") and ERIN in section(page, "people")
        old = alice.get("/companies/globex.test")
        assert (old.status_code, old.headers["location"]) == (301, ACME)
        for domain in ("acme.test", "globex.test", "eu.acme.test"):
            assert inbox_numbers(alice, f"?company={domain}") == [1, 2]
            assert tape_numbers(alice, f"?company={domain}") == {1, 2}
        contacts = alice.get("/contacts").text
        assert '<h2><a href="/companies/acme.test">ACME Group</a></h2>' in contacts
        listed = section_free(alice.get("/companies"))
        assert "ACME Group acme.test, globex.test 3" in listed
        assert "example.com example.com 2" in listed
    companies = {entry["email"]: entry["company"] for entry in book(web_server, exchange[ALICE])}
    assert companies == {CAROL: "ACME Group", DAN: "ACME Group", ERIN: "ACME Group",
                         BOB: "example.com"}  # fmt: skip
    with signed_in(store, web_server, ALICE) as alice:
        reset = post_form(alice, f"{ACME}/name", {"name": ""}, page=ACME)
        assert reset.status_code == 303
        assert "<h1>acme.test</h1>" in alice.get(ACME).text
    assert {entry["company"] for entry in book(web_server, exchange[ERIN])} == {"example.com"}


def tape_numbers(client: httpx.Client, query: str) -> set[int]:
    """The tasks whose events the activity tape shows for ``query``."""
    page = client.get(f"/activity{query}", follow_redirects=True)  # to its own link
    assert page.status_code == 200, page.text
    return {int(n) for n in re.findall(r'class="task-link" href="/tasks/(\d+)"', page.text)}


def section_free(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def test_a_client_sees_only_their_own_company_and_only_their_own_tasks(
    smtp_server,
    web_server,
    exchange,  # noqa: F811
):
    store = smtp_server.store
    with signed_in(store, web_server, CAROL) as carol:
        assert carol.get("/companies/globex.test").status_code == 404
        assert carol.get("/companies/example.com").status_code == 404
        assert "acme.test" in section_free(carol.get("/companies"))
        assert "globex" not in section_free(carol.get("/companies"))
    with signed_in(store, web_server, ALICE) as alice:
        assert (
            post_form(alice, f"{ACME}/merge", {"domain": "globex.test"}, page=ACME).status_code
            == 303
        )
    with signed_in(store, web_server, CAROL) as carol:
        page = carol.get(ACME)
        people = section(page, "people")
        assert people == (
            "People (2) Name Address Tasks Last seen (UTC) "
            f"{NAMES[CAROL]} (you) {CAROL} 1 {stamp(6)} {NAMES[DAN]} {DAN} 1 {stamp(6)}"
        ), "Erin's task is not Carol's business, merged or not"
        assert "#2" not in section(page, "open-tasks")
        assert 'id="arrange"' not in page.text and "/merge" not in page.text
        for form, fields in (
            ("name", {"name": "Mine now"}),
            ("merge", {"domain": "x.test"}),
            ("split", {"domain": "globex.test"}),
        ):
            answer = post_form(carol, f"{ACME}/{form}", fields, page=ACME)
            assert answer.status_code == 403
        assert "Domains acme.test, globex.test" in section_free(carol.get(ACME))
    with signed_in(store, web_server, ERIN) as erin:  # Globex is ACME's now: its page
        answer = erin.get("/companies/globex.test")
        assert (answer.status_code, answer.headers["location"]) == (301, ACME)
        people = section(erin.get(ACME), "people")
        assert ERIN in people and CAROL not in people and DAN not in people


@pytest.mark.parametrize(
    ("form", "fields", "status"),
    [
        ("merge", {"domain": "gmail.com"}, 400),
        ("merge", {"domain": "dan@eu.acme.test"}, 400),  # already ACME's
        ("merge", {"domain": "not a domain"}, 400),
        ("name", {"name": "x" * 201}, 400),
        ("split", {"domain": "globex.test"}, 400),  # not one of ACME's
        ("split", {"domain": "acme.test"}, 400),  # its own domain
    ],
)
def test_the_team_forms_refuse_what_makes_no_company(
    smtp_server,
    web_server,
    exchange,  # noqa: F811
    form,
    fields,
    status,
):
    store = smtp_server.store
    with signed_in(store, web_server, ALICE) as alice:
        assert post_form(alice, f"{ACME}/{form}", fields, page=ACME).status_code == status
        assert "<h1>acme.test</h1>" in alice.get(ACME).text


def test_the_team_forms_need_the_csrf_token(smtp_server, web_server, exchange):  # noqa: F811
    store = smtp_server.store
    with signed_in(store, web_server, ALICE) as alice:
        alice.get(ACME)
        answer = alice.post(f"{ACME}/name", data={"name": "Forged"})
        assert answer.status_code == 403
        assert "<h1>acme.test</h1>" in alice.get(ACME).text


def test_a_domain_merged_by_mistake_is_split_off_and_everything_follows(
    smtp_server,
    web_server,
    exchange,  # noqa: F811
):
    store = smtp_server.store
    with signed_in(store, web_server, ALICE) as alice:
        assert (
            post_form(alice, f"{ACME}/merge", {"domain": "globex.test"}, page=ACME).status_code
            == 303
        )
        assert inbox_numbers(alice, "?company=acme.test") == [1, 2]
        assert "Split globex.test off" in alice.get(ACME).text
        split = post_form(alice, f"{ACME}/split", {"domain": "erin@globex.test"}, page=ACME)
        assert (split.status_code, split.headers["location"]) == (303, ACME)

        assert "Split globex.test off" not in alice.get(ACME).text
        assert inbox_numbers(alice, "?company=acme.test") == [1]
        assert inbox_numbers(alice, "?company=globex.test") == [2]
        assert tape_numbers(alice, "?company=acme.test") == {1}
        assert alice.get("/companies/globex.test").status_code == 200
        assert "People (1)" in section(alice.get("/companies/globex.test"), "people")
    companies = {entry["email"]: entry["company"] for entry in book(web_server, exchange[ALICE])}
    assert companies[ERIN] == "globex.test" and companies[CAROL] == "acme.test"


def test_the_people_at_a_company_are_its_domains_sub_domains_and_merged_domains_only(
    store,
):
    """``at_company``, which both company filters start from, on the real database: the
    domain, its sub-domains, and after a merge the merged domain and its sub-domains
    (found as one list, not by testing the merges per person); look-alike domains and
    webmail never."""
    everyone = [
        "carol@acme.test", "dan@eu.acme.test", "erin@globex.test", "fay@mail.globex.test",
        "gus@notglobex.test", "hal@globex.test.example", "ivy@gmail.com", "joe@gmail.com",
        "kim@Sales.Globex.TEST",
    ]  # fmt: skip
    with session_scope(store.engine) as session:
        for email in everyone:
            get_person(session, Address(email), TEAM_JOINED)

    def at(domain: str) -> set[str]:
        with Session(store.engine) as session:
            return set(session.exec(select(models.Person.email).where(at_company(domain))))

    globex = {"erin@globex.test", "fay@mail.globex.test", "kim@sales.globex.test"}
    assert at("globex.test") == at("mail.globex.test") == globex
    assert at("acme.test") == {"carol@acme.test", "dan@eu.acme.test"}
    assert at("gmail.com") == {"ivy@gmail.com", "joe@gmail.com"}
    with session_scope(store.engine) as session:
        companies.merge(session, "acme.test", "globex.test")
    merged = {"carol@acme.test", "dan@eu.acme.test", *globex}
    assert at("acme.test") == at("globex.test") == at("sales.globex.test") == merged
    assert at("notglobex.test") == {"gus@notglobex.test"}
