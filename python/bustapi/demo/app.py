"""BustAPI video streaming demo: a page with a playable, seekable video.

Everything here is the seed's public API, unchanged:

* ``static/`` is a static folder: ``/static/video.mp4`` supports Range requests;
* ``/video/sample`` streams the same video through a ``send_file`` route;
* ``/download`` sends a CSV as an attachment with ``FileResponse``.
"""

from __future__ import annotations

import os

from bustapi import BustAPI, FileResponse, abort, send_file

HERE = os.path.dirname(os.path.abspath(__file__))
# id -> file; a real app would look this up in its catalogue.
VIDEOS = {"sample": os.path.join(HERE, "static", "video.mp4")}

app = BustAPI(__name__, static_folder="static")


@app.route("/")
def index() -> str:
    with open(os.path.join(HERE, "templates", "index.html"), encoding="utf-8") as f:
        return f.read()


@app.route("/video/<id>")
def stream_video(id: str) -> FileResponse:
    file_path = VIDEOS.get(id)
    if file_path is None:
        abort(404)
    return send_file(file_path, mimetype="video/mp4")


@app.route("/download")
def download_large_file() -> FileResponse:
    return FileResponse(
        path=os.path.join(HERE, "data", "dataset.csv"),
        filename="custom_name.csv",
        media_type="text/csv",
        content_disposition_type="attachment",
    )


@app.route("/hello")
def hello() -> dict[str, str]:
    return {"message": "Hello, world!"}


if __name__ == "__main__":
    app.run()
