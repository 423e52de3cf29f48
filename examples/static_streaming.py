"""Static file streaming: every file in ``static/`` supports Range requests.

Put a video at ``examples/static/video.mp4`` and open http://127.0.0.1:5000/.
"""

import os

from bustapi import BustAPI

# Files in "static/" are automatically streamable
app = BustAPI(static_folder="static")


@app.route("/")
def page() -> str:
    # The seed's HTML5 video example (examples/video.html).
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "video.html")) as f:
        return f.read()


if __name__ == "__main__":
    app.run()
