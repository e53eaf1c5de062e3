"""Command lines at the top of a team member's reply."""

from __future__ import annotations

import pytest

from qmail.core.commands import parse_commands
from qmail.core.mail import Command


def test_each_command_is_recognised_and_removed_from_the_text():
    text = "#tag billing\n#untag urgent\n#close\n#reopen\n#assign Bob@Example.com\n\nAll done."
    assert parse_commands(text) == (
        "All done.",
        (
            Command("tag", "billing"),
            Command("untag", "urgent"),
            Command("close"),
            Command("reopen"),
            Command("assign", "bob@example.com"),
        ),
    )


def test_tags_are_case_insensitive_and_unicode_aware():
    assert parse_commands("#TAG Срочно, Billing #vip\nok") == (
        "ok",
        (Command("tag", "срочно"), Command("tag", "billing"), Command("tag", "vip")),
    )


def test_commands_only_count_before_the_text():
    text = "Thanks!\n#close"
    assert parse_commands(text) == (text, ())


def test_leading_blank_lines_are_skipped():
    assert parse_commands("\n\n#close\nbye") == ("bye", (Command("close"),))


@pytest.mark.parametrize(
    "text",
    [
        "#closed the door",  # not a command word
        "#close the ticket please",  # arguments where none are taken
        "#assign bob",  # not an address
        "#untag",  # no name
        "# tag billing",
        "#hashtag",
    ],
)
def test_lines_that_only_look_like_commands_stay_text(text):
    assert parse_commands(text) == (text, ())


def test_a_mail_of_only_commands_leaves_no_text():
    assert parse_commands("#close\n") == ("", (Command("close"),))
