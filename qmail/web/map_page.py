"""The people map: ``/map`` (the page) and ``/map.json`` (what its script draws).

An edge only: ``qmail.queries.people_map`` decides who is on the map (through
``qmail.access``).  The page lists the same people as a table, for screen readers and
browsers without JavaScript; ``web/people_map.js`` fetches ``/map.json`` with the page's
session cookie and draws it with d3-force (``web/vendor/``).  ``?scope=team`` (the whole
team's correspondence) is for the team; a client asking for it gets 403.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template
from sqlmodel import Session

from qmail.access import Reader
from qmail.queries.people_map import MAP_PEOPLE, MAP_TASKS, PeopleMap, people_map

# ``scope`` is a name Litestar keeps for the ASGI scope: the parameter is read under it
Scope = Annotated[str, QueryParameter(name="scope", pattern="^(mine|team)$")]


class PeopleMapPage(Controller):
    @get("/map", sync_to_thread=True)
    def map_page(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        whose: Scope = "mine",
    ) -> Template:
        """The map, drawn by the script, and the same people as a table."""
        found = people_map(session, person, whose)
        degree: dict[str, int] = {}
        for edge in found.edges:
            degree[edge.source] = degree.get(edge.source, 0) + 1
            degree[edge.target] = degree.get(edge.target, 0) + 1
        context = {
            "person": person,
            "map": found,
            "degree": degree,
            "limits": (MAP_TASKS, MAP_PEOPLE),
        }
        return Template("people_map.html", context=context)

    @get("/map.json", sync_to_thread=True)
    def map_json(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        whose: Scope = "mine",
    ) -> PeopleMap:
        """The nodes and edges of the map, as the reader may see them."""
        return people_map(session, person, whose)
