"""What the notify stage and the mails answering a sender share: signing keys, mail
templates, and the statements that write outbox rows and their stencils."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Environment
from sqlalchemy import insert
from sqlmodel import Session, col

from qmail import models
from qmail.auth.signed import magic_link_url
from qmail.config import Settings
from qmail.context import Context
from qmail.core.addresses import reply_address
from qmail.core.compose import mail_environment
from qmail.core.mail import ReplyTarget
from qmail.core.stencil import Stencil
from qmail.db import Prepared
from qmail.outbound.outbox import OUTBOX_COLUMNS, STENCIL_COLUMNS, stencil_row
from qmail.people import Someone, Team
from qmail.resources import templates_dir

# Built once, executed with each row's values on the driver's cursor (``db.Prepared``).
WRITE_OUTBOX = Prepared(insert(models.Outbox), OUTBOX_COLUMNS)
_WRITE_STENCIL = Prepared(
    insert(models.OutboxStencil).returning(col(models.OutboxStencil.id)), STENCIL_COLUMNS
)


def write_stencil(session: Session, stencil: Stencil, files_from: int | None = None) -> int:
    """Keep ``stencil`` for the outbox rows that will name it; its id.  ``files_from``:
    a stencil of the same mail already kept, which keeps the files for both."""
    cursor = _WRITE_STENCIL.run(session, stencil_row(stencil, files_from))
    (stencil_id,) = cursor.fetchone()
    cursor.close()
    return int(stencil_id)


@dataclass(frozen=True)
class Outgoing:
    """What the notify stage needs around the store: signing keys and mail templates."""

    context: Context
    env: Environment

    @classmethod
    @functools.lru_cache(maxsize=16)  # the templates compile once per store
    def for_store(cls, context: Context) -> Outgoing:
        return cls(context, mail_environment(templates_dir() / "mail"))

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def team(self) -> Team:
        return Team.of(self.context.settings)

    def reply_address(self, branch_id: int, person_id: int, private: bool = False) -> str:
        token = self.context.tokens.make(ReplyTarget(branch_id, person_id, private))
        return reply_address(token, self.settings.mail.domain)

    def magic_link(self, person: Someone, task: models.Task, drawn: bytes | None = None) -> str:
        """The "Open in qmail" link: signs ``person`` in and lands on the task (its nonce
        ``drawn``: see ``LinkTokens.make_login``)."""
        assert person.id is not None
        token = self.context.links.make_login(person.id, f"/tasks/{task.number}", drawn)
        return magic_link_url(self.settings.web.base_url, token)

    def unsubscribe_url(self, task_id: int, person_id: int) -> str:
        token = self.context.links.make_unsubscribe(task_id, person_id)
        return f"{self.settings.web.base_url}/unsubscribe/{token}"
