"""Task threads: tasks and their branches (``tasks``, ``branches``), the commands that
change them (``commands``) and posting a message, from mail, a page or the API
(``posting``).  Functions take the ``Session`` first and never commit."""
