"""The SMTP edge: an aiosmtpd handler that only checks recipients and keeps mail.

``handle_RCPT`` refuses what we would otherwise have to bounce later: addresses that are
not ours or forged reply addresses (550), and recipients past ``smtp.max_recipients``
(452: the sender's server sends the rest in another transaction).  Too large a mail is
refused by aiosmtpd itself (552).  ``handle_DATA`` hands the raw bytes to the spool and
answers ``250`` once they are committed; the worker files them afterwards, so whatever it
decides about a mail (filed, held, quarantined) no longer bounces anything.  No parsing,
SQL or sending here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

from aiosmtpd.smtp import SMTP, Envelope, Session

from qmail.config import Settings
from qmail.core.mail import Envelope as MailEnvelope
from qmail.core.mail import Recipient
from qmail.errors import TemporaryFailure
from qmail.inbound.store import Kept

log = logging.getLogger(__name__)

REPLY_OK = "250 2.0.0 Message accepted"
REPLY_RCPT_OK = "250 2.1.5 Recipient OK"
REPLY_UNKNOWN_RECIPIENT = "550 5.1.1 No such mailbox here"
REPLY_BAD_TOKEN = "550 5.1.1 This reply address is not valid (forged or damaged)"
REPLY_TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"

Keep = Callable[[bytes, MailEnvelope, datetime], Awaitable[Kept]]
Resolve = Callable[[str], Recipient | None]


class IngestHandler:
    """aiosmtpd handler: ``resolve`` says what a recipient is, ``keep`` stores the mail."""

    def __init__(self, settings: Settings, resolve: Resolve, keep: Keep) -> None:
        self.domain = settings.mail.domain.lower()
        self.max_recipients = settings.smtp.max_recipients
        self.resolve = resolve
        self.keep = keep

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return REPLY_TOO_MANY_RECIPIENTS
        if address.rpartition("@")[2].lower() != self.domain:
            return REPLY_UNKNOWN_RECIPIENT
        if self.resolve(address) is None:
            is_token = address.lower().startswith("reply+")
            return REPLY_BAD_TOKEN if is_token else REPLY_UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return REPLY_RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail_from = (envelope.mail_from or "").strip().strip("<>")  # "<>": a bounce
        mail_envelope = MailEnvelope(mail_from, tuple(envelope.rcpt_tos))
        try:
            await self.keep(raw, mail_envelope, datetime.now(UTC))
        except TemporaryFailure:
            return REPLY_TRY_LATER
        return REPLY_OK

    async def handle_exception(self, error: Exception) -> str:
        log.exception("SMTP session failed", exc_info=error)
        return REPLY_TRY_LATER


def smtp_factory(settings: Settings, handler: IngestHandler) -> Callable[[], SMTP]:
    """Makes one aiosmtpd ``SMTP`` protocol per connection, with our limits set."""
    return partial(
        SMTP,
        handler,
        data_size_limit=settings.smtp.max_message_size,
        enable_SMTPUTF8=True,
        decode_data=False,
        hostname=settings.mail.domain,
        ident="qmail ESMTP",
    )


async def start_smtp_server(settings: Settings, handler: IngestHandler) -> asyncio.Server:
    """Listen on ``smtp.host:smtp.port`` in the running event loop."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        smtp_factory(settings, handler), settings.smtp.host, settings.smtp.port
    )
    log.info("SMTP ingest listening on %s:%s", settings.smtp.host, settings.smtp.port)
    return server
