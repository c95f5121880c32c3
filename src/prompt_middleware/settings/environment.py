"""Settings from environment variables: which variable sets which field, and its conversion.

A field ``x`` is set by ``PROMPT_MIDDLEWARE_X`` unless a store kind (``stores/kinds.py``) or
:data:`_OWN_NAMES` names its variables. A bad value fails with the variable's name and the
value (a secret prints as ``**********``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.settings.records import MASK, Secret, decode_secret
from prompt_middleware.stores.kinds import STORE_KINDS

__all__ = ["EnvironmentReader"]

PREFIX: Final = "PROMPT_MIDDLEWARE_"
_OWN_NAMES: Final[dict[str, tuple[str, ...]]] = {"config_file": (PREFIX + "CONFIG",)}
# Fields the config file sets, never a variable.
_FROM_FILE_ONLY: Final = frozenset({"model_list", "prompts", "experiments"})
# Comma-separated lists.
_LIST_FIELDS: Final = frozenset({"routes", "prewarm", "api_keys", "stores"})
_SECRET_TYPES: Final = (Secret, Secret | None, tuple[Secret, ...])


class EnvironmentReader:
    """Reads the fields of one settings class; built once, when the class is defined."""

    def __init__(self, fields: tuple[msgspec.structs.FieldInfo, ...]) -> None:
        special = dict(_OWN_NAMES)
        for kind in STORE_KINDS:
            special.update(kind.environment)
        # Field -> the variables that set it, the first one found wins.
        self._names = {
            field.name: special.get(field.name, (PREFIX + field.name.upper(),))
            for field in fields
            if field.name not in _FROM_FILE_ONLY
        }
        self._types = {field.name: field.type for field in fields}

    def read(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """The fields ``environ`` sets (an empty variable is unset), converted."""
        values: dict[str, Any] = {}
        for field, names in self._names.items():
            found = next(
                ((name, environ[name]) for name in names if environ.get(name, "") != ""), None
            )
            if found is not None:
                values[field] = self._convert(found[0], found[1], field)
        return values

    def _convert(self, name: str, raw: str, field: str) -> Any:
        value: Any = raw.strip()
        if field in _LIST_FIELDS:
            value = tuple(item.strip() for item in raw.split(",") if item.strip())
        type_ = self._types[field]
        try:
            return msgspec.convert(value, type_, strict=False, dec_hook=decode_secret)
        except msgspec.ValidationError as exc:
            shown = MASK if type_ in _SECRET_TYPES else repr(raw)
            reason = str(exc).split(" - at ", 1)[0]
            raise ConfigurationError(f"{name}={shown} is invalid: {reason}.") from None
