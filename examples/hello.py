"""The seed's "hello" app: ``python examples/hello.py`` then open http://127.0.0.1:5000/."""

from bustapi import BustAPI

app = BustAPI()


@app.route("/")
def index() -> dict[str, str]:
    return {"message": "Hello, world!"}


if __name__ == "__main__":
    app.run()
