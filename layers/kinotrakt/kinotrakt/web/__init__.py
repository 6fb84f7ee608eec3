"""The Trakt login broker behind the auth Lambda (the routes and why each guard exists: ``login.py``).

Framework-free: :mod:`kinotrakt.web.login` turns already-parsed requests into :class:`WebResponse` values;
``functions/auth/app.py`` only parses the API Gateway event and renders the response.
"""
