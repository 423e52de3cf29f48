"""Small helpers for application code: :func:`secure_filename` for uploads.

>>> secure_filename("../../etc/passwd")
'etc_passwd'
"""

from __future__ import annotations

import os
import re
import unicodedata

# What may remain of a name: ASCII letters, digits, and "_", "." and "-".
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

# Names Windows reserves in every folder (opening "CON.txt" opens the console).
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(10)] + [f"LPT{i}" for i in range(10)]
)


def secure_filename(filename: str) -> str:
    """A version of a client-supplied file name that is safe to join to a folder
    (``os.path.join(upload_dir, secure_filename(f.filename))``), with Werkzeug's
    rules: accents are dropped to their ASCII letters and other non-ASCII
    characters removed; path separators and runs of whitespace become ``_``;
    anything but letters, digits, ``_``, ``.`` and ``-`` is removed; leading and
    trailing dots and underscores go (so no ``..`` and no hidden files). On Windows a
    reserved device name gets a ``_`` prefix.

    The result may be empty (``secure_filename("../..") == ""``): pick a name of
    your own then.

    >>> secure_filename("My cool movie.mov")
    'My_cool_movie.mov'
    >>> secure_filename("i contain cool \\xfcml\\xe4uts.txt")
    'i_contain_cool_umlauts.txt'
    """
    # NFKD splits "ü" into "u" and a combining mark, which the ASCII step drops.
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    for sep in (os.sep, os.path.altsep):
        if sep:
            ascii_name = ascii_name.replace(sep, " ")
    joined = "_".join(ascii_name.split())
    safe = _UNSAFE.sub("", joined).strip("._")
    if os.name == "nt" and safe and safe.split(".")[0].upper() in _WINDOWS_DEVICES:
        safe = f"_{safe}"
    return safe


__all__ = ["secure_filename"]
