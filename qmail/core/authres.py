"""Authentication-Results: did the From address of a mail really send it?

Anyone can write any From.  The MTA in front of qmail (Postfix with OpenDKIM, OpenDMARC,
an SPF milter) checks DKIM (RFC 6376), SPF (RFC 7208) and DMARC (RFC 7489) and records
what it found in ``Authentication-Results`` header fields (RFC 8601).  ``judge_sender``
reads those fields and answers one of three verdicts:

- ``"pass"``: the From domain is proven; a team member's mail may act with their powers.
- ``"fail"``: the checks ran and none proves the From domain; treat it like a forgery.
- ``"none"``: nothing to go on (no trusted results, or not configured); decide as before.

Only fields whose authserv-id is the operator's ``mail.trusted_authserv_id`` count: a
sender can write ``Authentication-Results: anything; dmarc=pass`` into their own mail
(RFC 8601 section 7.1), so the MTA must strip incoming copies that claim that id (section
5; see the README) and this module must ignore every other id.  Pure: parsing and comparing only,
no DNS and no I/O; it never raises on malformed input, it just finds fewer results.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# A plain string type rather than an Enum: verdicts are compared (``== "pass"``), logged
# and stored as they are, and mypy still rejects any other string.
Verdict = Literal["pass", "fail", "none"]

# RFC 8601 2.2: methodspec = method [ "/" version ] "=" result, CFWS allowed around each.
_METHOD = re.compile(r"([A-Za-z0-9_-]+)\s*(?:/\s*[0-9]+\s*)?=\s*([A-Za-z0-9_-]*)\s*")
# reasonspec and propspec (``ptype.property=pvalue``): a value is a quoted-string or the
# run of characters up to white space (``user@acme.test``, a DKIM ``header.b`` with ``/+=``).
_PROPERTY = re.compile(
    r'([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)?)\s*=\s*("(?:[^"\\]|\\.)*"?|[^\s"]*)\s*'
)
_SPACE = re.compile(r"\s+")
# Results that say nothing about the sender: ``none`` (no record, no signature) and
# ``temperror`` (a DNS hiccup; a retry may decide) for every method.
_NO_EVIDENCE = frozenset({"none", "temperror"})


@dataclass(frozen=True)
class Result:
    """One ``method=result`` and its properties, e.g. ``("header.d", "acme.test")``.

    Method, result and property names are lower case (RFC 8601 2.2: they are
    case-insensitive); property values are kept as written.
    """

    method: str
    result: str
    properties: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        """The first value of property ``name`` (``"smtp.mailfrom"``), or ``None``."""
        return next((value for key, value in self.properties if key == name), None)


@dataclass(frozen=True)
class AuthResults:
    """One parsed ``Authentication-Results`` value.

    ``authserv_id`` is empty when the field names none: Microsoft 365 starts its fields
    with ``spf=pass`` instead, so they can never be trusted.  A field whose result is
    ``none`` as a whole (RFC 8601 2.2 ``no-result``) has no ``results``.
    """

    authserv_id: str
    results: tuple[Result, ...] = ()


def judge_sender(auth_results: tuple[str, ...], trusted_id: str, from_domain: str) -> Verdict:
    """Whether the trusted verifier proved ``from_domain``, the domain of the header From.

    ``auth_results`` are the mail's ``Authentication-Results`` values, topmost first; the
    results used are those ``trusted_results`` picks.  DMARC decides when it can:
    ``fail`` fails, ``pass`` for this From domain passes.  Otherwise (no DMARC, or
    ``none``, ``temperror``, ``permerror``, OpenDMARC's ``bestguesspass``) SPF and DKIM
    decide as DMARC would: a ``pass`` whose domain aligns with the From domain passes;
    any other SPF or DKIM result fails, except those that carry no evidence (``none``,
    ``temperror``, SPF ``neutral``).  An empty ``trusted_id`` (not configured) or
    ``from_domain`` (no From to judge) gives ``"none"``.

    >>> judge_sender(("mx.test; dmarc=pass header.from=acme.test",), "mx.test", "acme.test")
    'pass'
    >>> judge_sender(("evil.test; dmarc=pass header.from=acme.test",), "mx.test", "acme.test")
    'none'
    """
    from_domain = domain_of(from_domain)
    if not trusted_id or not from_domain:
        return "none"
    chosen = trusted_results(auth_results, trusted_id)
    dmarc = _judge_dmarc(chosen.get("dmarc", ()), from_domain)
    if dmarc is not None:
        return dmarc
    evidence = [one for one in (*chosen.get("spf", ()), *chosen.get("dkim", ())) if _counts(one)]
    if any(_aligned_pass(one, from_domain) for one in evidence):
        return "pass"
    return "fail" if evidence else "none"


def trusted_results(auth_results: Iterable[str], trusted_id: str) -> dict[str, tuple[Result, ...]]:
    """For each method, the results of the topmost field with ``trusted_id`` reporting it.

    The MTA's verifiers each add one field above everything the sender wrote (OpenDKIM
    ``dkim``, OpenDMARC ``dmarc``, an SPF milter ``spf``), in an order
    of their own, so the topmost field that reports a method is that verifier's verdict
    for this hop.  Lower fields with the same id reporting the same method are ignored:
    an earlier pass through our own MTA, or a sender's forgery that was not stripped.
    All results of the chosen field count (one ``dkim`` per signature).  The id matches
    case-insensitively and exactly: ``mx.test/JOBID`` (``AuthservIDWithJobID``) does not.

    >>> chosen = trusted_results(
    ...     ["mx.test; dkim=fail header.d=acme.test", "mx.test; dkim=pass header.d=acme.test"],
    ...     "MX.test",
    ... )
    >>> [(one.method, one.result) for one in chosen["dkim"]]
    [('dkim', 'fail')]
    """
    chosen: dict[str, tuple[Result, ...]] = {}
    for value in auth_results:
        header = parse_auth_results(value)
        if not header.authserv_id or header.authserv_id.lower() != trusted_id.lower():
            continue
        for method in dict.fromkeys(one.method for one in header.results):
            if method not in chosen:
                chosen[method] = tuple(one for one in header.results if one.method == method)
    return chosen


def _judge_dmarc(results: tuple[Result, ...], from_domain: str) -> Verdict | None:
    # A fail for any From domain fails: if the verifier read another From than we do
    # (two From fields), that is no reason to believe ours.
    if any(one.result == "fail" for one in results):
        return "fail"
    for one in results:
        header_from = one.get("header.from")
        if one.result == "pass" and (header_from is None or domain_of(header_from) == from_domain):
            return "pass"
    return None


def _counts(result: Result) -> bool:
    # RFC 7208 8.2: an SPF "neutral" MUST be treated exactly like "none".
    neutral = result.method == "spf" and result.result == "neutral"
    return result.result not in _NO_EVIDENCE and not neutral


def _aligned_pass(result: Result, from_domain: str) -> bool:
    """A pass for an identity that aligns with the From domain (RFC 7489 3.1)."""
    if result.result != "pass":
        return False
    if result.method == "spf":
        # The MAIL FROM identity only: a HELO pass (smtp.helo) proves the client's
        # host name, not the From; DMARC uses MAIL FROM too (RFC 7489 4.1).
        identity = result.get("smtp.mailfrom")
    else:  # dkim: the signing domain d=; the agent identity i= lies inside it (RFC 6376)
        identity = result.get("header.d") or result.get("header.i")
    return identity is not None and aligned(domain_of(identity), from_domain)


def aligned(first: str, second: str) -> bool:
    """Relaxed alignment without a public suffix list: equal, or one inside the other.

    Siblings never align (``a.acme.test`` and ``b.acme.test``), nor does a bare top-level
    domain, nor a name that merely ends with the other's text.

    >>> aligned("mail.Acme.test.", "acme.test"), aligned("acme.test", "acme.test")
    (True, True)
    >>> aligned("acme.test.evil.example", "acme.test"), aligned("test", "acme.test")
    (False, False)
    """
    first, second = domain_of(first), domain_of(second)
    if not first or not second:
        return False
    if first == second:
        return True
    inner, outer = (first, second) if len(first) > len(second) else (second, first)
    return "." in outer and inner.endswith("." + outer)


def domain_of(value: str) -> str:
    """The domain of an address, ``@domain`` (DKIM ``i=``) or domain, compared form.

    Lower case, no trailing dot, internationalized names as A-labels (RFC 5890).

    >>> domain_of("Lin@Mail.ACME.test."), domain_of("@acme.test"), domain_of(" bücher.test ")
    ('mail.acme.test', 'acme.test', 'xn--bcher-kva.test')
    """
    domain = value.strip().rpartition("@")[2].strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN: compared as written, aligns with no ASCII name
        return domain


# --- parsing (RFC 8601 section 2.2) --------------------------------------------------


def parse_auth_results(value: str) -> AuthResults:
    """Parse one ``Authentication-Results`` value; unreadable parts are skipped.

    >>> header = parse_auth_results('mx.test 1; SPF=Pass (ok; yes) smtp.mailfrom=a@acme.test')
    >>> header.authserv_id, header.results[0]
    ('mx.test', Result(method='spf', result='pass', properties=(('smtp.mailfrom', 'a@acme.test'),)))
    >>> parse_auth_results("mx.test; none")
    AuthResults(authserv_id='mx.test', results=())
    """
    pieces = split_resinfo(value)
    if _METHOD.match(pieces[0]):  # no authserv-id: Microsoft 365's "spf=pass ...; ..."
        authserv_id, rest = "", pieces
    else:
        authserv_id, rest = _authserv_id(pieces[0]), pieces[1:]
    results = (_resinfo(piece) for piece in rest)
    return AuthResults(authserv_id, tuple(one for one in results if one is not None))


def split_resinfo(value: str) -> list[str]:
    r"""``value`` cut at each ``;`` outside quotes and comments, comments removed.

    Comments nest and may hold ``;`` and quotes (OpenDKIM's ``(2048-bit key;
    unprotected)``); a backslash quotes the next character (RFC 5322 3.2.2).

    >>> split_resinfo('mx.test; dkim=pass (a; (b) \\) c) header.b="x;y"; none')
    ['mx.test', 'dkim=pass   header.b="x;y"', 'none']
    """
    pieces: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            if quoted:
                current.append(char)
        elif char == "\\" and (quoted or depth):
            escaped = True
            if quoted:
                current.append(char)
        elif depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
        elif quoted:
            current.append(char)
            quoted = char != '"'
        elif char == "(":
            depth = 1
            current.append(" ")
        elif char == ";":
            pieces.append("".join(current).strip())
            current = []
        else:
            current.append(char)
            quoted = char == '"'
    pieces.append("".join(current).strip())
    return pieces


def _authserv_id(piece: str) -> str:
    # A quoted id is taken as written between the quotes, escapes and all: the MTA's
    # header_checks rule matches the raw text, so "mx\.test" must not become mx.test.
    if piece.startswith('"'):
        return piece[1:].partition('"')[0]
    words = piece.split()
    return words[0] if words else ""


def _resinfo(piece: str) -> Result | None:
    """``method=result [reason=...] [ptype.property=value ...]``, or ``None``."""
    method = _METHOD.match(piece)
    if method is None or not method.group(2):
        return None
    properties = []
    position = method.end()
    while position < len(piece):
        found = _PROPERTY.match(piece, position)
        if found is None:  # not a property: skip one word and read on
            space = _SPACE.search(piece, position)
            position = space.end() if space else len(piece)
            continue
        name = re.sub(r"\s+", "", found.group(1)).lower()
        properties.append((name, _unquote(found.group(2))))
        position = found.end()
    return Result(method.group(1).lower(), method.group(2).lower(), tuple(properties))


def _unquote(value: str) -> str:
    r"""A quoted-string's content with quoted-pairs resolved; other values as they are.

    >>> _unquote('"a\\"b"'), _unquote("plain")
    ('a"b', 'plain')
    """
    if not value.startswith('"'):
        return value
    return re.sub(r"\\(.)", r"\1", value[1:].removesuffix('"'))
