"""`avuie view` in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

On the bundled demo build, behind a token: open the printed URL, filter to s4, open a sample, check that the mask
overlay canvas has colour exactly where the mask PNG in the shard is foreground, play the audio element, edit the
chain, apply it, and find the edit in the shard with plain webdataset.

Skips, saying why, where Chromium, chromedriver or selenium is missing (scripts/test.sh installs the first two
with apt-get when it can); fails instead where AVUIE_REQUIRE_BROWSER=1 (CI). With AVUIE_VIEW_SCREENSHOT=PATH it
also saves the sample page as a PNG there (the README's screenshot: docs/view_sample.png).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avuie.view.app import view_in_thread
from tests.viewkit import S4_CHAIN, copy_of, demo_build, shard_samples

TOKEN = "browser-test-token"


def _missing() -> list[str]:
    missing = [name for name in ("chromium", "chromedriver") if not shutil.which(name)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return missing


@pytest.fixture(scope="module")
def driver():
    missing = _missing()
    if missing:
        why = (
            f"headless browser test needs {', '.join(missing)}: apt-get install chromium chromium-driver "
            "(scripts/test.sh does it when run as root) and pip install -e '.[dev]'"
        )
        if os.environ.get("AVUIE_REQUIRE_BROWSER") == "1":
            pytest.fail(why + " (AVUIE_REQUIRE_BROWSER=1)")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager try to download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def _wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


CANVAS_ALPHA = """
const canvas = document.querySelector('canvas.mask-overlay');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let bits = '';
for (let i = 3; i < data.length; i += 4) bits += data[i] > 0 ? '1' : '0';
return [canvas.width, canvas.height, bits];
"""
PLAY = """
const done = arguments[arguments.length - 1];
const audio = document.querySelector('.media audio');
audio.play().then(() => setTimeout(() => done([audio.paused, audio.currentTime, audio.duration]), 400),
                  (err) => done(String(err)));
"""


def test_filter_overlay_audio_edit_and_apply_in_chromium(driver, tmp_path, tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    root = copy_of(demo_build(tmp_path_factory), tmp_path / "out")
    before = shard_samples(root / "s4")
    with view_in_thread(root, token=TOKEN) as handle:
        driver.get(f"{handle.url}/?token={TOKEN}")
        Select(driver.find_element(By.ID, "f-source")).select_by_value("s4")
        driver.find_element(By.ID, "apply-filters").click()
        _wait(driver, lambda d: "source=s4" in d.current_url)
        links = driver.find_elements(By.CSS_SELECTOR, "a.sample-link")
        assert len(links) == len(before) and all(link.text.startswith("s4/") for link in links)
        links[0].click()
        _wait(
            driver,
            lambda d: d.find_element(By.CSS_SELECTOR, "canvas.mask-overlay").get_attribute("data-drawn"),
        )
        sample_id = driver.find_element(By.ID, "sample-id").text
        item = before[sample_id]
        width, height, bits = driver.execute_script(CANVAS_ALPHA)
        mask = np.zeros((height, width), dtype=bool)
        for group in item["sample"]["target"]["groups"]:
            mask |= np.asarray(Image.open(io.BytesIO(item["files"][group["mask"]])).convert("L")) > 127
        painted = np.frombuffer(bits.encode(), dtype=np.uint8).reshape(height, width) == ord("1")
        assert mask.any() and (painted == mask).all(), f"{(painted != mask).sum()} pixels differ"
        played = driver.execute_async_script(PLAY)
        assert isinstance(played, list) and played[0] is False and played[1] > 0, played
        if os.environ.get("AVUIE_VIEW_SCREENSHOT"):  # the whole page, as docs/view_sample.png shows it
            driver.set_window_size(
                1280, min(driver.execute_script("return document.documentElement.scrollHeight") + 160, 2000)
            )
            driver.save_screenshot(os.environ["AVUIE_VIEW_SCREENSHOT"])
        chain = driver.find_element(By.ID, "chain")
        chain.clear()
        chain.send_keys(S4_CHAIN)
        driver.find_element(By.ID, "save-edit").click()
        _wait(driver, lambda d: "saved" in d.find_element(By.ID, "notice").text)
        driver.get(f"{handle.url}/review")
        driver.find_element(By.ID, "apply-edits").click()
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "p.applied"))
        assert "1 chain(s) written" in driver.find_element(By.CSS_SELECTOR, "p.applied").text
    after = shard_samples(Path(root) / "s4")
    assert after[sample_id]["sample"]["reasoning"] == S4_CHAIN
    assert after[sample_id]["sample"]["reasoning_info"]["kind"] == "human"
    assert {k: v["sample"] for k, v in after.items() if k != sample_id} == {
        k: v["sample"] for k, v in before.items() if k != sample_id
    }
