"""``app.logger``: a standard ``logging.Logger`` named after the application.

When neither the app's logger nor the root logger has a handler, a stderr
handler is attached (``[time] LEVEL in module: message``), so errors are never
silently dropped; configure ``logging`` before creating the app to take over.
In debug mode the level is ``DEBUG`` if none was set.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .app import BustAPI


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is *now*, not the one at import time, so a
    click runner or pytest capturing stderr also captures the app's log lines."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ assigns it; the property always answers


default_handler = _StderrHandler()
default_handler.setFormatter(
    logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s")
)


def has_level_handler(logger: logging.Logger) -> bool:
    """Whether a handler up the logger's hierarchy handles its effective level."""
    level = logger.getEffectiveLevel()
    current: Optional[logging.Logger] = logger
    while current is not None:
        if any(handler.level <= level for handler in current.handlers):
            return True
        if not current.propagate:
            break
        current = current.parent
    return False


def create_logger(app: BustAPI) -> logging.Logger:
    """The logger for ``app``: ``logging.getLogger(app.name)``."""
    logger = logging.getLogger(app.name)
    if app.debug and not logger.level:
        logger.setLevel(logging.DEBUG)
    elif not logger.level and logger.getEffectiveLevel() > logging.INFO:
        # Errors and the server's own notices must show without configuration.
        logger.setLevel(logging.INFO)
    if not has_level_handler(logger):
        logger.addHandler(default_handler)
    return logger
