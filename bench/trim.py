"""Trimming quality and speed: ``trim_reply`` against other projects' published replies.

The development set is the reply fixtures that two reply parsers publish with their tests,
read at run time from a folder given on the command line (their files are never copied
into this repository):

- ``crisp``: crisp-oss/email-reply-parser, ``test/fixtures/*.txt``, tests in ``test/test.js``;
- ``willdurand``: willdurand/EmailReplyParser, ``tests/Fixtures/*.txt``, tests in
  ``tests/EmailReplyParser/Tests/**/*.php``.

``--devset`` names a folder holding checkouts of them (any depth up to two; e.g.
``git --git-dir=<mirror> --work-tree=/tmp/devset/crisp checkout HEAD -- .``) or their
bare git repositories (``/work/.mirror``, read with ``git show``).

**What each fixture should give.**  Their tests assert fragments, not always a whole text;
``EXPECTED`` below writes down, per fixture, which lines of the fixture are what the person
wrote, decided from the intent of the test that reads it (one comment per decision where
it is not plain).  Where the two projects' notion of "visible text" differs from qmail's,
the expectation is qmail's, and says so:

1. an inline (interleaved) answer keeps the quoted lines it answers, as qmail shows them
   (``reply_inline_thunderbird_en``); the attribution above them and the quote below the
   last answer go;
2. the closing and the name the person typed ("Best regards,\\nJohn") are text; a
   signature block (after ``--``, a delimiter line, or contact lines under the name) is not;
3. a mail with nothing new in it (only history) is kept whole, as ``trim_reply`` does.

Where a project's test states the exact text, that text is the expectation, even where the
two projects disagree (``email_1`` and ``email_3``: "-Abhishek Kona" is visible for crisp,
a signature for willdurand; issue 9 calls "-Name" a signature, so crisp's two cases fail).

**The comparison** (``normalize``): both texts get ``\\n`` line ends, trailing white space
dropped on every line, blank lines dropped at both ends; then they must be equal (exact
match).  Token F1 compares the multisets of white-space separated tokens of the same
normalized texts.

**Timing**: each case is trimmed ``--loops`` times (best of 5 rounds); the median over the
cases is "µs per typical reply", the maximum is the slowest case.

    .venv/bin/python bench/trim.py --devset /tmp/devset
    .venv/bin/python bench/trim.py --devset /work/.mirror --show-failures
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from qmail.core.trim import trim_reply

# Per set: fixture name -> the lines of the fixture (1-based, inclusive ranges) that are the
# person's new text; "all" for the whole fixture.
FIRST_PARAGRAPH = "1-5"  # the five-line paragraph their tests call COMMON_FIRST_FRAGMENT
# fmt: off
CRISP: dict[str, str] = dict.fromkeys((
    "email_7", "email_8", "email_9", "email_10", "email_11", "email_12", "email_13",
    "email_14", "email_15", "email_16", "email_17", "email_18", "email_22", "email_23",
    "email_24", "email_25", "email_26", "email_portuguese", "email_german",
    "email_german_2", "email_german_3", "email_german_outlook", "email_norwegian_gmail",
    "email_finnish", "email_italian", "email_russian", "email_one_is_not_on",
    "email_outlook_split_line_from", "email_gmail_split_line_from", "email_ios_outlook_fr",
    "email_ios_outlook", "email_msn", "email_fr_multiline", "email_french_2",
    "email_en_multiline_2", "email_original_message", "email_original_message_2",
    "email_danish_dash_separator", "email_french_dash_separator",
    "email_tricky_5_mixed_languages", "email_tricky_10_special_chars_in_name",
    "email_tricky_12_no_space_after_header", "email_tricky_14_long_quote_header",
    "email_tricky_15_original_message_variations",
), FIRST_PARAGRAPH) | {
    "email_1": "1-7",  # test_reads_simple_body: the text up to and with "-Abhishek Kona"
    "email_2": "1,3-34",  # bottom post: "Hi," then the quote it answers, then the answer
    "email_3": "1-5",  # test_reads_top_post: up to and with "-Abhishek Kona"
    "email_4": "1",
    "email_5": "all",  # one fragment
    "email_6": "1-3",  # "Sent a magnificent torch of pixels" is fragment 0 in their parser
    "correct_sig": "1",
    "sig_no_empty_line": "1",
    "email_sent_from": "1",  # test_sent_from states the text
    "email_emoji": "all",  # test_email_emoji states the text: a lone em dash is no delimiter
    "email_not_a_signature": "all",
    "email_not_a_signature_2": "all",
    "email_reply_header": "1-11",  # the header wrapped over three lines starts fragment 1
    "email_zoho": "1-2",
    "email_with_regards": "1-5",  # text_email_regards states the text: no closing, no name
    "email_tricky_1_on_false_positive": "all",  # one fragment, not quoted
    "email_tricky_2_url_with_wrote": "all",  # the closing and the name are text (rule 2)
    "email_tricky_3_code_block": "all",
    "email_tricky_4_from_in_body": "all",
    "email_tricky_6_regards_in_sentence": "all",
    "email_tricky_7_multiple_dashes": "all",  # dashes and equal signs are content
    "email_tricky_8_sent_from_in_content": "all",
    "email_tricky_9_nested_quotes": "1",
    "email_tricky_11_double_signature": "1-4",  # "Best regards,\nJohn"; the rest is signature
    "email_tricky_13_timestamp_variations": "all",  # one fragment
    "email_tricky_16_unicode_signatures": "1-4",  # the block under the line of dashes goes
    "email_tricky_17_forward_header": "1",
    "email_tricky_18_inline_reply": "2-12",  # rule 1: answers and what they answer
    "email_tricky_19_quote_without_header": "all",  # rule 1
    "email_tricky_20_html_entities": "1-3",
}
# fmt: on

# fmt: off
WILLDURAND: dict[str, str] = dict.fromkeys((
    "email_7", "email_8", "email_9", "email_10", "email_11", "email_12", "email_13",
    "email_14", "email_15", "email_16", "email_17", "email_18", "email_22", "email_23",
    "email_norwegian_gmail", "email_one_is_not_on",
), FIRST_PARAGRAPH) | {
    "email_1": "1-5",  # testReadsSimpleBody: "-Abhishek Kona" is a signature fragment
    "email_2": "1,3-34",  # testParseReply; rule 1 keeps the quote "You can list..." answers
    "email_3": "1-3",  # testReadsTopPost: "-A..." is a signature fragment
    "email_4": "1",
    "email_5": "all",
    "email_6": "1-3",
    "email_23_1": "1-7",  # testEmailUkrainian states it: "Something wrote:" is text
    "email_2_1": "1",
    "email_zimbra_free_fr": "1-10",  # up to "Michael Scott"
    "email_zimbra_free_en": "1-9",
    "correct_sig": "1",
    "sig_no_empty_line": "1",
    "email_custom_quote_header": "1",  # their test adds the header; the text is the same
    "email_customer_quote_header_2": "1",
    "email_customer_quote_header_3": "1-3",
    "email_19": "1-3",  # "Sent from a ..." is no device footer; fragment 1 starts at "On Dec"
    "email_20": "1",
    "email_21": "all",
    "email_ls-l": "1-28",  # "-rw-------" lines are no "-Name" signature; "-- \nglen" is
    "email_iphone": "1",
    "email_blackberry": "1",
    "email_w10_mail": "1-2",
    "email_multi_word_sent_from_my_mobile_device": "1",
    "email_sent_from_my_not_signature": "all",
    "email_bullets": "1-9",
    "email_unquoted_reply": "1",
    "email_thread": "1",  # testEmailThreadPreservesNewLines: the rest is fragment 1
}
# fmt: on


@dataclass(frozen=True)
class Case:
    """One reply: its name, its text and the text ``trim_reply`` should keep."""

    name: str
    text: str
    expected: str


class Tree:
    """Files of one project, from a checkout or from a bare git repository."""

    def __init__(self, root: Path, bare: bool) -> None:
        self.root, self.bare = root, bare

    def read(self, path: str) -> str:
        if self.bare:
            command = ["git", "--git-dir", str(self.root), "show", f"HEAD:{path}"]
            return subprocess.run(command, check=True, capture_output=True).stdout.decode()
        return (self.root / path).read_text(encoding="utf-8")

    def exists(self, path: str) -> bool:
        if self.bare:
            command = ["git", "--git-dir", str(self.root), "cat-file", "-e", f"HEAD:{path}"]
            return subprocess.run(command, capture_output=True).returncode == 0
        return (self.root / path).exists()


def find_trees(devset: Path) -> Iterator[Tree]:
    """Checkouts and bare repositories at ``devset`` and up to two folders below it."""
    folders = [devset, *devset.glob("*"), *devset.glob("*/*")]
    for folder in folders:
        if not folder.is_dir():
            continue
        bare = (folder / "HEAD").is_file() and (folder / "objects").is_dir()
        yield Tree(folder, bare)


def select_lines(text: str, spec: str) -> str:
    """The lines of ``text`` that ``spec`` ("all", "1-5", "1,3-34") names, 1-based.

    >>> select_lines("a\\nb\\nc\\nd", "1,3-4")
    'a\\nc\\nd'
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if spec == "all":
        return "\n".join(lines)
    chosen: list[str] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        chosen.extend(lines[int(first) - 1 : int(last or first)])
    return "\n".join(chosen)


