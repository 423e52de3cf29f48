"""A real browser plays and seeks video served by BustAPI.

The clip (python/bustapi/demo/static/video.mp4) keeps its `moov` index at the end
of the file, so Chromium can only start playback and seek if the server answers
HTTP Range requests with 206 Partial Content. When a server ignores ranges,
Chromium marks the media as not seekable and every seek lands back at 0; the
negative control at the bottom shows this check catches exactly that.

The page's network is throttled (CDP) to a few hundred KB/s. Over unthrottled
loopback Chromium pulls the whole small clip in its first `bytes=0-` request and
never needs another range; throttled, it has to jump: it fetches the `moov` from
the end, comes back to the media data, and fetches again at the seek targets,
each with its own Range request, as it would over a real network.

Needs the system Chromium and the Python `playwright` module
(scripts/install_browser.sh installs both; `playwright install` is not used).
Without them these tests are skipped, or fail if BUSTAPI_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO / "python" / "bustapi" / "demo" / "static" / "video.mp4"

TIMEOUT_MS = 30_000
# Chromium lands on the exact time asked for; this only absorbs float rounding
# and a frame of playback between the `seeked` event and our reading it.
SEEK_TOLERANCE_S = 0.25

# Download rate for the page, in bytes/s: the clip takes ~1.5 s to arrive.
THROTTLE_BYTES_PER_S = 256 * 1024

CHROMIUM_ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BustAPI browser test</title></head>
<body>
  <video id="static-video" width="640" height="360" controls muted preload="metadata">
    <source src="/static/video.mp4" type="video/mp4"
            onerror="this.parentElement.dataset.sourceError = 'the <source> failed to load'">
  </video>
  <video id="route-video" width="640" height="360" controls muted preload="metadata"
         src="/video/sample"></video>
</body></html>
"""

# A page (at /signed/) whose video is a signed, expiring URL of a signed static
# mount: every range request Chromium makes is checked by the engine.
SIGNED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BustAPI signed video</title></head>
<body>
  <video id="signed-video" width="640" height="360" controls muted preload="metadata"
         src="{src}"></video>
</body></html>
"""

# (video element id, URL path it loads)
CASES = [
    pytest.param("static-video", "/static/video.mp4", id="static"),
    pytest.param("route-video", "/video/sample", id="send_file-route"),
    pytest.param("signed-video", "/protected/sample.mp4", id="signed-static"),
]

# Everything worth knowing about a <video> when a step fails.
STATE_JS = """(id) => {
  const v = document.getElementById(id);
  const ranges = (tr) => Array.from({length: tr.length}, (_, i) => [tr.start(i), tr.end(i)]);
  return {
    currentTime: v.currentTime, duration: v.duration, paused: v.paused, ended: v.ended,
    readyState: v.readyState, networkState: v.networkState,
    error: v.error && `${v.error.code}: ${v.error.message}`,
    seekable: ranges(v.seekable), buffered: ranges(v.buffered),
    totalVideoFrames: v.getVideoPlaybackQuality().totalVideoFrames,
  };
}"""

PLAY_JS = """async (id) => {
  const v = document.getElementById(id);
  await v.play();
  return v.currentTime;
}"""

# Starts a seek; the outcome lands in window.__seeks[id] once `seeked` has fired
# AND the compositor has been handed a frame decoded after the seek.
START_SEEK_JS = """([id, target]) => {
  const v = document.getElementById(id);
  window.__seeks = window.__seeks || {};
  window.__seeks[id] = null;
  const framesBefore = v.getVideoPlaybackQuality().totalVideoFrames;
  v.addEventListener("seeked", () => {
    const seekedAt = v.currentTime;
    v.requestVideoFrameCallback((now, frame) => {
      window.__seeks[id] = {
        seekedAt, frameMediaTime: frame.mediaTime, framesBefore,
        framesAfter: v.getVideoPlaybackQuality().totalVideoFrames, readyState: v.readyState,
      };
    });
  }, {once: true});
  v.currentTime = target;
}"""


@dataclass
class MediaExchange:
    """One HTTP request the browser made for the video, as the browser saw it."""

    range: str | None
    status: int
    content_range: str | None
    accept_ranges: str | None


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def video_file() -> Path:
    """The committed demo clip (moov at the end; see python/bustapi/demo/make_video.sh)."""
    assert VIDEO.is_file(), (
        f"{VIDEO} is missing; regenerate it with python/bustapi/demo/make_video.sh"
    )
    return VIDEO


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system Chromium driven by Playwright."""
    chromium = shutil.which("chromium")
    problem = None
    if chromium is None:
        problem = "chromium is not on PATH"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            problem = "the Python module playwright is not installed"
    if problem is not None:
        message = f"{problem}; run scripts/install_browser.sh"
        if os.environ.get("BUSTAPI_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A throttled page in a fresh context, so no HTTP cache is shared between tests."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": THROTTLE_BYTES_PER_S,
                "uploadThroughput": -1,
            },
        )
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def bustapi_url(tmp_path_factory: pytest.TempPathFactory, video_file: Path) -> Iterator[str]:
    """A live BustAPI server with the clip under static/ and behind a send_file route."""
    from bustapi import BustAPI, send_file
    from bustapi.testing import LiveServer

    root = tmp_path_factory.mktemp("bustapi-site")
    static_dir = root / "static"
    videos_dir = root / "videos"
    static_dir.mkdir()
    videos_dir.mkdir()
    shutil.copyfile(video_file, static_dir / "video.mp4")
    shutil.copyfile(video_file, videos_dir / "sample.mp4")

    app = BustAPI(static_folder=str(static_dir))
    app.config["SIGNING_KEYS"] = ["browser-test-key"]
    app.add_static("/protected", str(videos_dir), signed=True)

    @app.route("/signed/")
    def signed_page() -> str:
        return SIGNED_PAGE.format(src=app.sign_url("/protected/sample.mp4", expires_in=600))

    @app.route("/video/<id>")
    def stream_video(id: str) -> Any:
        return send_file(f"{videos_dir}/{id}.mp4", mimetype="video/mp4")

    @app.route("/")
    def index() -> str:
        return PAGE

    with LiveServer(app) as server:
        yield server.url


