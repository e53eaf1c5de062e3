"""The command line: in-process through ``cli.main(argv)``, plus real ``qmail serve`` runs."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from qmail import cli, models
from qmail.config import Settings
from tests.conftest import IN_CI, SECRET, eml_bytes, free_port, wait_until

ROOT = Path(__file__).parents[2]


def write_config(settings: Settings, path: Path, **sections: dict[str, object]) -> str:
    """A TOML file for the CLI naming the test's database and secret, plus ``sections``."""
    values: dict[str, dict[str, object]] = {
        "mail": {"domain": settings.mail.domain, "team_domains": list(settings.mail.team_domains)},
        "database": {"url": settings.database.url},
        "security": {"secret_key": SECRET},
    }
    for name, keys in sections.items():
        values.setdefault(name, {}).update(keys)
    lines = []
    for name, keys in values.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in keys.items())
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _toml(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def config(settings: Settings, tmp_path: Path) -> str:
    return write_config(settings, tmp_path / "qmail.toml")


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("serve", "smtp", "web", "worker", "init", "person", "token", "quarantine"):
        assert command in out


def test_init_creates_the_database_and_is_idempotent(config, capsys):
    assert cli.main(["init", "--config", config]) == 0
    assert cli.main(["init", "--config", config]) == 0
    assert capsys.readouterr().out == "database ready\ndatabase ready\n"


def test_person_add_registers_team_members_by_domain(config, capsys, store):
    assert (
        cli.main(["person", "add", "Alice@Example.com", "--name", "Alice", "--config", config]) == 0
    )
    assert cli.main(["person", "add", "carol@acme.test", "--config", config]) == 0
    assert capsys.readouterr().out == (
        "alice@example.com\tAlice\tteam member (by mail.team_domains)\n"
        "carol@acme.test\t\texternal (by mail.team_domains)\n"
    )
    with Session(store.engine) as session:
        alice = session.exec(
            select(models.Person).where(models.Person.email == "alice@example.com")
        ).one()
    assert (alice.name, alice.role) == ("Alice", None)


def test_token_create_prints_a_working_bearer_token(config, capsys, web_server):
    cli.main(["person", "add", "alice@example.com", "--config", config])
    capsys.readouterr()
    assert cli.main(["token", "create", "alice@example.com", "--config", config]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("qm_")
    with web_server.client(token) as client:
        assert client.get("/api/tasks").json() == {
            "items": [],
            "total": 0,
            "next_cursor": None,
            "total_exact": True,
        }


def test_token_for_an_unknown_person_is_a_one_line_error(config, capsys):
    assert cli.main(["token", "create", "nobody@example.com", "--config", config]) == 1
    err = capsys.readouterr().err
    assert err == (
        "qmail: error: no such person: nobody@example.com "
        "(add them with: qmail person add nobody@example.com)\n"
    )


def in_order(order: str, config: str, *command: str) -> list[str]:
    """``qmail --config PATH COMMAND`` or ``qmail COMMAND --config PATH``."""
    return ["--config", config, *command] if order == "before" else [*command, "--config", config]


@pytest.mark.parametrize("order", ["before", "after"])
def test_config_may_come_before_or_after_the_command(
    settings, tmp_path, monkeypatch, capsys, order
):
    monkeypatch.chdir(tmp_path)  # no qmail.toml here: only --config names the database
    config = write_config(settings, tmp_path / "etc.toml", web={"port": 8123})
    assert cli.main(in_order(order, config, "init")) == 0
    assert cli.main(in_order(order, config, "person", "add", "alice@example.com")) == 0
    capsys.readouterr()
    assert cli.main(in_order(order, config, "login-link", "alice@example.com")) == 0
    assert capsys.readouterr().out.startswith("http://127.0.0.1:8123/auth/magic/")


def test_qmail_toml_in_the_working_directory_is_the_default(
    settings, tmp_path, monkeypatch, capsys
):
    write_config(settings, tmp_path / "qmail.toml", web={"port": 8124})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QMAIL_CONFIG", raising=False)
    assert cli.main(["person", "add", "alice@example.com"]) == 0
    capsys.readouterr()
    assert cli.main(["login-link", "alice@example.com"]) == 0
    assert capsys.readouterr().out.startswith("http://127.0.0.1:8124/auth/magic/")


def test_bad_config_value_is_one_line_without_traceback(tmp_path):
    path = tmp_path / "qmail.toml"
    path.write_text("[smtp]\nport = 'twenty-five'\n")
    result = subprocess.run(
        [sys.executable, "-m", "qmail", "init", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == "qmail: error: smtp.port must be a whole number, not 'twenty-five'\n"


@pytest.fixture
def serve(settings: Settings, tmp_path: Path):
    """``qmail serve`` as a real subprocess on free ports; yields (smtp_port, base_url)."""
    smtp_port, web_port = free_port(), free_port()
    config = write_config(
        settings,
        tmp_path / "qmail.toml",
        smtp={"port": smtp_port},
        web={"port": web_port},
        mail={"domain": "localhost", "team_domains": ["localhost"]},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "qmail", "serve", "--config", config],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{web_port}"
    try:
        wait_until(lambda: httpx.get(f"{base_url}/api/health").status_code == 200, timeout=120)
        yield smtp_port, base_url, config
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output.decode(errors="replace")


def _token(config: str, email: str, capsys) -> str:
    cli.main(["person", "add", email, "--config", config])
    capsys.readouterr()
    cli.main(["token", "create", email, "--config", config])
    return capsys.readouterr().out.strip()


def listed(base_url: str, token: str, query: str = "") -> list[dict]:
    """The API's task list, once the worker has filed something (it files kept mail
    moments after the SMTP server answered 250)."""

    def items() -> list[dict]:
        answer = httpx.get(
            f"{base_url}/api/tasks{query}", headers={"Authorization": f"Bearer {token}"}
        )
        return list(answer.json()["items"])

    return wait_until(items, timeout=60)


def test_serve_takes_mail_by_smtp_and_shows_it_in_the_api(serve, capsys):
    smtp_port, base_url, config = serve
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        client.sendmail("carol@acme.test", ["tasks@localhost"], eml_bytes("intake_thunderbird_en"))
    token = _token(config, "you@localhost", capsys)
    assert [(t["number"], t["title"], t["tags"]) for t in listed(base_url, token)] == [
        (1, "Invoice 2024-17 is missing a line", ["billing", "urgent"])
    ]


@pytest.mark.skipif(  # outside CI only: under CI=true a missing swaks is a failure
    not IN_CI and shutil.which("swaks") is None,
    reason="swaks not installed (CI installs it and fails without it)",
)
def test_mail_sent_with_swaks_shows_up_in_the_api(serve, capsys):
    smtp_port, base_url, config = serve
    subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{smtp_port}",
            "--from",
            "carol@acme.test",
            "--to",
            "tasks@localhost",
            "--header",
            "Subject: [billing] Printer on fire #urgent",
            "--body",
            "It is really on fire.",
        ],
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "LC_ALL": "C"},
    )
    token = _token(config, "you@localhost", capsys)
    assert [t["title"] for t in listed(base_url, token, "?tag=urgent")] == ["Printer on fire"]


def test_smtp_web_and_worker_run_as_separate_processes_on_one_database(
    settings: Settings, tmp_path: Path, capsys
):
    """The scale-out shape: one process per role (two ingest servers), one database."""
    ports = {"smtp_a": free_port(), "smtp_b": free_port(), "web": free_port()}
    outbox = tmp_path / "outbox"
    config = write_config(
        settings,
        tmp_path / "qmail.toml",
        mail={"domain": "localhost", "team_domains": ["localhost"]},
        web={"port": ports["web"]},
        outbound={"maildir": str(outbox)},
    )
    assert cli.main(["init", "--config", config]) == 0
    cli.main(["person", "add", "you@localhost", "--config", config])
    roles = [
        ("smtp", {"QMAIL_SMTP__PORT": str(ports["smtp_a"])}),
        ("smtp", {"QMAIL_SMTP__PORT": str(ports["smtp_b"])}),
        ("web", {}),
        ("worker", {}),
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "qmail", role, "--config", config],
            cwd=tmp_path,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role, env in roles
    ]
    try:
        base_url = f"http://127.0.0.1:{ports['web']}"
        wait_until(lambda: httpx.get(f"{base_url}/api/health").status_code == 200, timeout=120)
        for port, name in (
            (ports["smtp_a"], "intake_thunderbird_en"),
            (ports["smtp_b"], "parse_koi8r"),
        ):
            wait_until(
                lambda port=port: socket.create_connection(("127.0.0.1", port)).close() or True,
                timeout=120,
            )
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("someone@acme.test", ["tasks@localhost"], eml_bytes(name))
        token = _token(config, "you@localhost", capsys)
        headers = {"Authorization": f"Bearer {token}"}

        def listed() -> int:  # the SMTP servers kept the mail; the worker files it
            return int(httpx.get(f"{base_url}/api/tasks", headers=headers).json()["total"])

        wait_until(lambda: listed() == 2, timeout=60)
        # The worker delivers the team's notifications to the Maildir.
        wait_until(lambda: len(list((outbox / "new").glob("*"))) >= 2, timeout=120)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(timeout=20) == 0


