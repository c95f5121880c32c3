"""Prompt stores: one module per backend behind the :class:`PromptStore` protocol."""

from prompt_middleware.stores.base import PromptStore
from prompt_middleware.stores.local import LocalPromptStore

__all__ = ["LocalPromptStore", "PromptStore"]
