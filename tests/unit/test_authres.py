"""Authentication-Results: parsing real verifiers' fields, and the verdict on a From."""

from __future__ import annotations

import random

import pytest

from qmail.core.authres import (
    Result,
    aligned,
    domain_of,
    judge_sender,
    parse_auth_results,
    trusted_results,
)
from qmail.core.mail import Mail
from qmail.core.parse import parse_mail
from tests.conftest import eml_bytes

TRUSTED = "mail.example.com"
FROM = "acme.test"

# What the verifiers in front of qmail write, as Postfix delivers them (unfolded).
OPENDMARC_PASS = "mail.example.com; dmarc=pass (p=none dis=none) header.from=acme.test"
OPENDMARC_FAIL = "mail.example.com; dmarc=fail (p=reject dis=none) header.from=acme.test"
OPENDMARC_NONE = "mail.example.com; dmarc=none (p=none dis=none) header.from=acme.test"
OPENDKIM_PASS = (
    "mail.example.com;\tdkim=pass (2048-bit key; unprotected) header.d=acme.test"
    ' header.i=@acme.test header.a=rsa-sha256 header.s=sel1 header.b="Xy3abcDE"'
)
OPENDKIM_FAIL = (
    'mail.example.com; dkim=fail reason="signature verification failed" (2048-bit key;'
    ' secure) header.d=acme.test header.i=@acme.test header.b="Xy3abcDE"'
)
POLICYD_SPF_PASS = "mail.example.com; spf=pass (sender SPF authorized) smtp.mailfrom=lin@acme.test"
POLICYD_SPF_FAIL = (
    "mail.example.com; spf=fail (sender SPF not authorized) smtp.mailfrom=lin@acme.test"
)
GMAIL = (
    "mx.google.com;       dkim=pass header.i=@acme.test header.s=20230601 header.b=Ab3/dE+9;"
    "       spf=pass (google.com: domain of lin@acme.test designates 203.0.113.25 as"
    " permitted sender) smtp.mailfrom=lin@acme.test;"
    "       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=acme.test"
)
MICROSOFT_365 = (
    "spf=pass (sender IP is 203.0.113.25) smtp.mailfrom=acme.test; dkim=pass (signature"
    " was verified) header.d=acme.test;dmarc=pass action=none header.from=acme.test;"
    "compauth=pass reason=100"
)
FORGED_PASS = "evil.example; dmarc=pass (p=reject dis=none) header.from=acme.test"


def judge(*auth_results: str, trusted_id: str = TRUSTED, from_domain: str = FROM) -> str:
    return judge_sender(auth_results, trusted_id, from_domain)


def props(value: str, index: int = 0) -> dict[str, str]:
    return dict(parse_auth_results(value).results[index].properties)


# --- parsing -------------------------------------------------------------------------


def test_opendmarc_field_is_parsed() -> None:
    header = parse_auth_results(OPENDMARC_PASS)
    assert header.authserv_id == "mail.example.com"
    assert header.results == (Result("dmarc", "pass", (("header.from", "acme.test"),)),)


def test_opendkim_comment_holding_a_semicolon_does_not_split_the_result() -> None:
    header = parse_auth_results(OPENDKIM_PASS)
    assert [(one.method, one.result) for one in header.results] == [("dkim", "pass")]
    assert props(OPENDKIM_PASS) == {
        "header.d": "acme.test",
        "header.i": "@acme.test",
        "header.a": "rsa-sha256",
        "header.s": "sel1",
        "header.b": "Xy3abcDE",
    }


def test_reason_is_a_property_and_quoted_values_are_unquoted() -> None:
    assert props(OPENDKIM_FAIL)["reason"] == "signature verification failed"
    escaped = parse_auth_results(r'mx.test; dkim=fail reason="bad \"b=\" tag; sorry"')
    assert escaped.results[0].get("reason") == 'bad "b=" tag; sorry'


def test_policyd_spf_field_is_parsed() -> None:
    assert parse_auth_results(POLICYD_SPF_PASS).results == (
        Result("spf", "pass", (("smtp.mailfrom", "lin@acme.test"),)),
    )


