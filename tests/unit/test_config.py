"""Configuration: TOML, environment overrides, defaults and one-line errors."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from qmail.config import Settings, load, secret_key
from qmail.errors import ConfigError

ROOT = Path(__file__).parents[2]


def test_defaults_match_the_contract():
    settings = load(env={})
    assert settings.mail.domain == "localhost"
    assert settings.mail.intake_addresses == ("tasks@localhost",)
    assert settings.mail.team_name == "qmail"
    assert (settings.smtp.host, settings.smtp.port) == ("127.0.0.1", 2525)
    assert settings.smtp.max_message_size == 26_214_400
    assert (settings.web.host, settings.web.port) == ("127.0.0.1", 8000)
    assert settings.web.base_url == "http://127.0.0.1:8000"
    assert settings.database.url == "sqlite:///var/qmail.db"
    assert settings.outbound.transport == "maildir"
    assert settings.outbound.maildir == "var/outbox"
    assert settings.security.magic_link_ttl == 86_400


def test_example_config_documents_every_setting():
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    for section in dataclasses.fields(Settings):
        if section.name == "root":
            continue
        keys = {f.name for f in dataclasses.fields(section.default_factory())}  # type: ignore[misc]
        assert set(example[section.name]) == keys, section.name


def test_example_config_loads_to_the_defaults():
    settings = load(ROOT / "config.example.toml", env={})
    assert dataclasses.replace(settings, root=".") == dataclasses.replace(load(env={}), root=".")


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "qmail.toml"
    path.write_text('[smtp]\nport = 2600\n[mail]\ndomain = "acme.test"\n')
    settings = load(
        path, env={"QMAIL_SMTP__PORT": "2526", "QMAIL_MAIL__TEAM_DOMAINS": "acme.test, Acme.EU"}
    )
    assert settings.smtp.port == 2526
    assert settings.mail.domain == "acme.test"
    assert settings.mail.team_domains == ("acme.test", "acme.eu")
    assert settings.mail.intake_addresses == ("tasks@acme.test",)


def test_config_path_may_come_from_the_environment(tmp_path):
    path = tmp_path / "qmail.toml"
    path.write_text("[web]\nport = 8111\n")
    assert load(env={"QMAIL_CONFIG": str(path)}).web.port == 8111


def test_qmail_toml_in_the_working_directory_is_read_when_the_caller_names_it(tmp_path):
    (tmp_path / "qmail.toml").write_text("[web]\nport = 8111\n")
    settings = load(env={}, workdir=tmp_path)
    assert settings.web.port == 8111
    assert settings.root == str(tmp_path)


def test_qmail_toml_in_the_working_directory_comes_last(tmp_path):
    (tmp_path / "qmail.toml").write_text("[web]\nport = 8111\n")
    named = tmp_path / "named.toml"
    named.write_text("[web]\nport = 8222\n")
    assert load(named, env={}, workdir=tmp_path).web.port == 8222
    assert load(env={"QMAIL_CONFIG": str(named)}, workdir=tmp_path).web.port == 8222


def test_without_qmail_toml_the_working_directory_gives_the_defaults(tmp_path):
    settings = load(env={}, workdir=tmp_path)
    assert settings.web.port == 8000
    assert settings.root == str(tmp_path)


def test_a_stray_qmail_toml_is_ignored_unless_asked_for(tmp_path, monkeypatch):
    (tmp_path / "qmail.toml").write_text("[web]\nport = 8111\n")
    monkeypatch.chdir(tmp_path)
    assert load(env={}).web.port == 8000


@pytest.mark.parametrize(
    ("host", "port", "base_url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("localhost", 9000, "http://localhost:9000"),
        ("192.0.2.7", 80, "http://192.0.2.7:80"),
        ("0.0.0.0", 8080, "http://127.0.0.1:8080"),
        ("::1", 8000, "http://[::1]:8000"),
        ("::", 8000, "http://[::1]:8000"),
        ("2001:db8::5", 443, "http://[2001:db8::5]:443"),
    ],
)
def test_base_url_defaults_to_where_the_web_app_listens(tmp_path, host, port, base_url):
    path = tmp_path / "qmail.toml"
    path.write_text(f'[web]\nhost = "{host}"\nport = {port}\n')
    assert load(path, env={}).web.base_url == base_url


def test_changing_the_port_alone_changes_the_links():
    assert load(env={"QMAIL_WEB__PORT": "8123"}).web.base_url == "http://127.0.0.1:8123"


def test_an_explicit_base_url_wins(tmp_path):
    path = tmp_path / "qmail.toml"
    path.write_text('[web]\nport = 8123\nbase_url = "https://tasks.example.com"\n')
    assert load(path, env={}).web.base_url == "https://tasks.example.com"
    env = {"QMAIL_WEB__BASE_URL": "http://proxy.test"}
    assert load(path, env=env).web.base_url == "http://proxy.test"


def test_relative_paths_are_relative_to_the_config_folder(tmp_path):
    path = tmp_path / "etc" / "qmail.toml"
    path.parent.mkdir()
    path.write_text("")
    assert load(path, env={}).path("var/outbox") == tmp_path / "etc" / "var" / "outbox"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[smtp]\nport = 'abc'\n", {}, "smtp.port must be a whole number"),
        ("", {"QMAIL_SMTP__PORT": "abc"}, "smtp.port must be a whole number"),
        ("[smtp]\nport = 70000\n", {}, "smtp.port must be between 1 and 65535"),
        ("[smtp]\nportt = 1\n", {}, "unknown config key: smtp.portt"),
        ("[nope]\n", {}, "unknown config section: [nope]"),
        ("[outbound]\ntransport = 'pigeon'\n", {}, "outbound.transport must be"),
        ("[outbound]\ntransport = 'smtp'\n", {}, "outbound.host is required"),
        ("[mail]\nteam_domains = 'x.org'\n", {}, "mail.team_domains must be a list"),
        ("[mail]\ndomain = 'a b'\n", {}, "mail.domain must be a domain name"),
        ("[mail]\nintake = ['tasks@elsewhere.org']\n", {}, "is not at localhost"),
        ("[starttls\n", {}, "is not valid TOML"),
        ("", {"QMAIL_OUTBOUND__STARTTLS": "maybe"}, "outbound.starttls must be true or false"),
        ("[web]\nbase_url = 'example.com'\n", {}, "web.base_url must start with http"),
        ("[mail]\ntrusted_authserv_id = 'a b'\n", {}, "mail.trusted_authserv_id must be one"),
        ("", {"QMAIL_MAIL__TRUSTED_AUTHSERV_ID": "mx;x"}, "mail.trusted_authserv_id must be"),
        ("[mail]\ntrusted_authserv_id = 1\n", {}, "mail.trusted_authserv_id must be a string"),
    ],
)
def test_a_bad_value_stops_start_up_with_one_clear_line(tmp_path, toml, env, message):
    path = tmp_path / "qmail.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as caught:
        load(path, env=env)
    assert "\n" not in str(caught.value)


def test_trusted_authserv_id_is_off_by_default_and_kept_as_written(tmp_path):
    assert load(env={}).mail.trusted_authserv_id == ""
    path = tmp_path / "qmail.toml"
    path.write_text('[mail]\ntrusted_authserv_id = "Mail.Example.com"\n')
    assert load(path, env={}).mail.trusted_authserv_id == "Mail.Example.com"


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "missing.toml", env={})


def test_secret_key_is_generated_once_and_kept(tmp_path):
    settings = dataclasses.replace(load(env={}), root=str(tmp_path))
    first = secret_key(settings)
    assert len(first) > 40
    assert secret_key(settings) == first
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_webhooks_allowed_hosts_take_host_names_only():
    settings = load(env={"QMAIL_WEBHOOKS__ALLOWED_HOSTS": "Hooks.Slack.com,.example.com"})
    assert settings.webhooks.allowed_hosts == ("hooks.slack.com", ".example.com")
    with pytest.raises(ConfigError, match=r"webhooks\.allowed_hosts: 'https://x\.test/' is not"):
        load(env={"QMAIL_WEBHOOKS__ALLOWED_HOSTS": "https://x.test/"})
