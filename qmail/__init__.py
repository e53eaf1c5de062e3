"""qmail: an email-native task and discussion tracker.

The package is laid out as a mail travels, one room per concern:

- ``inbound``: the SMTP edge (``ingest``) keeps the raw bytes (``store``), and
  ``pipeline.accept`` runs the stages: parse -> scrub -> route -> trim -> file -> notify;
- ``core``: the pure stages (parse, secrets, authres, route, trim, commands, compose);
- ``threads``: tasks, branches, commands and ``posting``, the one way a message is written;
- ``people`` and ``access``: who is on the team, who may see what;
- ``outbound``: who is told (``notifications``), the queue (``outbox``), ``delivery``;
- ``auth``: signed addresses and links, API tokens, browser sessions;
- ``queries``: the permission-checked reads behind ``web``, the HTTP edge;
- ``context`` holds the services a stage needs; ``roles`` runs smtp, web and worker.
"""

__version__ = "0.1.0"
