"""Mail coming in: the SMTP edge (``ingest``), the flow (``pipeline``), ``qmail import``
(``importer``) and what is kept of every mail before it is filed (``store``)."""
