"""The spool: raw mail from every SMTP session, committed together (group commit).

An SMTP server answers ``250`` once the mail is durably stored, and a durable commit costs
the same for one mail as for fifty.  So ``Spool.put`` does not commit on its own: it
queues the mail and waits, while a single writer takes everything queued since its last
commit and stores it in one transaction (``pipeline.keep``).  When the server is idle a
batch is one mail and nothing waits for anybody; under load, each commit carries all the
sessions that arrived while the previous one was being written.  Filing the mail comes
later, in the worker (``pipeline.process_pending``), told by ``on_kept``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from qmail.context import Context
from qmail.core.mail import Envelope
from qmail.inbound import pipeline, store

log = logging.getLogger(__name__)

MAX_BATCH = 200  # mails per commit: bounded, so that one commit stays short
_Item = tuple[store.Spooled, "asyncio.Future[store.Kept]"]


class Spool:
    """Keeps raw mail for the SMTP handler, many sessions per commit."""

    def __init__(self, context: Context, on_kept: Callable[[], None] = lambda: None) -> None:
        self.context = context
        self.on_kept = on_kept
        self._queue: asyncio.Queue[_Item | None] | None
        self._queue = None
        self._writer: asyncio.Task[None] | None = None

    async def put(self, raw: bytes, envelope: Envelope, now: datetime) -> store.Kept:
        """Store ``raw``; returns once it is committed (``TemporaryFailure`` if it cannot be)."""
        mail = store.Spooled.of(raw, envelope, now)
        future: asyncio.Future[store.Kept] = asyncio.get_running_loop().create_future()
        self._started().put_nowait((mail, future))
        return await future

    def _started(self) -> asyncio.Queue[_Item | None]:
        if self._queue is None or self._writer is None or self._writer.done():
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write(self._queue), name="qmail-spool")
        return self._queue

    async def _write(self, queue: asyncio.Queue[_Item | None]) -> None:
        while True:
            first = await queue.get()
            if first is None:  # closed
                return
            batch = [first]
            while len(batch) < MAX_BATCH and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    queue.put_nowait(None)  # after this batch
                    break
                batch.append(item)
            mails = [mail for mail, _ in batch]
            try:
                kept = await asyncio.to_thread(pipeline.keep, mails, self.context)
            except Exception as error:  # TemporaryFailure, or a bug: no 250 for any of them
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), one in zip(batch, kept, strict=True):
                if not future.done():  # the client may have gone meanwhile
                    future.set_result(one)
            if any(one.is_new for one in kept):
                self.on_kept()

    async def close(self) -> None:
        """Stop the writer once it has written what it was given (call it after the SMTP
        server stopped taking mail)."""
        if self._queue is not None and self._writer is not None and not self._writer.done():
            self._queue.put_nowait(None)
            await asyncio.gather(self._writer, return_exceptions=True)
