"""Waiting for a state that can be polled (a server answering, a container gone,
a log line written): one helper for every such wait in wsgistack and its tests,
instead of a hand-written loop each.

    wait_until(
        lambda: http_get(url)[0] == 200,
        timeout=30,
        interval=0.2,
        what=f"{url} answering 200",
        ignore=(OSError,),
    )
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    *,
    timeout: float,
    interval: float,
    what: str,
    ignore: tuple[type[Exception], ...] = (),
    error: Callable[[str], Exception] = TimeoutError,
    detail: Callable[[], str] | None = None,
) -> T:
    """Call ``check`` until it returns a true value, and return that value.

    ``check`` runs at once, then every ``interval`` seconds, and a last time at
    the deadline. An exception of a type in ``ignore`` means "not yet" (a
    connection refused while a server starts); any other one goes through at
    once (a server that exited is no reason to go on waiting). After
    ``timeout`` seconds it raises ``error`` with ``what`` (the state waited
    for), the last exception ignored and ``detail()`` (a log tail, say).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
            last_error = None
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))
    message = f"{what}: not within {timeout:g} s"
    if last_error is not None:
        message += f" (last: {last_error!r})"
    if detail is not None:
        message += f"\n{detail()}"
    raise error(message)
