"""``python -m bustapi demo``, as the README's Quick start starts it."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from conftest import http_request, start_server, stop_process


def test_demo_logs_the_range_requests_it_describes(tmp_path: Path) -> None:
    # The demo page tells the user that every seek is a 206; the access log shows it.
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc, port, _ = start_server(
            [sys.executable, "-m", "bustapi", "demo", "--port", "0"], tmp_path, err
        )
    try:
        r = http_request(port, "GET", "/video/sample", {"Range": "bytes=100-199"})
        assert r.status == 206 and len(r.body) == 100
        assert http_request(port, "GET", "/static/video.mp4", {"Range": "bytes=0-"}).status == 206
        patterns = [
            r'127\.0\.0\.1 "GET /video/sample HTTP/1\.1" 206 100 bytes=100-199 [\d.]+ms',
            r'127\.0\.0\.1 "GET /static/video\.mp4 HTTP/1\.1" 206 \d+ bytes=0- [\d.]+ms',
        ]
        deadline = time.monotonic() + 10
        while not all(re.search(p, log.read_text()) for p in patterns):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        stop_process(proc)


def test_demo_upload_refuses_what_it_cannot_play_and_keeps_names_safe(tmp_path: Path) -> None:
    import io

    from bustapi.demo.app import create_app

    uploads = tmp_path / "uploads"
    client = create_app(str(uploads)).test_client()
    assert client.post("/upload", data={}).status_code == 400
    r = client.post("/upload", data={"video": (io.BytesIO(b"MZ..."), "setup.exe")})
    assert r.status_code == 400 and "not a video" in r.text
    r = client.post("/upload", data={"video": (io.BytesIO(b"\0" * 100), "../../évil clip.MP4")})
    assert r.status_code == 302 and r.headers["Location"] == "/#uploads"
    (saved,) = [p.name for p in uploads.iterdir()]
    assert re.fullmatch(r"[0-9a-f]{8}-evil_clip\.mp4", saved), saved
    page = client.get("/").text
    assert f'src="/uploads/{saved}"' in page
    r = client.get(f"/uploads/{saved}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.data == b"\0" * 10


def test_demo_page_hands_out_a_signed_link_the_engine_checks(tmp_path: Path) -> None:
    from bustapi.demo.app import create_app

    client = create_app(str(tmp_path)).test_client()
    page = client.get("/").get_data(as_text=True)
    m = re.search(r'id="signed-video"[^>]*src="([^"]+)"', page)
    assert m, page
    src = m.group(1).replace("&amp;", "&")
    assert re.fullmatch(r"/protected/video\.mp4\?expires=\d+&signature=[\w-]+", src)
    r = client.get(src, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.data) == 100
    assert client.get("/protected/video.mp4").status_code == 403
    tampered = src.replace("expires=", "expires=1")
    assert client.get(tampered).status_code == 403
