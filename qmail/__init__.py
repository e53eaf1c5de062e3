"""qmail: an email-native task and discussion tracker.

A mail travels ingest -> parse -> trim -> route -> store -> notify: the SMTP edge
(``ingest``) stores the raw bytes, the pure core (``core.parse``, ``core.trim``,
``core.route``) decides what it is and where it goes, ``store`` writes it, and ``notify``
tells the other people of the branch.  ``pipeline.accept`` runs the stages in order.
"""

__version__ = "0.1.0"
