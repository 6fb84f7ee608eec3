"""The Trakt login broker behind the auth Lambda (DESIGN §2 auth routes, §6 security).

Framework-free: :mod:`kinotrakt.web.login` turns already-parsed requests into :class:`WebResponse` values;
``functions/auth/app.py`` only parses the API Gateway event and renders the response.
"""
