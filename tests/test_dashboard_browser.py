"""The dashboard in a real browser: Debian's chromium, headless, driven by selenium.

The app runs as `python -m nodellm_orm dashboard` (uvicorn) on a free 127.0.0.1 port over a
seeded SQLite file or PostgreSQL database. Each page must load with an empty error console
(a script error, a failed load or a Content-Security-Policy refusal would show there), show
the figures SQL gives, draw its charts, and the list's filters must narrow it.

NODELLM_SCREENSHOTS=DIR keeps the screenshots there (docs/ holds the README's).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sql_dialects, unavailable
from tests.support import browser
from tests.support.dashboard_seed import Seeded, fresh_url, long_chat, seed, sql

pytestmark = pytest.mark.toolchain


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    reason = browser.missing()
    if reason:
        unavailable(reason)
    with browser.chromium() as d:
        yield d


@pytest.fixture(params=sql_dialects())
async def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Seeded:
    return await seed(await fresh_url(request.param, tmp_path, "dashb"))


def _shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("NODELLM_SCREENSHOTS") or tmp_path)


def _load(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.console_errors(driver)  # drop what an earlier page logged
    driver.get(url)
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.TAG_NAME, "main")))


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text).strip()


def _chat_ids(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#chats tbody tr[data-chat]")
    return {str(r.get_attribute("data-chat")) for r in rows}


async def test_every_page_in_chromium(driver: Any, seeded: Seeded, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with browser.dashboard_server(seeded.url) as base:
        # Overview: figures equal SQL, four charts drawn by plotly.js served from the app.
        _load(driver, f"{base}/?range=all")
        WebDriverWait(driver, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart .main-svg")) >= 4
        )
        ((n, inp, out, cost),) = await sql(
            seeded.url,
            'SELECT count(*), sum("inputTokens"), sum("outputTokens"), sum(cost) FROM "LlmRequest"',
        )
        assert _text(driver, '[data-metric="requests"]') == f"{n:,}"
        assert _text(driver, '[data-metric="input_tokens"]') == f"{inp:,}"
        assert _text(driver, '[data-metric="output_tokens"]') == f"{out:,}"
        assert _text(driver, '[data-metric="cost"]') == f"${cost:,.6f}"
        assert driver.execute_script("return typeof Plotly") == "object"
        assert browser.console_errors(driver) == []
        browser.full_page_screenshot(driver, _shots(tmp_path) / "dashboard-overview.png")

        # Chats: the custom column filter, used through the form, narrows the list.
        _load(driver, f"{base}/chats")
        assert _chat_ids(driver) == {
            seeded.tool_chat,
            seeded.failed_chat,
            seeded.interrupted_chat,
            seeded.session_chat,
        }
        assert browser.console_errors(driver) == []
        Select(driver.find_element(By.ID, "f-column")).select_by_visible_text("userId")
        driver.find_element(By.ID, "f-value").send_keys("u-ada")
        driver.find_element(By.ID, "f-submit").click()
        WebDriverWait(driver, 30).until(lambda d: "value=u-ada" in d.current_url)
        assert _chat_ids(driver) == set(seeded.chats_of["u-ada"])
        assert _text(driver, "#chat-total") == "2"
        assert browser.console_errors(driver) == []

        # Conversation: the tool call with its arguments and result, requests beside turns.
        driver.find_element(By.CSS_SELECTOR, f'a[href$="/chats/{seeded.tool_chat}"]').click()
        WebDriverWait(driver, 30).until(lambda d: seeded.tool_chat in d.current_url)
        call = driver.find_element(By.CSS_SELECTOR, ".tool-call")
        assert "get_weather" in call.text
        arguments = call.find_element(By.CSS_SELECTOR, ".tool-arguments").text
        result = call.find_element(By.CSS_SELECTOR, ".tool-result").text
        assert '"city": "Paris"' in arguments
        assert '"conditions": "sunny"' in result and '"temperature_c": 18' in result
        ((requests,),) = await sql(
            seeded.url,
            'SELECT count(*) FROM "LlmRequest" WHERE "chatId" = :c',
            c=seeded.tool_chat,
        )
        shown = driver.find_elements(By.CSS_SELECTOR, ".side tr[data-request]")
        assert len(shown) == requests == 3
        assert browser.console_errors(driver) == []
        browser.full_page_screenshot(driver, _shots(tmp_path) / "dashboard-conversation.png")

        # A failed and an interrupted turn are marked as such.
        _load(driver, f"{base}/chats/{seeded.failed_chat}")
        assert "failed" in _text(driver, "[data-failed]")
        _load(driver, f"{base}/chats/{seeded.interrupted_chat}")
        assert "interrupted: error" in _text(driver, "[data-interrupted]")
        assert browser.console_errors(driver) == []

        # A long chat is shown a page at a time; the pager's link moves to the next page.
        long_id = await long_chat(seeded.url, turns=60)
        _load(driver, f"{base}/chats/{long_id}")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".turn[data-message]")) == 100
        assert "page 1 of 2" in _text(driver, '[data-pager="top"]')
        driver.find_element(By.CSS_SELECTOR, '[data-pager="top"] a[rel="next"]').click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("?page=2"))
        assert len(driver.find_elements(By.CSS_SELECTOR, ".turn[data-message]")) == 20
        assert "messages 101-120 of 120" in _text(driver, '[data-pager="bottom"]')
        assert browser.console_errors(driver) == []
