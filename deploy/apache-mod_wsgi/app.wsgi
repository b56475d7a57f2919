# The WSGI script of the Apache + mod_wsgi stack (WSGIScriptAliasMatch in
# conf.d/app.conf). mod_wsgi loads a script by file path, not a callable by
# name, so this file hands over the callable the other servers import too
# (WSGI_APP, module:name, filled in when the folder is rendered); the app
# itself comes from the virtualenv (python-home). Keeping the script here, next
# to the config, means no path into the virtualenv or the source tree is
# written down anywhere.
# https://modwsgi.readthedocs.io/en/master/configuration-directives/WSGIScriptAliasMatch.html
import importlib
import os
import sys

from mod_wsgi import RequestTimeout

# the app's own body limit (Flask's MAX_CONTENT_LENGTH) is Apache's
# LimitRequestBody (MAX_BODY_BYTES; 0: none), so the app never refuses a body
# Apache admitted; a FLASK_MAX_CONTENT_LENGTH set already wins
_max_body = int("{{ MAX_BODY_BYTES }}")
os.environ.setdefault("FLASK_MAX_CONTENT_LENGTH", str(_max_body) if _max_body else "null")

_module, _, _name = "{{ WSGI_APP }}".partition(":")
_app = getattr(importlib.import_module(_module), _name or "application")

# mod_wsgi 6 raises mod_wsgi.RequestTimeout in a request's thread once it has
# run past request-timeout (wsgi-daemons.conf). It derives from BaseException,
# so the app's error handlers let it through; mod_wsgi would answer an empty
# 504. Answered here instead, as problem+json like every other error.
_TIMEOUT_BODY = (
    b'{"type":"about:blank","title":"Gateway Timeout","status":504,'
    b'"detail":"The application did not answer within {{ REQUEST_TIMEOUT }} s."}'
)
_TIMEOUT_HEADERS = [
    ("Content-Type", "application/problem+json"),
    ("Content-Length", str(len(_TIMEOUT_BODY))),
]


def application(environ, start_response):
    # conf.d/app.conf maps every URL to this file as a whole, so mod_wsgi
    # hands the path over as SCRIPT_NAME: give it back as PATH_INFO, exactly
    # as `WSGIScriptAlias /` would (the app is mounted at /).
    environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    environ["SCRIPT_NAME"] = ""
    try:
        return _app(environ, start_response)
    except RequestTimeout:
        # exc_info: replaces a status the app may have set already, or
        # re-raises if the headers are sent (mod_wsgi then cuts the answer)
        start_response("504 Gateway Timeout", _TIMEOUT_HEADERS, sys.exc_info())
        return [_TIMEOUT_BODY]
