"""BustAPI video streaming demo: a page with a playable, seekable video.

Everything here is the seed's public API, unchanged:

* ``static/`` is a static folder: ``/static/video.mp4`` supports Range requests;
* ``/video/sample`` streams the same video through a ``send_file`` route;
* ``/download`` sends a CSV as an attachment with ``FileResponse``;
* ``/upload`` takes a video from a form (the engine streams it to disk), which is
  then served, seekable, from the ``/uploads`` mount;
* ``/protected/video.mp4`` is the same clip behind a signed, expiring URL that
  the page hands out and the engine checks on every range request, paced at
  twice the clip's bitrate (``rate="auto"``).

Uploads go to ``$BUSTAPI_DEMO_UPLOADS``, by default a folder in the system's temp
directory.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from datetime import timedelta
from typing import Optional

from bustapi import (
    BustAPI,
    FileResponse,
    Response,
    abort,
    redirect,
    render_template,
    request,
    send_file,
)
from bustapi.utils import secure_filename

HERE = os.path.dirname(os.path.abspath(__file__))
# id -> file; a real app would look this up in its catalogue.
VIDEOS = {"sample": os.path.join(HERE, "static", "video.mp4")}
# What a browser's <video> can play; anything else is refused with 400.
VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg"}


def default_uploads() -> str:
    return os.environ.get("BUSTAPI_DEMO_UPLOADS") or os.path.join(
        tempfile.gettempdir(), "bustapi-demo-uploads"
    )


def create_app(uploads: Optional[str] = None) -> BustAPI:
    """The demo app; ``uploads`` is where uploaded videos are kept."""
    uploads = os.path.abspath(uploads or default_uploads())
    os.makedirs(uploads, exist_ok=True)
    app = BustAPI(__name__, static_folder="static")
    # Uploaded videos are served by the engine too: ranges, seeking, no Python per request.
    app.add_static("/uploads", uploads)
    # Protected media: only signed URLs, checked by the engine; paced so an abandoned
    # tab stops pulling at about twice the playback speed (after a quick first 200 kB).
    # A fresh key per process: links from a previous run stop working, as they should.
    app.config["SIGNING_KEYS"] = [os.environ.get("BUSTAPI_DEMO_SIGNING_KEY") or secrets.token_hex()]
    app.add_static(
        "/protected",
        os.path.join(HERE, "static"),
        signed=True,
        rate="auto",
        rate_after=200_000,
    )
    # The form's own limit: a few hundred MB of video, not the 16 MiB default.
    upload_limit = 512 * 1024 * 1024

    @app.route("/")
    def index() -> str:
        names = sorted(
            (n for n in os.listdir(uploads) if os.path.splitext(n)[1].lower() in VIDEO_TYPES),
            key=lambda n: os.path.getmtime(os.path.join(uploads, n)),
        )
        # A real app would check the viewer's login here, once; the player's range
        # requests then go to the engine alone.
        signed = app.sign_url("/protected/video.mp4", expires_in=timedelta(hours=1))
        return render_template(
            "index.html", uploads=names, limit_mb=upload_limit >> 20, signed_video=signed
        )

    @app.route("/upload", methods=["POST"], max_content_length=upload_limit)
    def upload() -> Response:
        video = request.files.get("video")
        if video is None or not video.filename:
            abort(400, "choose a video file to upload")
        name = secure_filename(video.filename)
        stem, ext = os.path.splitext(name)
        if ext.lower() not in VIDEO_TYPES:
            abort(400, f"not a video this page can play ({', '.join(sorted(VIDEO_TYPES))})")
        # A short random prefix: two uploads of "clip.mp4" never overwrite each other.
        name = f"{uuid.uuid4().hex[:8]}-{stem or 'video'}{ext.lower()}"
        video.save(os.path.join(uploads, name))  # a rename of the engine's temp file
        return redirect("/#uploads")

    register_seed_routes(app)
    return app


def register_seed_routes(app: BustAPI) -> None:
    """The seed's send_file and FileResponse examples."""
    app.add_url_rule("/video/<id>", view_func=stream_video)
    app.add_url_rule("/download", view_func=download_large_file)
    app.add_url_rule("/hello", view_func=hello)


def stream_video(id: str) -> FileResponse:
    file_path = VIDEOS.get(id)
    if file_path is None:
        abort(404)
    return send_file(file_path, mimetype="video/mp4")


def download_large_file() -> FileResponse:
    return FileResponse(
        path=os.path.join(HERE, "data", "dataset.csv"),
        filename="custom_name.csv",
        media_type="text/csv",
        content_disposition_type="attachment",
    )


def hello() -> dict[str, str]:
    return {"message": "Hello, world!"}


app = create_app()

if __name__ == "__main__":
    app.run()
