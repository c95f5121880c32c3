"""structlog configuration for the command-line programs; the library itself only logs.

Logs go to stderr: stdout carries a command's output (``render``'s body). They are set up
twice: before the settings load, at the level the environment asks for (a warning the loader
logs, such as ``config_sections_ignored``, must not reach stdout), then at the settings' level.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

__all__ = ["configure_early_logging", "configure_logging"]

_LEVELS = logging.getLevelNamesMapping()


def configure_early_logging() -> None:
    """Log to stderr before the settings are loaded (``PROMPT_MIDDLEWARE_LOG_LEVEL``, or info)."""
    level = os.environ.get("PROMPT_MIDDLEWARE_LOG_LEVEL", "info").strip().upper()
    # Not cached: loggers used now must follow the configuration made once settings load.
    _configure(_LEVELS.get(level, logging.INFO), cache=False)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``."""
    _configure(_LEVELS[level.upper()], cache=True)


def _configure(level: int, *, cache: bool) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=cache,
    )