def test_gmail_field_with_three_results_is_parsed() -> None:
    header = parse_auth_results(GMAIL)
    assert header.authserv_id == "mx.google.com"
    assert [(one.method, one.result) for one in header.results] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    assert header.results[0].get("header.b") == "Ab3/dE+9"
    assert header.results[1].get("smtp.mailfrom") == "lin@acme.test"


def test_microsoft_365_field_has_no_authserv_id_but_its_results_are_read() -> None:
    header = parse_auth_results(MICROSOFT_365)
    assert header.authserv_id == ""
    assert [(one.method, one.result) for one in header.results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dmarc", "pass"),
        ("compauth", "pass"),
    ]
    assert header.results[2].properties == (("action", "none"), ("header.from", "acme.test"))


def test_nested_comments_and_escaped_parentheses_are_skipped() -> None:
    value = r'mx.test (outer (inner; "x") \) still) ; dkim=pass (a (b (c)) d) header.d=acme.test'
    header = parse_auth_results(value)
    assert header.authserv_id == "mx.test"
    assert header.results == (Result("dkim", "pass", (("header.d", "acme.test"),)),)


@pytest.mark.parametrize("value", ["mx.test; none", "mx.test 1; none", " mx.test (x) ;\tNONE "])
def test_none_as_the_whole_result_gives_no_results(value: str) -> None:
    header = parse_auth_results(value)
    assert (header.authserv_id, header.results) == ("mx.test", ())


def test_names_are_case_insensitive_and_values_keep_their_case() -> None:
    header = parse_auth_results("MX.Test; DKIM=PASS Header.D=Acme.TEST header.b=AbC")
    assert header.authserv_id == "MX.Test"
    assert header.results[0].method == "dkim"
    assert header.results[0].result == "pass"
    assert header.results[0].properties == (("header.d", "Acme.TEST"), ("header.b", "AbC"))


def test_white_space_around_separators_and_method_versions_are_allowed() -> None:
    value = "  mx.test 1 ;\r\n\tdkim/1 = pass ( ok )\t header . d = acme.test  ;spf=pass"
    header = parse_auth_results(value)
    assert header.authserv_id == "mx.test"
    assert header.results == (
        Result("dkim", "pass", (("header.d", "acme.test"),)),
        Result("spf", "pass"),
    )


def test_quoted_authserv_id_is_taken_as_written() -> None:
    assert parse_auth_results('"mx.test" ; spf=pass').authserv_id == "mx.test"
    # A quoted-pair is not resolved: the MTA's strip rule matches the raw text.
    assert parse_auth_results(r'"mx\.test"; spf=pass').authserv_id == r"mx\.test"


def test_unreadable_words_are_skipped() -> None:
    header = parse_auth_results("mx.test; dkim=pass header.d acme.test header.i=@acme.test")
    assert header.results[0].properties == (("header.i", "@acme.test"),)


@pytest.mark.parametrize(
    "value",
    ["", ";", ";;;", "(((", '"', "mx.test;", "mx.test; =pass", "mx.test; dkim=", '"unclosed; x'],
)
def test_malformed_fields_give_no_results(value: str) -> None:
    assert parse_auth_results(value).results == ()


def test_random_garbage_never_raises() -> None:
    rng = random.Random(8601)
    alphabet = 'ab.=;()"\\ \t@/-1é'
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        parse_auth_results(value)
        judge_sender((value,), "a", "a.b")


# --- which fields count ----------------------------------------------------------------


def test_without_a_trusted_id_the_verdict_is_always_none() -> None:
    assert judge(OPENDMARC_PASS, trusted_id="") == "none"
    assert judge(OPENDMARC_FAIL, trusted_id="") == "none"


def test_forged_pass_under_another_authserv_id_is_ignored() -> None:
    assert judge(FORGED_PASS) == "none"
    assert judge(FORGED_PASS, OPENDMARC_FAIL) == "fail"


@pytest.mark.parametrize(
    "authserv_id", ["mail.example.com.evil.example", "example.com", "mail.example.com/4Vx1"]
)
def test_authserv_id_must_match_exactly(authserv_id: str) -> None:
    assert judge(OPENDMARC_PASS.replace(TRUSTED, authserv_id)) == "none"


