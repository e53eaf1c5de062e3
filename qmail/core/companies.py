"""Companies: which organisation an address belongs to, read from its domain.

The address book groups people by company.  The company is the registrable part of the
address's domain (``mail.acme.co.uk`` -> ``acme.co.uk``): sub-domains collapse into the
company's domain, and common two-level public suffixes (``co.uk``, ``com.au``, ``co.jp``,
``com.br``…) count as one suffix.  Webmail and free-mail domains say nothing about an
employer, so they give no company at all.

Pure and offline on purpose: no Public Suffix List download, no DNS.  A company whose
domain we get slightly wrong costs a label on a contact; a network call at every page
view would cost far more.  Must never raise on malformed input: addresses come from mail.
"""

from __future__ import annotations

from contextlib import suppress

# The second-level labels that country-code registries sell under ("co.uk", "com.br",
# "ac.jp", "gob.mx"…): under a two-letter TLD, these make a two-level public suffix.
_GENERIC_SECOND_LEVEL = frozenset(
    {
        "ac", "co", "com", "edu", "go", "gob", "gov", "govt", "ltd", "me", "mil", "ne",
        "net", "nhs", "nic", "or", "org", "plc", "sch",
    }
)  # fmt: skip

# Free-mail providers that exist under many TLDs (yahoo.fr, hotmail.co.uk, gmx.at…):
# matched by the label left of the public suffix.
_WEBMAIL_BRANDS = frozenset({"aol", "gmx", "hotmail", "live", "outlook", "yahoo", "yandex"})

_WEBMAIL_DOMAINS = frozenset(
    {
        "126.com", "163.com", "aim.com", "bk.ru", "fastmail.com", "fastmail.fm", "free.fr",
        "gmail.com", "googlemail.com", "hey.com", "icloud.com", "inbox.ru", "laposte.net",
        "libero.it", "list.ru", "mac.com", "mail.com", "mail.ru", "me.com", "msn.com",
        "orange.fr", "pm.me", "proton.me", "protonmail.ch", "protonmail.com", "qq.com",
        "rambler.ru", "rocketmail.com", "seznam.cz", "sfr.fr", "t-online.de", "tutanota.com",
        "tuta.io", "wanadoo.fr", "web.de", "ya.ru", "ymail.com", "zoho.com",
    }
)  # fmt: skip


def company_for(email: str) -> str | None:
    """The company of ``email``: its domain without sub-domains, ``None`` for webmail.

    >>> company_for("alice@mail.acme.co.uk")
    'acme.co.uk'
    >>> company_for("Bob <bob@Globex.COM>")
    'globex.com'
    >>> company_for("carol@eu.sales.initech.com.au")
    'initech.com.au'
    >>> company_for("erin@gmail.com"), company_for("frank@yahoo.co.jp")
    (None, None)
    >>> company_for("no address at all"), company_for("root@localhost")
    (None, None)
    """
    domain = registrable_domain(email.strip().strip("<>").rpartition("@")[2])
    if domain is None or is_webmail(domain):
        return None
    return readable(domain)


def registrable_domain(domain: str) -> str | None:
    """The part of ``domain`` one registers: one label left of its public suffix.

    >>> registrable_domain("Mail.Example.ORG."), registrable_domain("x.y.acme.ac.jp")
    ('example.org', 'acme.ac.jp')
    >>> registrable_domain("co.uk") is None, registrable_domain("[192.0.2.1]") is None
    (True, True)
    """
    domain = domain.strip().rstrip(".").lower()
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels) or domain.startswith("["):
        return None
    size = public_suffix_size(labels)
    if len(labels) <= size:
        return None
    return ".".join(labels[-size - 1 :])


def public_suffix_size(labels: list[str]) -> int:
    """How many trailing labels form the public suffix: 2 for ``co.uk``, else 1.

    >>> public_suffix_size(["acme", "co", "uk"]), public_suffix_size(["acme", "co"])
    (2, 1)
    >>> public_suffix_size(["acme", "com", "br"]), public_suffix_size(["net", "com"])
    (2, 1)
    """
    tld = labels[-1]
    is_country = len(tld) == 2 and tld.isalpha()
    return 2 if is_country and len(labels) > 1 and labels[-2] in _GENERIC_SECOND_LEVEL else 1


def is_webmail(domain: str) -> bool:
    """Whether a registrable domain is a free-mail provider, which names no employer.

    >>> is_webmail("gmail.com"), is_webmail("hotmail.co.uk"), is_webmail("gmx.at")
    (True, True, True)
    >>> is_webmail("mail.ru"), is_webmail("acme.com"), is_webmail("yahoo-finance.com")
    (True, False, False)
    """
    return domain in _WEBMAIL_DOMAINS or domain.split(".")[0] in _WEBMAIL_BRANDS


def readable(domain: str) -> str:
    """``domain`` for people: IDNA labels (``xn--…``) shown in their own script.

    >>> readable("xn--mller-kva.de"), readable("acme.test")
    ('müller.de', 'acme.test')
    >>> readable("xn--zz.de")
    'xn--zz.de'
    """
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            with suppress(UnicodeError):  # not valid punycode: keep what the mail said
                label = label.encode("ascii").decode("idna")
        labels.append(label)
    return ".".join(labels)
