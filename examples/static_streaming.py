"""Static file streaming: every file in ``static/`` supports Range requests.

Put a video at ``examples/static/video.mp4`` and open http://127.0.0.1:5000/.
"""

from bustapi import BustAPI

# Files in "static/" are automatically streamable
app = BustAPI(static_folder="static")


@app.route("/")
def page() -> str:
    return """<!doctype html>
<title>BustAPI static video</title>
<video width="640" height="360" controls>
    <source src="/static/video.mp4" type="video/mp4">
    Your browser does not support the video tag.
</video>
"""


if __name__ == "__main__":
    app.run()
