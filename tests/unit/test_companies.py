"""company_for: the company an address belongs to, for the address book."""

from __future__ import annotations

import pytest

from qmail.core.companies import company_for, registrable_domain


@pytest.mark.parametrize(
    ("email", "company"),
    [
        ("bob@globex.com", "globex.com"),
        ("alice@mail.acme.co.uk", "acme.co.uk"),
        ("dan@eu.acme.test", "acme.test"),
        ("x@a.b.c.initech.com", "initech.com"),
        ("x@example.org.uk", "example.org.uk"),
        ("x@physics.ox.ac.uk", "ox.ac.uk"),
        ("x@hmrc.gov.uk", "hmrc.gov.uk"),
        ("x@shop.kangaroo.com.au", "kangaroo.com.au"),
        ("x@tokyo.sony.co.jp", "sony.co.jp"),
        ("x@petrobras.com.br", "petrobras.com.br"),
        ("x@acme.co", "acme.co"),
        ("x@acme.io", "acme.io"),
        ("x@siemens.de", "siemens.de"),
        ("X@Globex.COM", "globex.com"),
        ("Bob Keller <bob@globex.com>", "globex.com"),
        ("bob@globex.com.", "globex.com"),
        ("hans@xn--mller-kva.de", "müller.de"),
        ("anna@müller.de", "müller.de"),
    ],
)
def test_company_is_the_registrable_domain(email, company):
    assert company_for(email) == company


@pytest.mark.parametrize(
    "email",
    [
        "erin@gmail.com",
        "erin@googlemail.com",
        "x@yahoo.com",
        "x@yahoo.co.uk",
        "x@yahoo.fr",
        "x@outlook.com",
        "x@hotmail.com",
        "x@hotmail.co.uk",
        "x@live.com",
        "x@msn.com",
        "x@icloud.com",
        "x@me.com",
        "x@mac.com",
        "x@aol.com",
        "x@gmx.de",
        "x@gmx.net",
        "x@web.de",
        "x@yandex.ru",
        "x@ya.ru",
        "x@mail.ru",
        "x@bk.ru",
        "x@inbox.ru",
        "x@list.ru",
        "x@rambler.ru",
        "x@proton.me",
        "x@protonmail.com",
        "x@zoho.com",
        "x@fastmail.com",
        "x@qq.com",
        "x@163.com",
        "x@orange.fr",
        "x@free.fr",
        "x@libero.it",
        "x@t-online.de",
        "x@Mail.Yandex.RU",
    ],
)
def test_webmail_names_no_company(email):
    assert company_for(email) is None


@pytest.mark.parametrize(
    "email",
    ["", "no address", "root@localhost", "x@co.uk", "x@[192.0.2.1]", "x@acme..com", "@", "x@."],
)
def test_malformed_or_bare_domains_name_no_company(email):
    assert company_for(email) is None


def test_a_webmail_lookalike_is_a_company():
    assert company_for("press@yahoo-inc.example") == "yahoo-inc.example"
    assert company_for("x@notgmail.com") == "notgmail.com"


def test_a_public_suffix_alone_is_not_registrable():
    assert registrable_domain("com.au") is None
    assert registrable_domain("uk") is None