def test_authserv_id_matches_regardless_of_case() -> None:
    assert judge(OPENDMARC_PASS, trusted_id="Mail.Example.COM") == "pass"
    assert judge(OPENDMARC_PASS.replace(TRUSTED, "MAIL.EXAMPLE.COM")) == "pass"


def test_topmost_trusted_result_of_a_method_wins_over_lower_ones() -> None:
    # A copy the sender wrote sits below the verifier's own field.
    assert judge(OPENDMARC_FAIL, OPENDMARC_PASS) == "fail"
    assert judge(OPENDKIM_FAIL, OPENDKIM_PASS) == "fail"
    assert judge(OPENDKIM_PASS, OPENDKIM_FAIL) == "pass"


def test_each_verifier_reports_in_its_own_field_and_all_of_them_count() -> None:
    chosen = trusted_results(
        [OPENDMARC_NONE, OPENDKIM_FAIL, POLICYD_SPF_PASS, FORGED_PASS], TRUSTED
    )
    assert {method: [one.result for one in found] for method, found in chosen.items()} == {
        "dmarc": ["none"],
        "dkim": ["fail"],
        "spf": ["pass"],
    }
    assert judge(OPENDMARC_NONE, OPENDKIM_FAIL, POLICYD_SPF_PASS) == "pass"


def test_a_field_reporting_nothing_does_not_hide_lower_results() -> None:
    assert judge("mail.example.com; none", OPENDMARC_PASS) == "pass"


def test_trusted_gmail_fields_are_judged_like_any_other() -> None:
    assert judge(GMAIL, trusted_id="mx.google.com") == "pass"
    assert judge(GMAIL) == "none"


def test_microsoft_365_fields_are_never_trusted() -> None:
    assert judge(MICROSOFT_365) == "none"
    assert judge(MICROSOFT_365, trusted_id="spf=pass") == "none"


# --- DMARC -----------------------------------------------------------------------------


def test_dmarc_pass_for_the_from_domain_passes() -> None:
    assert judge(OPENDMARC_PASS) == "pass"


def test_dmarc_fail_fails_even_beside_an_aligned_pass() -> None:
    assert judge(OPENDMARC_FAIL) == "fail"
    assert judge(OPENDMARC_FAIL, OPENDKIM_PASS, POLICYD_SPF_PASS) == "fail"


def test_dmarc_pass_for_another_from_domain_is_no_proof() -> None:
    other = "mail.example.com; dmarc=pass header.from=evil.example"
    assert judge(other) == "none"
    assert judge(other, "mail.example.com; spf=pass smtp.mailfrom=evil.example") == "fail"
    assert judge(other, OPENDKIM_PASS) == "pass"


def test_dmarc_pass_without_header_from_passes() -> None:
    assert judge("mail.example.com; dmarc=pass") == "pass"


@pytest.mark.parametrize("result", ["none", "temperror", "permerror", "bestguesspass", "policy"])
def test_other_dmarc_results_fall_back_to_spf_and_dkim(result: str) -> None:
    dmarc = f"mail.example.com; dmarc={result} header.from=acme.test"
    assert judge(dmarc) == "none"
    assert judge(dmarc, OPENDKIM_PASS) == "pass"
    assert judge(dmarc, OPENDKIM_FAIL) == "fail"


# --- SPF and DKIM without a DMARC verdict ----------------------------------------------


def test_aligned_spf_pass_passes() -> None:
    assert judge(POLICYD_SPF_PASS) == "pass"
    assert judge("mail.example.com; spf=pass smtp.mailfrom=bounces@mail.acme.test") == "pass"
    assert judge("mail.example.com; spf=pass smtp.mailfrom=acme.test") == "pass"


def test_spf_pass_for_the_helo_name_only_is_not_enough() -> None:
    assert judge("mail.example.com; spf=pass smtp.helo=mail.acme.test") == "fail"


def test_aligned_dkim_pass_passes_by_its_signing_domain_or_identity() -> None:
    assert judge(OPENDKIM_PASS) == "pass"
    assert judge("mail.example.com; dkim=pass header.i=lin@mail.acme.test") == "pass"
    assert judge("mail.example.com; dkim=pass header.d=mailer.example header.i=@acme.test") == (
        "fail"
    )


