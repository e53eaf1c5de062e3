"""Settings: frozen dataclasses with defaults, loaded once from TOML and the environment.

The only module that reads config files or environment variables.  ``load()`` reads the
TOML file (``--config``, else ``QMAIL_CONFIG``, else ``qmail.toml`` in the working directory
when the caller names one), applies ``QMAIL_<SECTION>__<KEY>`` overrides, fills in what
derives from other keys (``web.base_url``), resolves relative paths against the config
file's folder and validates every value; a bad value raises ``ConfigError`` with one line
saying which key and why.  The result is passed down explicitly, never kept in a global.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qmail.errors import ConfigError


@dataclass(frozen=True)
class MailSettings:
    domain: str = "localhost"
    intake: tuple[str, ...] = ()  # empty: ("tasks@<domain>",)
    team_domains: tuple[str, ...] = ()
    team_name: str = "qmail"
    triage: tuple[str, ...] = ()
    acknowledge: bool = True
    trusted_authserv_id: str = ""  # empty: Authentication-Results are not used

    @property
    def intake_addresses(self) -> tuple[str, ...]:
        return self.intake or (f"tasks@{self.domain}",)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_size: int = 26_214_400
    max_recipients: int = 100


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = ""  # empty: where the app listens, http://<host>:<port> (set by load())
    processes: int = 1  # processes serving the web app on the same port (roles.serve)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/qmail.db"


@dataclass(frozen=True)
class OutboundSettings:
    transport: str = "maildir"
    maildir: str = "var/outbox"
    host: str = ""
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False


@dataclass(frozen=True)
class SecuritySettings:
    secret_key: str = ""  # empty: generated into var/secret_key on first start
    magic_link_ttl: int = 86_400


@dataclass(frozen=True)
class IntakeSettings:
    """The public contact form (``/intake``) and the widget other sites embed."""

    enabled: bool = False
    allowed_origins: tuple[str, ...] = ()  # sites whose pages may post the widget's form
    per_address_per_hour: int = 3
    per_ip_per_hour: int = 10
    per_hour: int = 200  # from everyone together: a cap on the confirmation mails we send
    confirm_ttl: int = 86_400  # seconds a confirmation link stays valid


@dataclass(frozen=True)
class WebhookSettings:
    allowed_hosts: tuple[str, ...] = ()  # empty: any host; ".example.com": it and subdomains


@dataclass(frozen=True)
class Settings:
    mail: MailSettings = field(default_factory=MailSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    web: WebSettings = field(default_factory=WebSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    root: str = "."  # folder that relative paths are relative to

    def path(self, relative: str) -> Path:
        """A path from the config, resolved against the config file's folder."""
        return Path(self.root, relative)

    def replace(self, **sections: Any) -> Settings:
        """A copy with some sections' keys changed: ``replace(smtp={"port": 2526})``."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)


_SECTION_TYPES = {
    "mail": MailSettings,
    "smtp": SmtpSettings,
    "web": WebSettings,
    "database": DatabaseSettings,
    "outbound": OutboundSettings,
    "security": SecuritySettings,
    "intake": IntakeSettings,
    "webhooks": WebhookSettings,
}


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
) -> Settings:
    """Read settings from a TOML file and ``QMAIL_*`` overrides.

    The file is ``path``, else ``$QMAIL_CONFIG``, else ``<workdir>/qmail.toml`` if it
    exists, else none (the defaults).  Only the command line passes ``workdir`` (its working
    directory): other callers, tests among them, never pick up a stray ``qmail.toml``.
    """
    env = os.environ if env is None else env
    path = path or env.get("QMAIL_CONFIG") or _found_in(workdir)
    raw: dict[str, dict[str, Any]] = {}
    root = workdir or Path.cwd()
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
        root = path.resolve().parent
    _apply_env(raw, env)
    sections = {name: _build_section(name, raw.pop(name, {})) for name in _SECTION_TYPES}
    if raw:
        raise ConfigError(f"unknown config section: [{sorted(raw)[0]}]")
    web = sections["web"]
    if not web.base_url:
        sections["web"] = dataclasses.replace(web, base_url=listen_url(web.host, web.port))
    settings = Settings(**sections, root=str(root))
    _validate(settings)
    return settings


def _found_in(workdir: Path | None) -> Path | None:
    if workdir is None or not (workdir / "qmail.toml").is_file():
        return None
    return workdir / "qmail.toml"


def listen_url(host: str, port: int) -> str:
    """The URL of a web app listening on ``host``:``port``, as a browser can reach it.

    A wildcard address listens on loopback too, and a link to 0.0.0.0 leads nowhere, so it
    becomes loopback.  IPv6 addresses go in brackets (RFC 3986).
    """
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _apply_env(raw: dict[str, dict[str, Any]], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith("QMAIL_") or "__" not in name:
            continue
        section, _, key = name[len("QMAIL_") :].partition("__")
        raw.setdefault(section.lower(), {})[key.lower()] = _EnvValue(value)


class _EnvValue(str):
    """A value from the environment: a string to be converted to the field's type."""