def test_serve_logs_each_mail_once_and_a_normal_quit_not_at_all(settings, tmp_path):
    """aiosmtpd's QUIT used to log "Connection lost during _handle_client()"."""
    port = free_port()
    config = write_config(
        settings,
        tmp_path / "qmail.toml",
        smtp={"port": port},
        web={"port": free_port()},
        mail={"domain": "localhost", "team_domains": ["localhost"]},
    )
    log = tmp_path / "smtp.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "qmail", "serve", "--config", config],
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "SMTP ingest listening" in log.read_text(), timeout=30)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "carol@acme.test", ["tasks@localhost"], eml_bytes("intake_thunderbird_en")
            )
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.docmd("XYZZY")[0] == 500
        # The second session starts after the first one's QUIT was handled and logged.
        wait_until(lambda: "unrecognised: XYZZY" in log.read_text(), timeout=30)
        wait_until(lambda: "-> task" in log.read_text(), timeout=30)  # filed by the worker
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    output = log.read_text()
    assert "Connection lost" not in output
    mail_lines = [line for line in output.splitlines() if "-> task" in line]
    assert len(mail_lines) == 1
    assert "<5c1f0e2a-77b1-4f0e-9d0a-4a1b2c3d4e5f@acme.test> done -> task 1" in mail_lines[0]
    assert "mail.log" in output  # aiosmtpd's warnings (here: the unknown command) still show


