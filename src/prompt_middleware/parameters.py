"""The chat-completions request parameters a prompt config or a model-list entry may set."""

from __future__ import annotations

__all__ = ["CHAT_COMPLETION_PARAMETERS"]

# The body fields of OpenAI's POST /chat/completions other than model and messages. A config
# key outside this set (a Langfuse config also holds notes, schemas, tool definitions for
# other uses) is never sent: an upstream would reject it or, worse, act on it.
CHAT_COMPLETION_PARAMETERS: frozenset[str] = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
