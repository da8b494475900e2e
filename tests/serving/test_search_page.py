"""The search page in headless Chromium (tools/browser.py, the network cut to the server alone):
typed query, rendered cards in the order and with the numbers of ``POST /search``, the first-stage
column, a feedback button whose event reaches the request log, and the docs' screenshot."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodrank.serving.request_log import read_log
from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import http
from tools.browser import open_page
from tools.screenshot import chromium

pytestmark = pytest.mark.slow
SCREENSHOT = PROJECT_ROOT / "docs" / "img" / "search.png"  # rewritten with PRODRANK_UPDATE_SCREENSHOTS=1
QUERY = "acme red sofa"

CARDS = """[...document.querySelectorAll('#results .card')].map(c => ({
    id: c.dataset.id, rank: Number(c.dataset.rank), title: c.querySelector('.title').textContent,
    facts: c.querySelector('.facts').textContent,
    bars: Object.fromEntries([...c.querySelectorAll('.bar')].map(b => [b.dataset.task,
                                                                      b.querySelector('.value').textContent]))}))"""


@pytest.fixture(scope="module")
def browser_ready():
    if chromium() is None:  # a failure, not a skip: CI installs it (.ci/run), so must a developer
        pytest.fail("no Chromium: apt-get install -y chromium (or set $CHROMIUM)")


def test_search_page_in_headless_chromium(browser_ready, search_server, tmp_path):
    url = search_server["url"]
    with open_page(url + "/", width=1200, height=760) as page:
        page.wait_for("document.getElementById('model').textContent.includes(':')")  # /metadata answered
        assert page.evaluate("getComputedStyle(document.getElementById('key-form')).display") == "none"  # no key
        page.type_text("#query", QUERY)
        page.click("#search-button")
        page.wait_for("document.querySelectorAll('#results .card').length > 0")
        cards = page.evaluate(CARDS)
        request_id = page.evaluate("document.getElementById('results').dataset.requestId")
        timing = page.evaluate("document.getElementById('server-time').textContent")
        assert page.evaluate("document.getElementById('retrieval-order').hidden")
        page.click("#show-retrieval")
        assert not page.evaluate("document.getElementById('retrieval-order').hidden")
        retrieval = page.evaluate("[...document.querySelectorAll('#retrieval li')].map(li => li.dataset.id)")
        page.click("#results .card:nth-child(2) button[data-event=add_to_cart]")
        sent = page.wait_for("document.querySelector('#results .card:nth-child(2) .sent')?.textContent")
        page.evaluate("window.scrollTo(0, 0)")
        png = Path(SCREENSHOT if os.environ.get("PRODRANK_UPDATE_SCREENSHOTS") else tmp_path / "search.png")
        assert page.screenshot(png) > 10_000
    status, answer = http("POST", url + "/search", {"query": QUERY, "k": 10})  # the API, for the same query
    assert status == 200
    assert [c["id"] for c in cards] == [r["id"] for r in answer["results"]] and len(cards) == 10
    assert [c["rank"] for c in cards] == list(range(1, 11))
    for card, result in zip(cards, answer["results"], strict=True):
        assert card["title"] == result["title"] and f"${result['price']:.2f}" in card["facts"]
        assert card["bars"] == {t: f"{result[f'p_{t}']:.3f}" for t in ("click", "add_to_cart", "purchase")}
    assert retrieval == [r["id"] for r in answer["retrieval"]]
    assert timing.startswith("server ") and "retrieval" in timing
    assert sent == "add to cart recorded (position 2)"
    feedback = read_log(search_server["log_dir"], kind="feedback")
    event = feedback[feedback["request_id"] == request_id]
    assert list(event["product_id"]) == [cards[1]["id"]] and list(event["event"]) == ["add_to_cart"]
    assert list(event["position"]) == [2]
    requests = read_log(search_server["log_dir"], kind="request")
    assert requests.loc[requests["request_id"] == request_id, "query"].tolist() == [QUERY]
