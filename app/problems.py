"""RFC 9457 problem details for every error the app returns.

Every error, from bad input to unknown routes to crashes, is answered with
``application/problem+json``, never with HTML::

    {"type": "about:blank", "title": "Bad Request", "status": 400,
     "detail": "...", "invalid_params": [{"name": "n", "reason": "..."}]}

``type`` is always ``about:blank``, so ``title`` is the HTTP reason phrase
and clients branch on ``status``. Status codes for parameters:

- 400 Bad Request: the value is malformed (not ASCII digits ``[0-9]+``, so
  negatives, ``+1``, ``1.5``, ``1e3``, ``0x10``, ``1_000``, spaces and
  non-ASCII digits such as ``'١٢'``), empty, missing when required,
  repeated (``?n=1&n=2``), or not one of the allowed words (``method``).
- 422 Unprocessable Entity (RFC 9110: Content): the value is a well-formed integer outside the
  allowed range, including numbers with thousands of digits.
- 414 URI Too Long: the query string is longer than ``MAX_QUERY_STRING``.

Unknown query parameters are ignored, as HTTP caches and load-test tools
commonly append their own (``?_=1712345``); only known ones are checked.
"""

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_MIMETYPE = "application/problem+json"


class InvalidParams(HTTPException):
    """One or more request parameters are wrong; rendered with invalid_params."""

    def __init__(self, code: int, invalid_params: list[tuple[str, str]]) -> None:
        names = ", ".join(dict.fromkeys(name for name, _ in invalid_params))
        super().__init__(description=f"Invalid request parameter(s): {names}.")
        self.code = code
        self.invalid_params = invalid_params


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    invalid_params: list[tuple[str, str]] | None = None,
    headers: list[tuple[str, str]] | None = None,
):
    """Build an application/problem+json response."""
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if invalid_params:
        body["invalid_params"] = [
            {"name": name, "reason": reason} for name, reason in invalid_params
        ]
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    for name, value in headers or ():
        response.headers[name] = value
    return response


def handle_http_exception(e: HTTPException):
    # keep headers the exception needs (Allow on 405, Retry-After, ...) but
    # drop its text/html content type
    headers = [
        (name, value)
        for name, value in e.get_headers(request.environ)
        if name.lower() != "content-type"
    ]
    return problem_response(
        e.code or 500,
        e.name,
        e.description,
        getattr(e, "invalid_params", None),
        headers,
    )


def handle_unexpected_exception(e: Exception):
    # the traceback goes to the log, never to the client
    current_app.logger.exception("unhandled exception on %s %s", request.method, request.path)
    error = InternalServerError()
    return problem_response(error.code, error.name, error.description)


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_exception)
