"""Companies as the team has arranged them: named, and with domains merged into one.

An address's company is its registrable domain (``core.companies.company_for``; webmail
names none).  That domain is the company's key until the team changes something: renaming
a company or merging a second domain into it writes a ``Company`` row (key and name) and
a ``CompanyDomain`` row per domain, so every later reading follows the change: the address
book's grouping (``companies_of``) and the inbox's company filter (``at_company``, SQL).

Nothing here checks who may do it: the team's forms (``web/companies_page.py``) do.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, literal, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from qmail import models
from qmail.core.companies import company_for
from qmail.db import like_escaped
from qmail.errors import BadRequest

MAX_NAME = 200


@dataclass(frozen=True)
class Company:
    """A company as pages show it: its key domain, its name and all its domains."""

    key: str
    name: str
    domains: tuple[str, ...]


def company_key(domain: str) -> str | None:
    """The key a domain (or an address) stands for before any merge: its registrable
    domain; ``None`` for webmail and for what is no domain at all.

    >>> company_key("eu.Acme.test"), company_key("dan@eu.acme.test"), company_key("gmail.com")
    ('acme.test', 'acme.test', None)
    """
    text = domain.strip()
    return company_for(text if "@" in text else f"x@{text}")


def companies_of(session: Session, keys: Iterable[str]) -> dict[str, Company]:
    """For each key (a registrable domain), the company it belongs to, in one query; a
    domain the team never touched is a company of its own."""
    wanted = sorted(set(keys))
    found = {key: Company(key, key, (key,)) for key in wanted}
    if not wanted:
        return found
    asked, merged = aliased(models.CompanyDomain), aliased(models.CompanyDomain)
    rows = session.exec(
        select(asked.domain, models.Company.domain, models.Company.name, merged.domain)
        .join(models.Company, col(models.Company.id) == asked.company_id)
        .join(merged, col(merged.company_id) == models.Company.id)
        .where(col(asked.domain).in_(wanted))
        .order_by(col(merged.domain))
    ).all()
    domains: dict[str, list[str]] = {}
    for domain, key, name, other in rows:
        domains.setdefault(domain, []).append(other)
        found[domain] = Company(key, name or key, tuple(domains[domain]))
    return found


def company_of(session: Session, domain: str) -> Company | None:
    """The company of ``domain`` (or of an address), ``None`` for webmail or no domain."""
    key = company_key(domain)
    return None if key is None else companies_of(session, [key])[key]


def rename(session: Session, domain: str, name: str) -> Company:
    """Give the company of ``domain`` a name; an empty one shows its key domain again."""
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise BadRequest(f"a company's name is at most {MAX_NAME} characters")
    row = _row(session, _known(session, domain))
    row.name = name
    session.flush()
    return _companies(session, row.domain)


def merge(session: Session, domain: str, other: str) -> Company:
    """Make ``other`` (a domain or an address) one more domain of ``domain``'s company,
    and with it every domain already merged into ``other``'s."""
    into, joining = _known(session, domain), _known(session, other, "the domain to merge")
    if joining.key == into.key:
        raise BadRequest(f"{other.strip()} is already part of {into.name}")
    row = _row(session, into)
    assert row.id is not None
    gone = session.exec(select(models.Company).where(models.Company.domain == joining.key)).first()
    if gone is None:
        session.add(models.CompanyDomain(domain=joining.key, company_id=row.id))
    else:
        moved = select(models.CompanyDomain).where(models.CompanyDomain.company_id == gone.id)
        for mapped in session.exec(moved).all():
            mapped.company_id = row.id  # type: ignore[assignment]
        session.flush()
        session.delete(gone)
    session.flush()
    return _companies(session, row.domain)


