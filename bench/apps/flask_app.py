"""The same app in Flask (WSGI), run under gunicorn's gthread worker.

gunicorn -k gthread --workers 1 --threads 8 -b 127.0.0.1:18004 flask_app:app
"""

from __future__ import annotations

import os

from flask import Flask, redirect, render_template, request, send_file, session, url_for

FIXTURES = os.environ.get("BENCH_STATIC", "/tmp/bustapi-bench/static")
# The same key in every app of the benchmark: bench.py signs one session cookie with
# it (Flask's format) and sends it to each server.
SECRET_KEY = "bench-secret-key"
# What the logged-in page lists: 20 rows, each with a url_for link.
ITEMS = [{"id": i, "name": f"Video {i} <clip>"} for i in range(20)]

# Where /upload saves (Werkzeug parses uploads into temp files in the system temp folder).
UPLOADS = os.path.join(os.path.dirname(FIXTURES), "uploads")
os.makedirs(UPLOADS, exist_ok=True)

app = Flask(__name__, static_folder=FIXTURES, static_url_path="/static")
app.secret_key = SECRET_KEY


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


@app.route("/upload", methods=["POST"])
def upload():
    """A multipart upload, saved under UPLOADS as flask.bin (MAX_CONTENT_LENGTH is unset)."""
    f = request.files["f"]
    path = os.path.join(UPLOADS, "flask.bin")
    f.save(path)
    return {"size": os.path.getsize(path)}
