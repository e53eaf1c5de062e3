"""Mail going out: who is told what (``notifications``), the queue (``outbox``) and its
delivery by the worker (``delivery``)."""
