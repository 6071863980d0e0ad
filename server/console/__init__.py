"""The web console: the models and their training, evaluation and versions, in a
browser, served by the QuackML process on its own port (``--http-port``).

- ``web``: the HTTP server (uvicorn in a thread) and its start/stop;
- ``app``: sign-in (the wire protocol's users and verifiers), signed session
  cookies and the routes;
- ``queries``: every number shown, from SQL statements run as the signed-in
  user, so the server's own privilege checks decide what is shown;
- ``pages``: the HTML; ``static/``: the stylesheet, the script that draws the
  charts, and the vendored chart library (Observable Plot over d3).

docs/console.md describes it; docs/security.md says what keeps it within privileges.
"""
