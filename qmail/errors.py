"""The qmail exception tree.

Expected outcomes of the mail flow are values (``Reject``, ``Ignore``); these exceptions
are for the edges: the CLI prints ``QmailError`` as one line, the web app maps the
subclasses to HTTP statuses, the SMTP handler maps ``TemporaryFailure`` to 451.
"""


class QmailError(Exception):
    """An error a user can act on; its message is one line, shown without a traceback."""


class ConfigError(QmailError):
    """A bad configuration value: start-up stops with this message."""


class NotFound(QmailError):
    """The thing does not exist, or the caller may not know that it does (HTTP 404)."""


class Forbidden(QmailError):
    """The caller is known but may not do this (HTTP 403)."""


class BadRequest(QmailError):
    """The request is malformed (HTTP 400)."""


class TemporaryFailure(QmailError):
    """An outage (e.g. the database is unreachable): the sender should retry (SMTP 451)."""
