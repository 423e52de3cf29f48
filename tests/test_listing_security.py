"""Directory listings of ``python -m bustapi serve`` with hostile file names.

Every link must be a relative path reference no browser can read as a URL
scheme (``javascript:``, ``notes:``), every name must be HTML-escaped in text and
attributes, and following each link must serve exactly that file. The listing is
parsed with ``html.parser`` (as a browser tokenises it), never matched as text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from conftest import http_request, start_server, stop_process

# Names a user may well have on disk; each must be listed, linked and served.
HOSTILE_NAMES = [
    "javascript:alert(document.domain)",
    "notes:2024.txt",
    "data:text",
    "mailto:me@example.com",
    'quote"onmouseover="alert(1).txt',
    "apo'strophe.txt",
    "<img src=x onerror=alert(1)>",
    "a&amp;b&lt;.txt",
    "hash#frag.txt",
    "what?x=1.txt",
    "100%.txt",
    "%2e%2e",
    "two  spaces .txt",
    "ünïcødé ☃ 日本語.txt",
    "`tick`{brace}.txt",
]
# Names with control characters or a backslash cannot be served (the path
# resolver answers 400 for them), so they must not be offered as links at all.
UNSERVABLE_NAMES = ["new\nline.txt", "tab\there.txt", "back\\slash.txt"]
HOSTILE_DIR = "javascript:alert(1)<b>"


class Links(HTMLParser):
    """Every ``<a>`` with its href and text, and every start tag seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            hrefs = [v for k, v in attrs if k == "href"]
            assert len(hrefs) == 1 and hrefs[0] is not None, attrs
            assert [k for k, _ in attrs] == ["href"], f"extra attributes injected: {attrs}"
            self._href, self._text = hrefs[0], []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text)))
            self._href = None


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    parser.close()
    return parser


def content(name: str) -> bytes:
    return f"bytes of {name!r}\n".encode()


@pytest.fixture(scope="module")
def hostile_share(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("hostile") / "share"
    root.mkdir()
    for name in HOSTILE_NAMES + UNSERVABLE_NAMES:
        (root / name).write_bytes(content(name))
    (root / HOSTILE_DIR).mkdir()
    (root / HOSTILE_DIR / "inner:file.txt").write_bytes(content("inner:file.txt"))
    log = root.parent / "stderr.log"
    with open(log, "w") as err:
        proc, port, _ = start_server(
            [sys.executable, "-m", "bustapi", "serve", str(root), "--port", "0"], root.parent, err
        )
    try:
        yield port, root
    finally:
        stop_process(proc)


def listing(port: int, url: str) -> Links:
    r = http_request(port, "GET", url)
    assert r.status == 200, (url, r.status, r.body[:200])
    return parse(r.text)


def assert_safe_relative(href: str) -> None:
    """A relative-path reference: no scheme, no authority, no query, no fragment,
    and no ``:`` a browser could take as the end of a scheme."""
    parts = urlsplit(href)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("", "", "", ""), href
    assert ":" not in href, f"{href!r} could be read as a URL scheme"
    assert not href.startswith("/"), href
    assert href == href.strip() and not any(c.isspace() for c in href), href


def follow(port: int, page_url: str, href: str) -> bytes:
    """What a browser fetches for ``href`` on the page at ``page_url``."""
    target = urljoin(f"http://127.0.0.1:{port}{page_url}", href)
    parts = urlsplit(target)
    assert parts.netloc == f"127.0.0.1:{port}", target
    r = http_request(port, "GET", parts.path)
    assert r.status == 200, (href, target, r.status, r.body[:200])
    return r.body


def test_every_hostile_name_is_a_safe_link_to_its_own_bytes(
    hostile_share: tuple[int, Path],
) -> None:
    port, _ = hostile_share
    page = listing(port, "/")
    by_text = dict((text, href) for href, text in page.links)
    for name in HOSTILE_NAMES:
        assert name in by_text, f"{name!r} is not listed (text seen: {sorted(by_text)})"
        href = by_text[name]
        assert_safe_relative(href)
        assert unquote(href) == name, (name, href)
        assert follow(port, "/", href) == content(name), name


def test_names_never_become_markup(hostile_share: tuple[int, Path]) -> None:
    port, _ = hostile_share
    for url in ("/", "/" + "".join(f"%{b:02X}" for b in HOSTILE_DIR.encode()) + "/"):
        page = listing(port, url)
        assert "img" not in page.tags and "b" not in page.tags, (url, page.tags)


def test_hostile_directory_links_and_its_listing(hostile_share: tuple[int, Path]) -> None:
    port, _ = hostile_share
    page = listing(port, "/")
    href = dict((text, href) for href, text in page.links)[HOSTILE_DIR + "/"]
    assert_safe_relative(href)
    assert href.endswith("/")
    dir_url = urlsplit(urljoin(f"http://127.0.0.1:{port}/", href)).path
    inner = listing(port, dir_url)
    links = dict((text, href) for href, text in inner.links)
    assert links["../"] == "../"
    inner_href = links["inner:file.txt"]
    assert_safe_relative(inner_href)
    assert follow(port, dir_url, inner_href) == content("inner:file.txt")


def test_unservable_names_are_not_offered(hostile_share: tuple[int, Path]) -> None:
    port, root = hostile_share
    page = listing(port, "/")
    texts = {text for _, text in page.links}
    for name in UNSERVABLE_NAMES:
        assert (root / name).exists()
        assert name not in texts
    # Every link on the page leads to a file or folder that is really served.
    for href, _ in page.links:
        assert_safe_relative(href)
        follow(port, "/", href)
