"""The front page in a real browser: headless Chromium (Debian's), driven by
Playwright (PyPI). It loads under the stack's real headers (the proxies'
Content-Security-Policy, nosniff), the form asks the app, the answer and the
Server-Timing figures show, and the console stays free of errors."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.conftest import in_ci

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# as the machine facts say: no sandbox as root, and no background networking
# on a machine that reaches nothing outside
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module's tests."""
    if not os.path.exists(CHROMIUM) and not in_ci():
        pytest.skip("Debian's chromium is not installed (make test-deps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        profile = tempfile.mkdtemp(prefix="wsgistack-chromium-")
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.behaviour("front_page")
def test_the_front_page_works_in_a_browser(stack, browser):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
    try:
        response = page.goto(stack.base_url + "/")
        assert response.status == 200
        page.fill("#n", "100")
        page.click("button[type=submit]")
        page.wait_for_selector("#answer:not([hidden])", timeout=10_000)
        assert page.text_content("#answer-value") == "354224848179261915075"
        assert page.text_content("#answer-digits") == "21"
        assert float(page.text_content("#timing-app")) >= 0
        assert float(page.text_content("#timing-cpu")) >= 0
        assert page.text_content("#request-id")

        # bad input: the app's JSON problem, shown, not a broken page
        page.fill("#n", "99999")
        page.click("button[type=submit]")
        page.wait_for_selector("#error:not([hidden])", timeout=10_000)
        assert "422" in page.text_content("#error")
        # the browser's own "failed to load resource" line for that 422
        problems = [p for p in problems if "status of 422" not in p]
        assert problems == []
    finally:
        page.close()