def _build_section(name: str, values: Any) -> Any:
    cls = _SECTION_TYPES[name]
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    converted = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key: {name}.{key}")
        converted[key] = _convert(f"{name}.{key}", value, known[key].default)
    return cls(**converted)


def _convert(key: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type of the field's default; env strings are parsed."""
    from_env = isinstance(value, _EnvValue)
    if isinstance(default, bool):
        if from_env and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, not {value!r}")
        return value
    if isinstance(default, int):
        if from_env:
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"{key} must be a whole number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be a whole number, not {value!r}")
        return value
    if isinstance(default, tuple):
        if from_env:
            value = _env_list(key, value)
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(f"{key} must be a list of strings, not {value!r}")
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key} must be a list of strings, not {value!r}")
        return tuple(item.strip().lower() for item in value)
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, not {value!r}")
    return str(value)


def _env_list(key: str, value: str) -> list[str]:
    """A list from the environment: a JSON array or comma-separated words."""
    if value.strip().startswith("["):
        try:
            return list(json.loads(value))
        except ValueError:
            raise ConfigError(f"{key} is not a valid JSON list: {value!r}") from None
    return [item for item in value.split(",") if item.strip()]


def _validate(settings: Settings) -> None:
    mail = settings.mail
    if not mail.domain or "@" in mail.domain or " " in mail.domain:
        raise ConfigError(f"mail.domain must be a domain name, not {mail.domain!r}")
    for address in (*mail.intake_addresses, *mail.triage):
        if address.count("@") != 1 or not address.split("@")[0]:
            raise ConfigError(f"not an email address in mail settings: {address!r}")
    for address in mail.intake_addresses:
        if not address.endswith("@" + mail.domain.lower()):
            raise ConfigError(f"mail.intake address {address!r} is not at {mail.domain}")
    # One RFC 8601 authserv-id as the MTA writes it before the first ";".
    if any(char.isspace() or char in ';()"=' for char in mail.trusted_authserv_id):
        raise ConfigError(
            'mail.trusted_authserv_id must be one name without spaces or ;()"=,'
            f" not {mail.trusted_authserv_id!r}"
        )
    for name, port in (("smtp.port", settings.smtp.port), ("web.port", settings.web.port)):
        if not 0 < port < 65536:
            raise ConfigError(f"{name} must be between 1 and 65535, not {port}")
    if not 1 <= settings.web.processes <= 64:
        raise ConfigError(f"web.processes must be between 1 and 64, not {settings.web.processes}")
    if settings.smtp.max_message_size <= 0:
        raise ConfigError("smtp.max_message_size must be positive")
    if settings.smtp.max_recipients <= 0:
        raise ConfigError("smtp.max_recipients must be positive")
    if settings.outbound.transport not in ("maildir", "smtp"):
        raise ConfigError(
            f"outbound.transport must be 'maildir' or 'smtp', not {settings.outbound.transport!r}"
        )
    if settings.outbound.transport == "smtp" and not settings.outbound.host:
        raise ConfigError("outbound.host is required when outbound.transport is 'smtp'")
    if settings.security.magic_link_ttl <= 0:
        raise ConfigError("security.magic_link_ttl must be positive")
    _validate_intake(settings.intake)
    if not settings.web.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"web.base_url must start with http:// or https://, not {settings.web.base_url!r}"
        )
    for host in settings.webhooks.allowed_hosts:
        if not host.strip(".") or any(char.isspace() or char in "/:@" for char in host):
            raise ConfigError(f"webhooks.allowed_hosts: {host!r} is not a host name")
    if "://" not in settings.database.url:
        raise ConfigError(f"database.url is not a database URL: {settings.database.url!r}")


def _validate_intake(intake: IntakeSettings) -> None:
    for name in ("per_address_per_hour", "per_ip_per_hour", "per_hour", "confirm_ttl"):
        if getattr(intake, name) <= 0:
            raise ConfigError(f"intake.{name} must be positive")
    for origin in intake.allowed_origins:
        scheme, _, host = origin.partition("://")
        if scheme not in ("http", "https") or not host or "/" in host or " " in host:
            raise ConfigError(
                "intake.allowed_origins takes origins such as 'https://www.example.com'"
                f" (scheme and host, no path), not {origin!r}"
            )


def secret_key(settings: Settings) -> str:
    """The signing key: from settings, else read from (or generated into) var/secret_key."""
    if settings.security.secret_key:
        return settings.security.secret_key
    path = settings.path("var/secret_key")
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return key
