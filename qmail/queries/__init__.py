"""Permission-checked reads for the pages and the API: tasks, events, contacts, outbox.

Every query carries the conditions of ``qmail.access``: what a reader may not see is never
loaded, so it cannot leak through a forgotten filter.  Nothing here writes."""
