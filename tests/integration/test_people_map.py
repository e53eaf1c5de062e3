"""The people map: who corresponds with whom, as each reader may see it (``/map.json``).

The world is the address book's exchange (``test_contacts.exchange``: Alice and Bob are
the team, Carol and Dan are ACME in task 1, whose hidden branch is Alice's and Bob's;
Erin is Globex in task 2), plus Frank, a team member whom Alice copies on a mail to that
hidden branch: he is in nothing else, so only the branch's members may see him.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from qmail import models
from qmail.db import session_scope
from tests.integration.test_contacts import (
    ALICE,
    BOB,
    CAROL,
    DAN,
    ERIN,
    NAMES,
    exchange,  # noqa: F401 (a fixture)
    private_address,
)
from tests.integration.test_pages import add_person, signed_in

FRANK = "frank@freelance.test"  # on the team by his role (qmail person add --team)
SECRET_WORDS = "Frank, a word between us"


@pytest.fixture
def mapped(smtp_server, web_server, exchange):  # noqa: F811
    store = smtp_server.store
    with session_scope(store.engine) as session:
        session.add(models.Person(email=FRANK, name="Frank Ortiz", role="team"))
    mail = EmailMessage()
    to = private_address(store, 1, ALICE)
    mail["From"], mail["To"], mail["Cc"] = ALICE, to, FRANK
    mail["Subject"], mail["Message-ID"] = "Re: the team's view", "<frank-in@example.com>"
    mail.set_content(SECRET_WORDS)
    assert smtp_server.send(mail.as_bytes(), to, sender=ALICE) == {}
    return store


def people_map(store, web_server, email: str, scope: str = "mine") -> dict:
    with signed_in(store, web_server, email) as client:
        answer = client.get(f"/map.json?scope={scope}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def drawn(found: dict) -> tuple[dict, dict]:
    """Nodes by address, as (company, writers, you); edges as {(a, b): tasks}."""
    nodes = {
        node["email"]: (node["company_domain"], node["writers"], node["you"])
        for node in found["nodes"]
    }
    edges = {(edge["source"], edge["target"]): edge["tasks"] for edge in found["edges"]}
    return nodes, edges


def test_a_team_members_map_counts_every_branch_they_may_read(mapped, web_server):
    nodes, edges = drawn(people_map(mapped, web_server, ALICE))
    # writers: the other people who wrote in the branches one is in (1-8 are the mails;
    # Alice's own message opened Frank's branch)
    assert nodes == {
        ALICE: ("example.com", 4, True),  # Carol, Dan, Bob (hidden branch), Erin
        BOB: ("example.com", 4, False),  # Carol, Alice, Dan, Erin
        CAROL: ("acme.test", 2, False),  # Alice, Dan
        DAN: ("acme.test", 2, False),  # Carol, Alice
        ERIN: ("globex.test", 1, False),  # Bob
        FRANK: ("freelance.test", 2, False),  # Alice and Bob, in the hidden branch
    }
    task_1 = [ALICE, BOB, CAROL, DAN, FRANK]
    expected = {(a, b): 1 for i, a in enumerate(task_1) for b in task_1[i + 1 :]}
    expected |= {(ALICE, BOB): 2, (ALICE, ERIN): 1, (BOB, ERIN): 1}
    assert edges == {tuple(sorted(pair)): tasks for pair, tasks in expected.items()}
    assert (
        people_map(mapped, web_server, ALICE, "team")["nodes"]
        == people_map(mapped, web_server, ALICE)["nodes"]
    )


def test_a_hidden_branch_counts_only_for_its_members_even_on_the_teams_map(mapped, web_server):
    grace = "grace@example.com"  # on the team, in no discussion yet
    add_person(mapped, grace, "Grace Hopper")
    nodes, edges = drawn(people_map(mapped, web_server, grace, "team"))
    assert set(nodes) == {ALICE, BOB, CAROL, DAN, ERIN}, "Frank is only in the hidden branch"
    assert nodes[ALICE] == ("example.com", 4, False)  # Carol, Dan (task 1), Erin, Bob (task 2)
    assert edges[(ALICE, BOB)] == 2
    assert people_map(mapped, web_server, grace)["nodes"] == []  # her own: nobody yet
    assert FRANK in drawn(people_map(mapped, web_server, BOB, "team"))[0]  # he shares it


def test_a_clients_map_holds_only_the_people_of_their_own_branches(mapped, web_server):
    found = people_map(mapped, web_server, CAROL)
    nodes, edges = drawn(found)
    assert nodes == {
        ALICE: ("example.com", 2, False),  # Carol, Dan: not Bob's hidden-branch message
        BOB: ("example.com", 3, False),  # Carol, Alice, Dan
        CAROL: ("acme.test", 2, True),
        DAN: ("acme.test", 2, False),
    }
    people = sorted(nodes)
    assert edges == {(a, b): 1 for i, a in enumerate(people) for b in people[i + 1 :]}
    assert (found["scope"], found["tasks"], found["complete"]) == ("mine", 1, True)
    with signed_in(mapped, web_server, CAROL) as carol:
        assert carol.get("/map.json?scope=team").status_code == 403
        assert carol.get("/map?scope=team").status_code == 403
        page = carol.get("/map")
    assert page.status_code == 200
    assert FRANK not in page.text and ERIN not in page.text and SECRET_WORDS not in page.text
    for email in (ALICE, BOB, DAN):  # the list the map draws, for screen readers and no-JS
        assert f'<a href="/contacts/{email.replace("@", "%40")}">{NAMES[email]}</a>' in page.text
    assert f"<td>{NAMES[CAROL]} (you)</td>" in page.text


def test_the_map_needs_a_signed_in_reader(mapped, web_server):
    with web_server.client() as anonymous:
        answer = anonymous.get("/map.json")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    with signed_in(mapped, web_server, ALICE) as alice:
        assert alice.get("/map.json?scope=everyone").status_code == 400
