"""The SMTP edge: an aiosmtpd handler that only checks recipients and hands over mail.

``handle_RCPT`` refuses addresses that are not ours at once (550), so we never accept mail
we would have to bounce later.  ``handle_DATA`` runs ``pipeline.accept`` in a thread (the
database work is synchronous) and answers ``250`` only once the raw bytes are committed.
No parsing, SQL or sending here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from aiosmtpd.smtp import SMTP, Envelope, Session

from qmail.config import Settings
from qmail.core.mail import Envelope as MailEnvelope
from qmail.core.mail import Recipient
from qmail.errors import TemporaryFailure
from qmail.inbound.pipeline import Outcome

log = logging.getLogger(__name__)

REPLY_OK = "250 2.0.0 Message accepted"
REPLY_RCPT_OK = "250 2.1.5 Recipient OK"
REPLY_UNKNOWN_RECIPIENT = "550 5.1.1 No such mailbox here"
REPLY_BAD_TOKEN = "550 5.1.1 This reply address is not valid (forged or damaged)"
REPLY_TRY_LATER = "451 4.3.0 Temporary failure, please try again later"

Accept = Callable[[bytes, MailEnvelope, datetime], Outcome]
Resolve = Callable[[str], Recipient | None]


class IngestHandler:
    """aiosmtpd handler: ``resolve`` says what a recipient is, ``accept`` takes the mail."""

    def __init__(self, settings: Settings, resolve: Resolve, accept: Accept) -> None:
        self.domain = settings.mail.domain.lower()
        self.resolve = resolve
        self.accept = accept

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
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
            outcome = await asyncio.to_thread(self.accept, raw, mail_envelope, datetime.now(UTC))
        except TemporaryFailure:
            return REPLY_TRY_LATER
        if outcome.reject is not None:
            return outcome.reject.reply
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
