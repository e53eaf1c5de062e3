"""The pure stages of the mail flow: values in, values out.

Nothing here does I/O or reads the clock: no database, sockets, files, environment or
``now()`` (time is an argument).  Only the standard library's pure parts, flanker (in
``parse``), html2text and jinja2; ``tests/unit/test_core_is_pure.py`` holds every module
to that.
"""