# --------------------------------------------------------------------------- helpers


def video_state(page: Page, video_id: str) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(STATE_JS, video_id)
    return state


# Wraps a predicate `(arg) => value` so the wait also ends, with a reason, as soon as
# the media element fails (a <source> failure sets no video.error, hence the dataset flag).
WAIT_JS = """([id, predicate, arg]) => {
  const v = document.getElementById(id);
  if (v.error) return {failed: `MediaError ${v.error.code}: ${v.error.message}`};
  if (v.dataset.sourceError) return {failed: v.dataset.sourceError};
  const value = (0, eval)(predicate)(arg);
  return value ? {value} : null;
}"""


def wait_for(page: Page, video_id: str, js: str, arg: Any, what: str) -> Any:
    """Wait until `js(arg)` is truthy and return it; fail, showing the video's state,
    if the video errors or the wait times out."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        result = page.wait_for_function(
            WAIT_JS, arg=[video_id, js, arg], timeout=TIMEOUT_MS
        ).json_value()
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"{video_id}: timed out after {TIMEOUT_MS} ms waiting for {what}; "
            f"video state: {video_state(page, video_id)}"
        ) from None
    if "failed" in result:
        raise AssertionError(
            f"{video_id}: failed while waiting for {what}: {result['failed']}; "
            f"video state: {video_state(page, video_id)}"
        )
    return result["value"]


def record_media_exchanges(page: Page, path: str) -> list[MediaExchange]:
    """Collect every response the page receives for `path` (the list fills in as it runs)."""
    exchanges: list[MediaExchange] = []

    def on_response(response: Response) -> None:
        if urlsplit(response.url).path != path:
            return
        exchanges.append(
            MediaExchange(
                range=response.request.headers.get("range"),
                status=response.status,
                content_range=response.headers.get("content-range"),
                accept_ranges=response.headers.get("accept-ranges"),
            )
        )

    page.on("response", on_response)
    return exchanges


def seek(page: Page, video_id: str, fraction: float) -> None:
    """Seek to `fraction` of the duration; require `seeked` and a freshly decoded frame there."""
    duration = video_state(page, video_id)["duration"]
    target = duration * fraction
    page.evaluate(START_SEEK_JS, [video_id, target])
    outcome = wait_for(
        page,
        video_id,
        "(id) => window.__seeks && window.__seeks[id]",
        video_id,
        f"`seeked` and a decoded frame after seeking to {target:.3f} s",
    )
    context = f"{video_id}: seek to {target:.3f} s ({fraction:.0%}): {outcome}"
    assert abs(outcome["seekedAt"] - target) <= SEEK_TOLERANCE_S, (
        f"{context}: landed at {outcome['seekedAt']:.3f} s"
    )
    assert outcome["frameMediaTime"] >= target - SEEK_TOLERANCE_S, (
        f"{context}: the first frame shown after the seek is from {outcome['frameMediaTime']:.3f} s"
    )
    assert outcome["readyState"] >= 2, (
        f"{context}: no current frame (readyState < HAVE_CURRENT_DATA)"
    )
    assert outcome["framesAfter"] > outcome["framesBefore"], f"{context}: no frame was decoded"


def play_and_seek(page: Page, base_url: str, video_id: str) -> None:
    """Load the page, play the video, then seek to 75 % and 95 % of it."""
    page.goto(f"{base_url}/")
    wait_for(
        page,
        video_id,
        "(id) => { const v = document.getElementById(id);"
        " return v.readyState >= 1 && Number.isFinite(v.duration) && v.duration > 0; }",
        video_id,
        "loadedmetadata with a finite duration",
    )

    start = page.evaluate(PLAY_JS, video_id)
    wait_for(
        page,
        video_id,
        "([id, t]) => document.getElementById(id).currentTime > t",
        [video_id, start],
        f"currentTime to advance past {start:.3f} s while playing",
    )

    state = video_state(page, video_id)
    seekable = state["seekable"]
    assert seekable and seekable[0][0] <= 0.0 and seekable[-1][1] >= state["duration"] - 0.1, (
        f"{video_id}: Chromium says the media is not seekable (seekable={seekable}, "
        f"duration={state['duration']}); it does that when the server does not answer "
        f"Range requests with 206. Video state: {state}"
    )

    seek(page, video_id, 0.75)
    seek(page, video_id, 0.95)


RANGE_SPEC_RE = re.compile(r"bytes=(\d+)-(\d*)")


def assert_ranges_served(exchanges: list[MediaExchange], path: str, size: int) -> None:
    """Every Range request the browser made for `path` was answered 206 with the bytes
    it asked for, and at least one asked for bytes past the start (a jump)."""
    ranged = [e for e in exchanges if e.range is not None]
    assert ranged, f"Chromium sent no Range request for {path}; responses seen: {exchanges}"
    content_range_re = re.compile(rf"bytes (\d+)-(\d+)/{size}")
    starts = []
    for exchange in ranged:
        assert exchange.status == 206, (
            f"{path}: Range {exchange.range!r} was answered {exchange.status}, not 206: {exchange}"
        )
        match = content_range_re.fullmatch(exchange.content_range or "")
        assert match, (
            f"{path}: 206 for Range {exchange.range!r} has Content-Range "
            f"{exchange.content_range!r}, expected 'bytes FIRST-LAST/{size}'"
        )
        first, last = int(match[1]), int(match[2])
        spec = RANGE_SPEC_RE.fullmatch(exchange.range or "")
        if spec is None:  # not a form Chromium sends today; only check it is sane
            assert 0 <= first <= last < size, (
                f"{path}: bad Content-Range {exchange.content_range!r}"
            )
            continue
        start = int(spec[1])
        end = min(int(spec[2]), size - 1) if spec[2] else size - 1
        assert (first, last) == (start, end), (
            f"{path}: Range {exchange.range!r} was answered with Content-Range "
            f"{exchange.content_range!r}, expected 'bytes {start}-{end}/{size}'"
        )
        starts.append(start)
    assert any(start > 0 for start in starts), (
        f"Chromium never asked {path} for a range past the first byte, so fetching by range "
        f"was not exercised; responses seen: {exchanges}"
    )


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize(("video_id", "path"), CASES)
def test_chromium_plays_and_seeks(
    page: Page, bustapi_url: str, video_file: Path, video_id: str, path: str
) -> None:
    exchanges = record_media_exchanges(page, path)
    base_url = f"{bustapi_url}/signed" if video_id == "signed-video" else bustapi_url
    try:
        play_and_seek(page, base_url, video_id)
    except AssertionError as error:
        raise AssertionError(f"{error}\nHTTP responses for {path}: {exchanges}") from None
    assert_ranges_served(exchanges, path, video_file.stat().st_size)


class _NoRangeHandler(http.server.SimpleHTTPRequestHandler):
    """The standard library's file handler, which ignores Range and always answers 200."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # Chromium hangs up on 200 bodies it no longer wants; that is expected here.