def split(session: Session, domain: str, other: str) -> Company:
    """Take ``other``, a domain merged into ``domain``'s company, out of it again: it is a
    company of its own once more (a merge made by mistake is undone)."""
    company = _known(session, domain)
    leaving = company_key(other) if len(other) <= 320 else None
    if leaving is None or leaving not in company.domains:
        raise BadRequest(f"{other.strip()} is not one of {company.name}'s domains")
    if leaving == company.key:
        raise BadRequest(f"{leaving} is {company.name}'s own domain: split the others off")
    mapped = session.exec(
        select(models.CompanyDomain).where(models.CompanyDomain.domain == leaving)
    ).one()
    session.delete(mapped)
    session.flush()
    return _companies(session, company.key)


def _known(session: Session, domain: str, what: str = "company") -> Company:
    found = company_of(session, domain) if len(domain) <= 320 else None
    if found is None:
        raise BadRequest(f"{what} must be a company's domain, not a webmail one")
    return found


def _row(session: Session, company: Company) -> models.Company:
    """The ``Company`` row of ``company``, written on its first change."""
    row = session.exec(select(models.Company).where(models.Company.domain == company.key)).first()
    if row is None:
        row = models.Company(domain=company.key, name="")
        session.add(row)
        session.flush()
        assert row.id is not None
        session.add(models.CompanyDomain(domain=company.key, company_id=row.id))
        session.flush()
    return row


def _companies(session: Session, key: str) -> Company:
    return companies_of(session, [key])[key]


def at_company(domain: str, person: Any = models.Person) -> ColumnElement[bool]:
    """A condition on ``Person`` (or an alias): people at the company of ``domain``, at any
    of its domains or their sub-domains (``dan@eu.acme.test`` is at ``acme.test``).

    A webmail domain names no company: it matches that domain only, as it always did.
    The company's people are found first, as a list of ids, so a query starts from their
    few branches rather than testing everyone's.

    That list is one read of the index of domains, and each test in it is done once, not
    once per person: on SQLite ``domain`` is a virtual generated column, so a scan of the
    table computes it again for every person, and a sub-domain (``LIKE '%.acme.test'``)
    is no range of any index; ``domain >= ''`` (true of every address) makes SQLite read
    ``ix_person_domain_email``, which holds it computed (at 10,000 people: 1.5 ms, where
    the table scan with a merged-domain test per person cost 50 ms; bench/README.md).
    """
    someone = aliased(models.Person)
    return col(person.id).in_(
        select(col(someone.id)).where(_indexed(someone), _domain_matches(domain, someone))
    )


def _indexed(person: Any) -> ColumnElement[bool]:
    """True of every person, and a range of the index on ``domain`` (``at_company``)."""
    return col(person.domain) >= ""


def _domain_matches(domain: str, person: Any) -> ColumnElement[bool]:
    key = company_key(domain)
    column = col(person.domain)
    if key is None:
        return column == domain.strip().lower()
    asked, merged = aliased(models.CompanyDomain), aliased(models.CompanyDomain)
    others = (
        select(col(merged.domain))
        .join(asked, col(asked.company_id) == merged.company_id)
        .where(col(asked.domain) == key)
    )
    # the sub-domains of merged domains: the few merged domains first, then the people
    # under each, as one list (not a test of the merges for every person)
    below_person = aliased(models.Person)
    below = (
        select(col(below_person.id))
        .select_from(merged)
        .join(asked, col(asked.company_id) == merged.company_id)
        .join(
            below_person,
            col(below_person.domain).like(literal("%.").concat(col(merged.domain))),
        )
        .where(col(asked.domain) == key, _indexed(below_person))
    )
    names = {key}  # as the address was written: Unicode or IDNA
    with suppress(UnicodeError):  # a label IDNA cannot write: only the Unicode form matches
        names.add(key.encode("idna").decode("ascii"))
    return or_(
        *(column == name for name in sorted(names)),
        *(column.like(f"%.{like_escaped(name)}", escape="\\") for name in sorted(names)),
        column.in_(others),
        col(person.id).in_(below),
    )