def run_into_a_closed_pipe(*args: str) -> tuple[int, str]:
    """``python -m qmail ARGS`` writing to a pipe whose reader is gone; (status, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # as after `| head -n1` has read its line: the next write fails
    try:
        result = subprocess.run(
            [sys.executable, "-m", "qmail", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
            # stdout block-buffered, as in a shell (pytest's environment may unbuffer it)
            env={name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"},
        )
    finally:
        os.close(write_end)
    return result.returncode, result.stderr


def test_a_listing_into_a_closed_pipe_ends_without_a_traceback(config):
    """``qmail outbox list | head -n1``."""
    assert cli.main(["init", "--config", config]) == 0
    assert run_into_a_closed_pipe("outbox", "list", "--config", config) == (1, "")


def test_help_into_a_closed_pipe_ends_without_a_traceback():
    assert run_into_a_closed_pipe("--help") == (1, "")


def all_help_texts() -> list[str]:
    """Every text of ``qmail --help`` and of each command's help, unwrapped."""
    texts: list[str] = []
    parsers = [cli.build_parser()]
    while parsers:
        parser = parsers.pop()
        texts += [parser.description or "", parser.epilog or ""]
        for action in parser._actions:
            texts.append(action.help or "")
            if isinstance(action, argparse._SubParsersAction):
                texts += [choice.help or "" for choice in action._choices_actions]
                parsers.extend(action.choices.values())
    return [text for text in texts if text]


def test_help_names_no_file_that_is_not_there():
    """Only qmail.toml, and only as "if present": no CONTRACT.md, no config.example.toml."""
    texts = all_help_texts()
    assert "only the background worker" in texts
    named = {name for text in texts for name in re.findall(r"[\w./-]+\.(?:md|toml|py)\b", text)}
    assert named <= {"qmail.toml", "./qmail.toml"}
    for text in texts:
        if "qmail.toml" in text:
            assert "if present" in text or "when there is one" in text, text


def listeners(port: int) -> int:
    """How many sockets listen on this loopback TCP port (``/proc/net/tcp``: state 0A)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = f"0100007F:{port:04X}"
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


def started_pids(output: Path) -> set[str]:
    """The processes uvicorn says it started a web server in."""
    return set(re.findall(r"Started server process \[(\d+)\]", output.read_text()))


def test_serve_runs_the_web_app_in_several_processes_on_one_port(settings, tmp_path):
    smtp_port, web_port = free_port(), free_port()
    config = write_config(
        settings,
        tmp_path / "qmail.toml",
        smtp={"port": smtp_port},
        web={"port": web_port},
        mail={"domain": "localhost", "team_domains": ["localhost"]},
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "qmail", "serve", "--processes", "3", "--config", config],
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    children: list[str] = []
    try:
        # each process listens on the port (SO_REUSEPORT)
        wait_until(lambda: listeners(web_port) == 3 and len(started_pids(log)) == 3, timeout=120)
        children = sorted(started_pids(log) - {str(process.pid)})
        assert len(children) == 2
        for _ in range(30):  # each a new connection, which the kernel gives to one of them
            assert httpx.get(f"http://127.0.0.1:{web_port}/api/health").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "helpers stopped"
    assert listeners(web_port) == 0
    assert "(3 processes)" in log.read_text()


def test_processes_must_be_a_sensible_number(settings, tmp_path, capsys):
    config = write_config(settings, tmp_path / "qmail.toml")
    assert cli.main(["web", "--processes", "0", "--config", config]) == 1
    assert capsys.readouterr().err == "qmail: error: --processes must be between 1 and 64, not 0\n"
