"""GraphiQL in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium):
the page and its assets come from the app, a query with a token header runs, the result shows.
And a processed video (H.264/AAC MP4 from the worker) plays in a `<video>` element, at the
size the API reports (a phone's rotated clip as displayed).

Skipped with the reason printed when no browser is installed, unless REQUIRE_BROWSER=1 (as in
.ci/run), which turns the skip into a failure. UPDATE_SCREENSHOT=1 also writes
docs/graphiql.png.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from PIL import Image

from settings import Settings
from tests.gql import PASSWORD, SIGN_UP
from tests.servers import run_worker, serve_api
from tests.videos import clip, h264_with_location, looks_like, picture, vp9_webm

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


def chrome(tmp_path: Path):
    """A headless Chromium under Selenium (skipped without one, unless REQUIRE_BROWSER=1)."""
    chromium, chromedriver = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,800",
                 "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def test_graphiql_runs_a_query_with_a_token(api_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    variables = {"username": "browser", "password": PASSWORD, "displayName": "In A Browser"}
    body = httpx.post(f"{api_url}/graphql", json={"query": SIGN_UP, "variables": variables})
    token = body.json()["data"]["signUp"]["token"]
    headers = json.dumps({"Authorization": f"Bearer {token}"})
    page = f"{api_url}/graphql#" + urlencode({"query": QUERY, "headers": headers})

    driver = chrome(tmp_path)
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


VIDEO_FLOW = {
    "upload": "mutation($t: String!, $n: Int!) { createMediaUpload(contentType: $t, "
    "byteSize: $n) { id uploadUrl } }",
    "complete": "mutation($id: ID!) { completeMediaUpload(id: $id) { state } }",
    "state": "query($id: ID!) { media(id: $id) { state reason } }",
    "tweet": 'mutation($m: [ID!]) { createTweet(text: "clip", mediaIds: $m) '
    "{ media { url width height ... on Video { posterUrl } } } }",
}
# Plays the video muted (autoplay allowed) and reports once time advances, with the frame
# shown then (a PNG data URL), or why not.
PLAY = """
const [src, done] = arguments;
const video = document.createElement('video');
video.muted = true;
video.src = src;
document.body.appendChild(video);
video.onerror = () => done({error: video.error && video.error.message});
video.ontimeupdate = () => {
  if (video.currentTime == 0) return;
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  done({time: video.currentTime, readyState: video.readyState, width: video.videoWidth,
        height: video.videoHeight, frame: canvas.toDataURL('image/png')});
};
video.play().catch(e => done({error: String(e)}));
setTimeout(() => done({error: 'timeout', readyState: video.readyState}), 20000);
"""
CODECS = 'video/mp4; codecs="avc1.640028, mp4a.40.2"'  # what the worker produces: H.264 + AAC


def _posted_video(api: httpx.Client, token: str, data: bytes, content_type: str) -> dict:
    """Upload, complete, wait for READY and tweet a video the GraphiQL way: its media."""

    def call(name: str, variables: dict) -> dict:
        body = api.post(
            "/graphql",
            json={"query": VIDEO_FLOW[name], "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert "errors" not in body, body
        return body["data"]

    ticket = call("upload", {"t": content_type, "n": len(data)})["createMediaUpload"]
    put = httpx.put(ticket["uploadUrl"], content=data, headers={"Content-Type": content_type})
    assert put.status_code == 200
    call("complete", {"id": ticket["id"]})
    deadline = time.monotonic() + 60
    while (state := call("state", {"id": ticket["id"]})["media"])["state"] != "READY":
        assert state["state"] != "FAILED" and time.monotonic() < deadline, state
        time.sleep(0.1)
    return call("tweet", {"m": [ticket["id"]]})["createTweet"]["media"][0]


def test_a_processed_video_plays_in_a_video_element(settings: Settings, tmp_path: Path) -> None:
    """Both processing paths (remuxed H.264 with a location tag; VP9 transcoded) give a file
    Chromium plays: time advances, and the frame has the size the API reports. A phone's
    portrait clip (64x48 frames turned a quarter, either way) plays upright at 48x64 on both
    paths: the browser shows what the API reports and the poster shows."""
    driver = chrome(tmp_path)
    try:
        with serve_api(settings) as url, run_worker(settings, tmp_path / "worker.log"):
            with httpx.Client(base_url=url, timeout=30) as api:
                variables = {"username": "viewer", "password": PASSWORD, "displayName": "V"}
                body = api.post("/graphql", json={"query": SIGN_UP, "variables": variables})
                token = body.json()["data"]["signUp"]["token"]
                clips = [  # degrees counterclockwise that show the frames upright
                    (h264_with_location(seconds=2), "video/mp4", 0),  # remuxed
                    (vp9_webm(seconds=2), "video/webm", 0),  # transcoded
                    (clip(seconds=2, rotation=90), "video/mp4", 90),
                    (vp9_webm(seconds=2, rotation=-90), "video/webm", -90),
                ]
                posted = [(_posted_video(api, token, d, t), turn) for d, t, turn in clips]
            driver.get(f"{url}/healthz")  # any page of the app: the video is same-origin
            can_play = driver.execute_script(
                f"return document.createElement('video').canPlayType('{CODECS}')"
            )
            assert can_play == "probably", f"this Chromium cannot play H.264/AAC: {can_play!r}"
            for media, turn in posted:
                upright = picture(64, 48, 0).rotate(turn, expand=True)
                assert (media["width"], media["height"]) == upright.size, media
                played = driver.execute_async_script(PLAY, media["url"])
                assert "error" not in played, (media, played)
                assert played["time"] > 0 and played["readyState"] >= 2, played
                assert (played["width"], played["height"]) == upright.size, played
                png = base64.b64decode(played["frame"].split(",", 1)[1])
                with Image.open(io.BytesIO(png)) as shown:
                    assert looks_like(shown, upright), (media, turn)
    finally:
        driver.quit()