@pytest.fixture(scope="module")
def no_range_url(tmp_path_factory: pytest.TempPathFactory, video_file: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("no-range-site")
    (root / "static").mkdir()
    shutil.copyfile(video_file, root / "static" / "video.mp4")
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    handler = functools.partial(_NoRangeHandler, directory=str(root))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_negative_control_server_without_ranges_is_caught(
    page: Page, no_range_url: str, video_file: Path
) -> None:
    """The checks above must fail against a server that ignores Range."""
    exchanges = record_media_exchanges(page, "/static/video.mp4")
    with pytest.raises(AssertionError, match="not seekable"):
        play_and_seek(page, no_range_url, "static-video")
    with pytest.raises(AssertionError, match="answered 200, not 206"):
        assert_ranges_served(exchanges, "/static/video.mp4", video_file.stat().st_size)


# --------------------------------------------------------------------------- uploads

UPLOAD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upload</title></head>
<body>
  <form method="post" action="/upload" enctype="multipart/form-data">
    <input type="text" name="title" value="holiday">
    <input type="file" name="video">
    <button type="submit">Upload</button>
  </form>
</body></html>
"""


def test_chromium_uploads_a_200_mb_file_through_a_form(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A plain HTML form posts a 200 MB file; the engine streams it to a temp file,
    the view saves it (a rename), and the saved file is the same bytes."""
    import hashlib

    from bustapi import BustAPI, request
    from bustapi.testing import LiveServer

    root = tmp_path_factory.mktemp("upload-site")
    temp, dest = root / "tmp", root / "saved"
    temp.mkdir()
    dest.mkdir()
    source = root / "clip.mp4"
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    with open(source, "wb") as f:
        for i in range(200):
            piece = block[i:] + block[:i]  # no two MiB alike: a misplaced block shows
            f.write(piece)
            digest.update(piece)

    app = BustAPI(__name__)
    app.config["UPLOAD_TEMP_FOLDER"] = str(temp)

    @app.route("/")
    def index() -> str:
        return UPLOAD_PAGE

    @app.route("/upload", methods=["POST"], max_content_length=256 * 1024 * 1024)
    def upload() -> str:
        video = request.files["video"]
        video.save(dest / "clip.mp4")
        return f"<p id=done>{request.form['title']} {video.filename} {video.content_length}</p>"

    with LiveServer(app) as server:
        context = browser.new_context()
        context.set_default_timeout(120_000)
        try:
            page = context.new_page()
            page.goto(server.url + "/")
            page.set_input_files("input[type=file]", str(source))
            with page.expect_navigation():
                page.click("button")
            assert page.text_content("#done") == f"holiday clip.mp4 {200 * 1024 * 1024}"
        finally:
            context.close()
    saved = hashlib.sha256()
    with open(dest / "clip.mp4", "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            saved.update(chunk)
    assert saved.hexdigest() == digest.hexdigest(), "the saved file differs from the one sent"
    assert os.listdir(temp) == []


def test_demo_upload_form_adds_a_video_that_plays_and_seeks(
    page: Page, tmp_path_factory: pytest.TempPathFactory, video_file: Path
) -> None:
    """The demo page's upload form: Chromium posts the clip, the page then lists it,
    and the uploaded copy (served from the /uploads mount) plays and seeks."""
    from bustapi.demo.app import create_app
    from bustapi.testing import LiveServer

    uploads = tmp_path_factory.mktemp("demo-uploads")
    with LiveServer(create_app(str(uploads))) as server:
        page.goto(server.url + "/")
        page.set_input_files("#upload-form input[type=file]", str(video_file))
        with page.expect_navigation():
            page.click("#upload-form button")
        (saved,) = os.listdir(uploads)
        assert saved.endswith("-video.mp4")
        assert (uploads / saved).read_bytes() == video_file.read_bytes()
        path = f"/uploads/{saved}"
        exchanges = record_media_exchanges(page, path)
        try:
            play_and_seek(page, server.url, "upload-0")
        except AssertionError as error:
            raise AssertionError(f"{error}\nHTTP responses for {path}: {exchanges}") from None
        assert_ranges_served(exchanges, path, video_file.stat().st_size)
