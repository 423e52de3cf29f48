"""The seed app, as the benchmark runs it: a JSON view, a static folder and send_file.

    python bench/apps/bustapi_app.py --host 127.0.0.1 --port 18001
    python bench/apps/bustapi_app.py --port 18007 --no-sendfile      # the copy path
    python bench/apps/bustapi_app.py --port 18008 --tls cert.pem key.pem  # HTTPS, h2 by ALPN

``BENCH_STATIC`` is the fixture directory (served at ``/static``; ``/video/<id>``
sends ``<id>.mp4`` from it). BustAPI runs with ``workers=1`` and its default threads.
"""

from __future__ import annotations

import argparse
import os

from bustapi import BustAPI, redirect, render_template, request, send_file, session, url_for

FIXTURES = os.environ.get("BENCH_STATIC", "/tmp/bustapi-bench/static")
# The same key in every app of the benchmark: bench.py signs one session cookie with
# it (Flask's format) and sends it to each server.
SECRET_KEY = "bench-secret-key"
# What the logged-in page lists: 20 rows, each with a url_for link.
ITEMS = [{"id": i, "name": f"Video {i} <clip>"} for i in range(20)]

# Where /upload saves; the engine writes uploads to temp files in the same folder,
# so saving one is a rename.
UPLOADS = os.path.join(os.path.dirname(FIXTURES), "uploads")
os.makedirs(UPLOADS, exist_ok=True)

app = BustAPI(static_folder=FIXTURES)
app.secret_key = SECRET_KEY
app.config["UPLOAD_TEMP_FOLDER"] = UPLOADS
# The same files behind signed URLs (range_1mib_signed: the cost of the engine's
# signature check next to range_1mib_static). bench.py sends one fixed signed URL.
app.config["SIGNING_KEYS"] = ["bench-signing-key"]
app.add_static("/signed", FIXTURES, signed=True)


@app.route("/hello")
def hello():
    return {"message": "Hello, world!"}


@app.route("/page")
def page():
    """A logged-in page: the session cookie is read, a template loops over 20 rows."""
    if "user_id" not in session:
        return redirect(url_for("login"))
    return render_template("page.html", title="Library", items=ITEMS)


@app.route("/login")
def login():
    session["user_id"] = 1
    session["name"] = "Ada"
    return redirect(url_for("page"))


@app.route("/item/<int:item_id>")
def item(item_id):
    return {"id": item_id}


@app.route("/video/<id>")
def stream_video(id):
    return send_file(f"{FIXTURES}/{id}.mp4", mimetype="video/mp4")


@app.route("/upload", methods=["POST"], max_content_length=2 << 30)
def upload():
    """A multipart upload (up to 2 GiB), saved under UPLOADS as bustapi.bin."""
    f = request.files["f"]
    f.save(os.path.join(UPLOADS, "bustapi.bin"))
    return {"size": f.content_length}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18001)
    # The same app with file bodies copied through user space instead of sendfile(2),
    # so the bench can put both file paths side by side.
    parser.add_argument("--no-sendfile", action="store_true")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    options: dict = {}
    if args.no_sendfile:
        options["sendfile"] = False
    if args.tls:
        options["ssl_context"] = tuple(args.tls)
    app.run(args.host, args.port, workers=1, **options)
