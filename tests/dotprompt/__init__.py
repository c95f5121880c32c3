"""LiteLLM's dotprompt folder, restated: Jinja bodies, versioned files, input schemas."""
