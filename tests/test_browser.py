"""GraphiQL in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium):
the page and its assets come from the app, a query with a token header runs, the result shows.

Skipped with the reason printed when no browser is installed, unless REQUIRE_BROWSER=1 (as in
.ci/run), which turns the skip into a failure. UPDATE_SCREENSHOT=1 also writes
docs/graphiql.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.gql import PASSWORD, SIGN_UP

ROOT = Path(__file__).resolve().parent.parent
QUERY = "{ viewer { username displayName } }"


def browser_paths() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = "no chromium/chromedriver (apt-get install chromium chromium-driver)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def test_graphiql_runs_a_query_with_a_token(api_url: str, tmp_path: Path) -> None:
    chromium, chromedriver = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    variables = {"username": "browser", "password": PASSWORD, "displayName": "In A Browser"}
    body = httpx.post(f"{api_url}/graphql", json={"query": SIGN_UP, "variables": variables})
    token = body.json()["data"]["signUp"]["token"]
    headers = json.dumps({"Authorization": f"Bearer {token}"})
    page = f"{api_url}/graphql#" + urlencode({"query": QUERY, "headers": headers})

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,800",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        driver.get(page)
        wait = WebDriverWait(driver, 30)
        button = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".graphiql-execute-button"))
        time.sleep(0.5)  # let the editors settle before running
        button.click()

        def result_text(d) -> str:
            return d.execute_script(
                "const cm = document.querySelector('.result-window .CodeMirror');"
                "return cm ? cm.CodeMirror.getValue() : '';"
            )

        text = wait.until(lambda d: result_text(d) if "browser" in result_text(d) else None)
        assert json.loads(text) == {
            "data": {"viewer": {"username": "browser", "displayName": "In A Browser"}}
        }
        driver.save_screenshot(str(tmp_path / "graphiql.png"))
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            driver.save_screenshot(str(ROOT / "docs" / "graphiql.png"))
        # Every script and stylesheet came from the app itself, none from a CDN.
        sources = driver.execute_script(
            "return [...document.scripts].map(s => s.src).concat("
            "[...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.href));"
        )
        assert sources and all(src.startswith(api_url + "/static/") for src in sources if src)
    finally:
        driver.quit()