def php_provider(source: str, function: str) -> list[str]:
    """The strings a PHPUnit data provider returns (``array('...')`` or ``array("...")``)."""
    body = source.split(f"function {function}()", 1)[1].split("\n    }", 1)[0]
    found = re.findall(r"array\((?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")\)", body)
    return [(single or double).replace("\\'", "'") for single, double in found]


def crisp_cases(tree: Tree) -> list[Case]:
    cases = []
    for name, spec in CRISP.items():
        text = tree.read(f"test/fixtures/{name}.txt")
        cases.append(Case(name, text, select_lines(text, spec)))
    return cases


def willdurand_cases(tree: Tree) -> list[Case]:
    cases = []
    for name, spec in WILLDURAND.items():
        text = tree.read(f"tests/Fixtures/{name}.txt")
        cases.append(Case(name, text, select_lines(text, spec)))
    # testReadsEmailWithCorrectSignature*WithSpace: the same fixtures with "-- " for "--".
    for name in ("correct_sig", "sig_no_empty_line"):
        text = tree.read(f"tests/Fixtures/{name}.txt").replace("--", "-- ")
        cases.append(Case(f"{name}[space]", text, select_lines(text, "1")))
    tests = tree.read("tests/EmailReplyParser/Tests/Parser/EmailParserTest.php")
    template = tree.read("tests/Fixtures/email_with_date_headers.txt")
    for n, header in enumerate(php_provider(tests, "getDateFormats")):
        text = template.replace("[DATE]", header)
        cases.append(Case(f"email_with_date_headers[{n}]", text, select_lines(text, "1")))
    template = tree.read("tests/Fixtures/email_with_from_headers.txt")
    for n, header in enumerate(php_provider(tests, "getFromHeaders")):
        text = template.replace("[FROM]", header)
        # Only history, no new text: kept whole (rule 3).
        cases.append(Case(f"email_with_from_headers[{n}]", text, text))
    return cases


