"""The preference center in a real browser: headless Chromium (Debian's package), driven by
Playwright, against a real edge process. Toggles change consent, delete erases, the page
refuses without a valid token, it speaks German when asked, it runs no script and it is
framed only by the app's own origins. Screenshots are kept in build/test-artifacts/."""

import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.credentials import DevApp
from tests.e2e.conftest import free_port
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "preference-center"
CHROMIUM = os.environ.get("SENTIEDGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's probe runs it: no sandbox as root, nothing that reaches out to the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ALL = {"sentiment": True, "personalization": True, "cohort_analytics": False}


class Site:
    """A web page on its own loopback origin that embeds the preference center in an iframe."""

    def __init__(self, port: int, frame_url: str) -> None:
        body = (f'<!doctype html><title>shop</title><h1>Shop</h1>'
                f'<iframe title="preferences" src="{frame_url}" width="700" height="900"></iframe>').encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (make test installs Debian's chromium)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def edge(spawn, bundle_dir, tmp_path):
    """A standalone edge whose app lists one shop origin (which may frame the page)."""
    shop_port = free_port()
    dev_file = tmp_path / "apps.json"
    app = {"name": "glow-shop", "app_id": "app_dev", "origins": [f"http://127.0.0.1:{shop_port}"],
           "policy_version": "2026-12", "policy_url": "https://glow.example/privacy",
               "client_keys": ["ck_browser_test_key"],
               "signing_keys": [{"kid": "k1", "alg": "HS256", "secret": "s" * 32}],
               "server_keys": [{"name": "backend", "key": "sk_browser_test_backend",
                                "scopes": ["events:write", "users:read", "consent:write", "users:delete"]}]}
    dev_file.write_text(json.dumps({"apps": [app]}))
    _, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                    env={"EDGE_APPS_FILE": str(dev_file), "EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    return base, DevApp(dev_file), shop_port


def page_url(base: str, dev: DevApp, token: str | None, **extra: str) -> str:
    query = f"client_key={dev.client_key}" + (f"&token={token}" if token else "")
    query += "".join(f"&{k}={v}" for k, v in extra.items())
    return f"{base}/v1/preferences?{query}"


def seed(base: str, dev: DevApp, user: str) -> None:
    headers = {**dev.user(user), "content-type": "application/json"}
    assert call(base, "PUT", f"/v1/users/{user}/consent", {"purposes": ALL, "policy_version": "2026-11"},
                headers=headers)[0] == 200
    status, report = call(base, "POST", f"/v1/users/{user}/events", {"events": [
        {"type": "review", "item_id": "serum-1", "category": "Beauty/Skincare",
         "text": "I absolutely love this serum, my skin has never looked better!"},
        {"type": "view", "item_id": "serum-4", "category": "Beauty/Skincare"},
        {"type": "purchase", "item_id": "serum-1", "category": "Beauty/Skincare"}]}, headers=headers)
    # Three events: past the cold start (EDGE_COLD_START_EVENTS), so the ranking is the user's own.
    assert status == 200 and report["accepted"] == 3
    status, ranked = call(base, "POST", "/v1/rank", {"user_id": user, "candidates": [
        {"id": "serum-2", "category": "Beauty/Skincare", "popularity": 1},
        {"id": "spade-3", "category": "Garden", "popularity": 50}]}, headers=headers)
    assert status == 200 and ranked["source"] == "user"


def consent(base: str, dev: DevApp, user: str) -> dict:
    return call(base, "GET", f"/v1/users/{user}/consent", headers=dev.user(user))[1]["purposes"]


def test_a_user_sees_what_was_inferred_changes_consent_and_deletes_everything(edge, browser):
    base, dev, _ = edge
    seed(base, dev, "ann")
    page = browser.new_page()
    console = []
    page.on("console", lambda m: console.append(m.text))
    response = page.goto(page_url(base, dev, dev.token("ann")))
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert response.headers["referrer-policy"] == "same-origin" and response.headers["cache-control"] == "no-store"
    assert page.title() == "Your personalization choices"
    assert page.get_by_label("Personalize what I see").is_checked()
    assert not page.get_by_label("Count me in group statistics").is_checked()
    assert page.get_by_text("You seem interested in Beauty/Skincare").is_visible() \
        or page.get_by_text("You seem very interested in Beauty/Skincare").is_visible()
    assert page.get_by_text("Mostly positive in what you wrote recently.").is_visible()
    assert page.get_by_text("For glow-shop.").is_visible()  # whose choices, and their policy
    assert page.get_by_role("link", name="Read the privacy policy").get_attribute("href") \
        == "https://glow.example/privacy"
    # Why an item was shown, in words a person reads (its category, not its id); the Garden item
    # the profile pushed down was not shown *because of* the user, so it is not listed.
    assert page.get_by_text("An item in Beauty/Skincare: because you").is_visible()
    assert page.get_by_text("Garden").count() == 0 and page.get_by_text("serum-2").count() == 0
    assert page.locator("script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "1-opened.png"), full_page=True)

    # Turn personalization off: the profile is erased at once, the page says so.
    page.get_by_label("Personalize what I see").uncheck()
    page.get_by_label("Count me in group statistics").check()
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_role("status").inner_text() == "Your choices are saved."
    assert page.get_by_text("Nothing: personalization is off, so no profile is kept.").is_visible()
    purposes = consent(base, dev, "ann")
    assert not purposes["personalization"]["granted"] and purposes["cohort_analytics"]["granted"]
    # Recorded under the app's registered policy, which the page showed.
    assert purposes["sentiment"]["granted"] and purposes["personalization"]["policy_version"] == "2026-12"
    assert page.get_by_text("Off since ").count() == 1  # the purpose turned off says since when
    assert call(base, "GET", "/v1/users/ann/vector", headers=dev.user("ann"))[0] == 404
    page.screenshot(path=str(ARTIFACTS / "2-personalization-off.png"), full_page=True)

    # Delete everything: asks first, refuses without the confirmation box, then erases.
    # (expect() waits for the page the click posts to; is_visible() answers at once, and under load
    # the old page could still be showing.)
    page.get_by_role("button", name="Delete everything…").click()
    expect(page.get_by_role("heading", name="Delete everything?")).to_be_visible()
    page.get_by_role("button", name="Yes, delete everything").click()  # the required box is empty
    expect(page.get_by_role("heading", name="Delete everything?")).to_be_visible()
    assert consent(base, dev, "ann")["sentiment"]["granted"]  # nothing happened
    page.get_by_label("I understand that this cannot be undone").check()
    page.get_by_role("button", name="Yes, delete everything").click()
    assert page.get_by_role("status").inner_text().startswith("Everything was deleted. Reference: req-")
    assert not any(p["granted"] for p in consent(base, dev, "ann").values())
    assert not page.get_by_label("Understand the tone of what I write").is_checked()
    page.screenshot(path=str(ARTIFACTS / "3-deleted.png"), full_page=True)
    assert not [m for m in console if "Content Security Policy" in m], console


def test_the_page_refuses_without_a_valid_token(edge, browser):
    base, dev, _ = edge
    seed(base, dev, "bob")
    page = browser.new_page()
    for token in (None, dev.token("bob", ttl=-300), dev.token("bob")[:-4] + "AAAA", "not-a-jwt"):
        response = page.goto(page_url(base, dev, token))
        assert response.status == 401, token
        assert page.get_by_role("heading").inner_text() == "This page cannot be opened"
        assert "Beauty" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "4-refused.png"), full_page=True)
    # A form posted with a forged token changes nothing either.
    status = page.request.post(f"{base}/v1/preferences?client_key={dev.client_key}",
                               form={"token": "forged", "action": "confirm_delete", "confirm": "yes"}).status
    assert status == 401 and consent(base, dev, "bob")["personalization"]["granted"]
    # Without the app's client key the gate refuses before any page is made.
    assert page.goto(f"{base}/v1/preferences?token={dev.token('bob')}").status == 401


def test_the_page_speaks_the_users_language(edge, browser):
    base, dev, _ = edge
    seed(base, dev, "cem")
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.goto(page_url(base, dev, dev.token("cem")))
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("heading", level=1).inner_text() == "Ihre Personalisierungseinstellungen"
    page.get_by_label("Sprache").select_option("en")
    page.get_by_role("button", name="OK").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Your personalization choices"
    page.screenshot(path=str(ARTIFACTS / "5-language.png"), full_page=True)
    context.close()


def test_only_the_apps_own_origins_may_frame_it(edge, browser):
    base, dev, shop_port = edge
    seed(base, dev, "dee")
    url = page_url(base, dev, dev.token("dee"), embed="1")
    shop, stranger = Site(shop_port, url), Site(free_port(), url)
    try:
        page = browser.new_page()
        page.goto(shop.url)
        frame = page.frame_locator("iframe")
        assert frame.get_by_role("heading", level=1).inner_text() == "Your personalization choices"
        frame.get_by_label("Count me in group statistics").check()
        frame.get_by_role("button", name="Save my choices").click()
        assert frame.get_by_role("status").inner_text() == "Your choices are saved."
        assert consent(base, dev, "dee")["cohort_analytics"]["granted"]
        page.screenshot(path=str(ARTIFACTS / "6-embedded.png"), full_page=True)

        blocked = browser.new_page()
        blocked.goto(stranger.url)
        blocked.wait_for_timeout(500)
        child = blocked.frames[1]
        assert not child.url.startswith(base) or child.locator("h1").count() == 0
        blocked.screenshot(path=str(ARTIFACTS / "7-framed-by-a-stranger.png"), full_page=True)
    finally:
        shop.close()
        stranger.close()
