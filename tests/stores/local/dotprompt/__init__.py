"""LiteLLM's `.prompt` files in the local folder: Jinja bodies, versioned files, input schemas."""