SETS: dict[str, tuple[str, Callable[[Tree], list[Case]]]] = {
    "crisp": ("test/fixtures/email_zoho.txt", crisp_cases),
    "willdurand": ("tests/Fixtures/email_zimbra_free_en.txt", willdurand_cases),
}


def normalize(text: str) -> str:
    """LF line ends, no trailing white space, no blank lines at either end.

    >>> normalize("\\r\\n  \\nHi,  \\r\\n\\n there\\n\\n")
    'Hi,\\n\\n there'
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def token_f1(expected: str, actual: str) -> float:
    """F1 of the white-space separated tokens of two texts (1.0 when both are empty)."""
    want, got = Counter(expected.split()), Counter(actual.split())
    if not want and not got:
        return 1.0
    common = sum((want & got).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def time_case(text: str, loops: int) -> float:
    """Microseconds per ``trim_reply`` call, best of five rounds of ``loops`` calls."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            trim_reply(text)
        best = min(best, (time.perf_counter() - start) / loops)
    return best * 1e6


def report(name: str, cases: list[Case], show_failures: bool, loops: int) -> list[float]:
    exact, f1s, times = 0, [], []
    for case in cases:
        actual = normalize(trim_reply(case.text).text)
        expected = normalize(case.expected)
        f1s.append(token_f1(expected, actual))
        times.append(time_case(case.text, loops))
        if actual == expected:
            exact += 1
        elif show_failures:
            print(f"--- {name}/{case.name}\n[expected]\n{expected}\n[actual]\n{actual}\n")
    print(
        f"{name:<11} cases {len(cases):>3}  exact {100 * exact / len(cases):5.1f}% "
        f"({exact}/{len(cases)})  token F1 {100 * statistics.fmean(f1s):5.1f}%"
    )
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devset", type=Path, required=True, help="folder of the checkouts")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--set", choices=sorted(SETS), help="run one set only")
    parser.add_argument("--loops", type=int, default=20, help="calls per timing round")
    args = parser.parse_args(argv)
    trees = list(find_trees(args.devset))
    times: list[float] = []
    for name, (marker, build) in SETS.items():
        if args.set and name != args.set:
            continue
        tree = next((tree for tree in trees if tree.exists(marker)), None)
        if tree is None:
            print(f"{name:<11} not found under {args.devset}")
            continue
        times += report(name, build(tree), args.show_failures, args.loops)
    if times:
        print(
            f"trim_reply: median {statistics.median(times):.0f} µs per reply, "
            f"slowest {max(times):.0f} µs ({len(times)} replies)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
