"""The companies: ``/companies``, ``/companies/{domain}`` and the team's forms.

An edge only.  What a reader may see of a company is decided by
``qmail.queries.companies`` (through ``qmail.access``); renaming, merging and splitting
are ``qmail.companies``'s, and for the team only (403 for anyone else).  A domain merged into
another company's answers with a redirect to that company's page; a company a client may
not see answers 404, as one that does not exist.  Forms carry Litestar's CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import Session

from qmail import companies
from qmail.access import Reader
from qmail.companies import Company
from qmail.errors import Forbidden, NotFound
from qmail.queries.companies import company_list, company_page, may_see
from qmail.web.forms import Form, form_value


def page_of(company: Company) -> str:
    return f"/companies/{quote(company.key, safe='')}"


class CompaniesPage(Controller):
    path = "/companies"

    @get("/", sync_to_thread=True)
    def list_companies(
        self, session: NamedDependency[Session], person: NamedDependency[Reader]
    ) -> Template:
        """The companies of the people the reader meets (a client: their own)."""
        listed = company_list(session, person)
        return Template("companies.html", context={"person": person, "companies": listed})

    @get("/{domain:str}", sync_to_thread=True)
    def show(
        self,
        request: Request[Any, Any, Any],
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        domain: FromPath[str],
    ) -> Response[Any]:
        """A company: its people, tasks, last contact and the team members who talk with
        it most; the team's rename and merge forms."""
        company = _visible(session, person, domain)
        if company.key != domain:  # a merged domain, or a sub-domain: the company's page
            return Redirect(page_of(company), status_code=301)
        found = company_page(session, person, request.app.state.team, company)
        if not found.people_total:
            raise NotFound(f"nobody you know is at {domain}")
        return Template("company.html", context={"person": person, "page": found})

    @post("/{domain:str}/name", sync_to_thread=True)
    def rename(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        domain: FromPath[str],
        data: Form,
    ) -> Response[Any]:
        """Rename the company (an empty name shows its domain again)."""
        return _arrange(session, person, domain, companies.rename, form_value(data, "name"))

    @post("/{domain:str}/merge", sync_to_thread=True)
    def merge(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        domain: FromPath[str],
        data: Form,
    ) -> Response[Any]:
        """Merge another domain (and its company) into this company."""
        return _arrange(session, person, domain, companies.merge, form_value(data, "domain"))

    @post("/{domain:str}/split", sync_to_thread=True)
    def split(
        self,
        session: NamedDependency[Session],
        person: NamedDependency[Reader],
        domain: FromPath[str],
        data: Form,
    ) -> Response[Any]:
        """Take a merged domain out of the company again."""
        return _arrange(session, person, domain, companies.split, form_value(data, "domain"))


def _visible(session: Session, person: Reader, domain: str) -> Company:
    company = companies.company_of(session, domain) if len(domain) <= 320 else None
    if company is None or not may_see(session, person, company):
        raise NotFound(f"no company {domain}")
    return company


def _arrange(
    session: Session,
    person: Reader,
    domain: str,
    change: Callable[[Session, str, str], Company],
    value: str,
) -> Response[Any]:
    """One of the team's changes to the company of ``domain`` (rename, merge, split),
    committed; back to the company's page."""
    if not person.is_team:
        raise Forbidden("companies are renamed and merged by the team")
    changed = change(session, _visible(session, person, domain).key, value)
    session.commit()
    return Redirect(page_of(changed), status_code=303)
