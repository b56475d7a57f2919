# The WSGI script of the Apache + mod_wsgi stack (WSGIScriptAliasMatch in
# conf.d/app.conf). mod_wsgi loads a script by file path, not a callable by
# name, so this file hands over the callable the other servers import too
# (WSGI_APP, module:name, filled in when the folder is rendered); the app
# itself comes from the virtualenv (python-home). Keeping the script here, next
# to the config, means no path into the virtualenv or the source tree is
# written down anywhere.
# https://modwsgi.readthedocs.io/en/master/configuration-directives/WSGIScriptAliasMatch.html
import importlib
import json
import os
import sys

import mod_wsgi
from mod_wsgi import RequestTimeout

# the app's own body limit (Flask's MAX_CONTENT_LENGTH) is Apache's
# LimitRequestBody (MAX_BODY_BYTES; 0: none), so the app never refuses a body
# Apache admitted; a FLASK_MAX_CONTENT_LENGTH set already wins
_max_body = int("{{ MAX_BODY_BYTES }}")
os.environ.setdefault("FLASK_MAX_CONTENT_LENGTH", str(_max_body) if _max_body else "null")

# the app's metrics (METRICS=1; "" otherwise): every daemon process writes
# its values to files in this folder (prometheus_client's multiprocess mode,
# which it chooses when first imported, so before the app is), and
# metrics.wsgi adds them up. docs/metrics.md
_metrics_dir = "{{ METRICS_DIR }}"
if _metrics_dir:
    os.makedirs(_metrics_dir, exist_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _metrics_dir)

# module:name, or module:factory() for an app factory, called once here
_module, _, _name = "{{ WSGI_APP }}".partition(":")
_app = getattr(importlib.import_module(_module), (_name or "application").removesuffix("()"))
if _name.endswith("()"):
    _app = _app()

# the readiness probe Apache passes on (snippets/health.conf) is a GET of the
# app's own readiness path (READY_PATH): /readyz for this project's app
_READY_PATH = "{{ READY_PATH }}"

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


# The app server's own line for each request that took at least
# SLOW_REQUEST_MS or failed with a 5xx, as uWSGI's log-slow and log-5xx write
# it in the other stack. mod_wsgi publishes events for every request in the
# daemon: when it starts, its ID (REQUEST_ID, set by Apache: snippets/edge.conf)
# is kept in the request's scratchpad; when it has finished (last byte
# written), mod_wsgi's own timings say how long it took since Apache read it,
# queueing for a daemon thread included, and the line goes to the daemon's
# stderr, which is Apache's error log. One grep of the ID finds the request in
# Apache's access log, this line and the app's own line. Every value is a
# number or the ID, which Apache allows only from a safe alphabet, so no
# escaping is needed.
# https://modwsgi.readthedocs.io/en/master/user-guides/subscribing-to-events.html
_SLOW_MS = int("{{ SLOW_REQUEST_MS }}")


@mod_wsgi.subscribe_events
def _log_slow_or_failed(name, **event):
    if name == "request_started":
        event["request_data"]["request_id"] = event["request_environ"].get("REQUEST_ID", "-")
        return
    if name != "request_finished":
        return
    msecs = round((event["application_finish"] - event["request_start"]) * 1000)
    status = int(event.get("status") or 0)
    if msecs < _SLOW_MS and status < 500:
        return
    line = {
        "request_id": event["request_data"].get("request_id", "-"),
        "status": status,
        "msecs": msecs,
        "app_msecs": round(event["application_time"] * 1000),
        "pid": os.getpid(),
        "thread": event.get("thread_id"),
    }
    print(json.dumps(line, separators=(",", ":")), file=sys.stderr, flush=True)


def application(environ, start_response):
    # conf.d/app.conf maps every URL to this file as a whole, so mod_wsgi
    # hands the path over as SCRIPT_NAME: give it back as PATH_INFO, exactly
    # as `WSGIScriptAlias /` would (the app is mounted at /).
    environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    environ["SCRIPT_NAME"] = ""
    if environ["PATH_INFO"] == "/readyz":
        environ["PATH_INFO"] = _READY_PATH
    try:
        return _app(environ, start_response)
    except RequestTimeout:
        # exc_info: replaces a status the app may have set already, or
        # re-raises if the headers are sent (mod_wsgi then cuts the answer)
        start_response("504 Gateway Timeout", _TIMEOUT_HEADERS, sys.exc_info())
        return [_TIMEOUT_BODY]
