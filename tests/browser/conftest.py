"""Browser tests: the billing office's screens driven in Debian's Chromium by Playwright, against
pytest-django's live server, following the clinic's manual step by step.

- Chromium is kept off the network: the launch flags below (the host resolver answers nothing
  but the live server's address) and a route on every request that refuses, and records, any
  request to another host. A test that made one fails.
- A console error on a page (a script error, a Content-Security-Policy refusal) fails the test.
- Every test saves a screenshot in tests/browser/screenshots/ (git-ignored).
- `accessibility_violations(page)` runs axe-core (from node_modules, `make install`) in the page.

Without /usr/bin/chromium the tests skip with a reason; CI installs it (`.ci/run`) and sets
BROWSER_TESTS_REQUIRED=1, so there they fail instead of skipping.
"""

import io
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from desk.demo import seed_demo

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LIVE_HOST = "127.0.0.1"
DEMO_PASSWORD = "demo-pass-1"  # the demo users of the test database

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LIVE_HOST}",
    "--disable-features=AutofillServerCommunication",
]

# The live server listens on 127.0.0.1, the one host the resolver rules leave alone.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", LIVE_HOST)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.browser)


def _why_not_runnable() -> str | None:
    if not CHROMIUM.exists():
        return f"needs Chromium at {CHROMIUM} (Debian's chromium package; .ci/run installs it)"
    if not AXE_JS.exists():
        return "needs axe-core in node_modules (make install runs npm ci)"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = _why_not_runnable()
    if reason:
        if os.environ.get("BROWSER_TESTS_REQUIRED"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Django refuses ORM calls from a thread with a running event loop, which Playwright's sync
    # API keeps; the tests call the ORM between steps, never concurrently with the page.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def demo(transactional_db, roles):
    """The demo clinics, staff, catalogue and invoices (`make run`'s data), passwords known."""
    seed_demo(password=DEMO_PASSWORD)


class Session:
    """One person's browser tab on the live server."""

    def __init__(self, page, base_url: str, name: str):
        self.page = page
        self.base_url = base_url
        self.name = name
        # console errors a test causes on purpose (patterns); any other fails the test
        self.expected_errors: list[str] = []

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str):
        return self.page.goto(self.url(path))

    def login(self, username: str) -> "Session":
        page = self.page
        page.goto(self.url("/accounts/login/"))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name=re.compile("log in", re.I)).click()
        page.wait_for_url(re.compile(r".*/$"))
        return self

    def logout(self) -> None:
        self.page.get_by_role("button", name="Log out").click()

    def screenshot(self, name: str, *, readme: str | None = None) -> Path:
        """The whole page into tests/browser/screenshots/. With `readme` and
        README_SCREENSHOTS=1 (`make screenshots`), also the visible part as a small PNG in
        docs/screenshots/<readme>.png, which the README shows."""
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if readme and os.environ.get("README_SCREENSHOTS"):
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            small_png(self.page.screenshot(), README_SCREENSHOTS / f"{readme}.png")
        return path


def small_png(png: bytes, path: Path) -> None:
    """A screenshot in 64 colours: flat interface colours survive, the file stays small."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


@pytest.fixture
def open_session(browser, live_server, request) -> Iterator:
    """open_session(width=1366, javascript=True) → a Session in a fresh browser context. At the
    end of the test: a screenshot of each session, and a failure for any request to another host
    or any console error."""
    contexts = []
    problems: list[str] = []
    live = urlsplit(live_server.url)

    def guard(route, req):
        parts = urlsplit(req.url)
        if parts.scheme in ("data", "blob") or (parts.hostname == live.hostname
                                                and parts.port == live.port):
            route.continue_()
        else:
            problems.append(f"request to another host: {req.url}")
            route.abort()

    def start(width: int = 1366, height: int = 900, javascript: bool = True) -> Session:
        context = browser.new_context(viewport={"width": width, "height": height},
                                      java_script_enabled=javascript)
        context.set_default_timeout(10_000)
        context.route("**/*", guard)
        page = context.new_page()
        session = Session(page, live_server.url, f"{request.node.name}-{len(contexts) + 1}")

        def console(msg):
            if msg.type == "error" and not any(
                    re.search(expected, msg.text) for expected in session.expected_errors):
                problems.append(f"console error on {page.url}: {msg.text}")

        page.on("console", console)
        page.on("pageerror", lambda exc: problems.append(f"script error on {page.url}: {exc}"))
        contexts.append(context)
        return session

    yield start
    SCREENSHOTS.mkdir(exist_ok=True)
    for n, context in enumerate(contexts, start=1):
        for page in context.pages:
            page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-{n}-end.png"),
                            full_page=True)
        context.close()
    assert not problems, "\n".join(problems)


def accessibility_violations(page, *, impacts=("serious", "critical")) -> list[str]:
    """axe-core's serious and critical violations on the page, one readable line each."""
    page.evaluate(AXE_JS.read_text())  # evaluated by the browser's debugger: CSP does not apply
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] if isinstance(node["target"][0], str)
                    else str(node["target"]) for node in v["nodes"][:5])
        for v in result["violations"] if v["impact"] in impacts
    ]


def money(text: str) -> Decimal:
    """'18.000 OMR' → Decimal('18.000')."""
    return Decimal(re.sub(r"[^0-9.\-]", "", text.split()[0]))
