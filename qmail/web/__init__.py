"""The web edge: the JSON API (and, later, the pages) over Litestar.

Build the app with ``qmail.web.app.create_app(settings, engine)``; nothing here runs at
import time.
"""
