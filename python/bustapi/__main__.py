"""``python -m bustapi``: the same command as the ``bustapi`` script (see
:mod:`bustapi.cli` and :mod:`bustapi.commands`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