def test_one_aligned_signature_among_several_passes() -> None:
    value = (
        "mail.example.com; dkim=pass header.d=mailer.example; dkim=fail header.d=acme.test;"
        " dkim=pass header.d=acme.test"
    )
    assert judge(value) == "pass"


def test_unaligned_passes_fail() -> None:
    newsletter = (
        "mail.example.com; spf=pass smtp.mailfrom=bounce@mailer.example;"
        " dkim=pass header.d=mailer.example"
    )
    assert judge(newsletter) == "fail"


def test_look_alike_domains_never_align() -> None:
    for domain in ("acme.test.evil.example", "evilacme.test", "test", "other.test"):
        assert judge(f"mail.example.com; dkim=pass header.d={domain}") == "fail", domain


@pytest.mark.parametrize(
    "value",
    [
        POLICYD_SPF_FAIL,
        OPENDKIM_FAIL,
        "mail.example.com; spf=softfail smtp.mailfrom=lin@acme.test",
        "mail.example.com; spf=permerror smtp.mailfrom=lin@acme.test",
        "mail.example.com; dkim=neutral (bad format) header.d=acme.test",
        "mail.example.com; dkim=policy header.d=acme.test",
        "mail.example.com; spf=none smtp.mailfrom=lin@acme.test; dkim=fail header.d=acme.test",
    ],
)
def test_checks_that_ran_and_prove_nothing_fail(value: str) -> None:
    assert judge(value) == "fail"


@pytest.mark.parametrize(
    "value",
    [
        "mail.example.com; spf=none smtp.mailfrom=lin@acme.test; dkim=none",
        "mail.example.com; spf=neutral smtp.mailfrom=lin@acme.test",
        "mail.example.com; spf=temperror smtp.mailfrom=lin@acme.test; dkim=temperror",
        "mail.example.com; none",
        "mail.example.com; iprev=pass policy.iprev=203.0.113.25; auth=pass smtp.auth=lin",
    ],
)
def test_results_without_evidence_give_none(value: str) -> None:
    assert judge(value) == "none"


def test_no_fields_at_all_give_none() -> None:
    assert judge() == "none"


def test_from_domain_is_compared_without_case_or_trailing_dot() -> None:
    assert judge(OPENDMARC_PASS, from_domain="ACME.Test.") == "pass"
    assert judge(POLICYD_SPF_PASS, from_domain="lin@Acme.Test") == "pass"


def test_mail_without_a_from_domain_gives_none() -> None:
    assert judge(OPENDMARC_FAIL, from_domain="") == "none"


# --- alignment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("acme.test", "acme.test", True),
        ("mail.acme.test", "acme.test", True),
        ("acme.test", "a.b.acme.test", True),
        ("ACME.test.", "acme.TEST", True),
        ("a.acme.test", "b.acme.test", False),
        ("acme.test.evil.example", "acme.test", False),
        ("evilacme.test", "acme.test", False),
        ("acme.test", "test", False),
        ("", "acme.test", False),
        ("", "", False),
        ("bücher.test", "xn--bcher-kva.test", True),
    ],
)
def test_alignment(first: str, second: str, expected: bool) -> None:
    assert aligned(first, second) is expected
    assert aligned(second, first) is expected


def test_an_invalid_international_name_is_compared_as_written() -> None:
    too_long = "ü" * 64 + ".test"  # a label over 63 octets cannot become an A-label
    assert domain_of(f"Lin@{too_long.upper()}") == too_long
    assert not aligned(too_long, "test")


# --- from a parsed mail -----------------------------------------------------------------


def test_fixture_mail_from_a_signed_domain_passes() -> None:
    mail = parse_mail(eml_bytes("parse_authentication_results"))
    assert isinstance(mail, Mail)
    assert mail.sender is not None
    from_domain = mail.sender.email.rpartition("@")[2]
    assert judge_sender(mail.auth_results, TRUSTED, from_domain) == "pass"
    # The sender's own submission server is not trusted, however it is spelled.
    assert judge_sender(mail.auth_results, "mx.acme.test", from_domain) == "none"
