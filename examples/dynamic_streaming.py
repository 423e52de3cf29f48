"""Dynamic file streaming with ``send_file`` (protected content, files outside
the static folder). Run from a directory containing ``secure_storage/videos/``."""

from bustapi import BustAPI, FileResponse, send_file

app = BustAPI()


@app.route("/video/<id>")
def stream_video(id: str) -> FileResponse:
    # Determine file path based on ID
    file_path = f"secure_storage/videos/{id}.mp4"

    # helper `send_file` returns a FileResponse
    return send_file(file_path, mimetype="video/mp4")


if __name__ == "__main__":
    app.run()
