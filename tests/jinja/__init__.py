"""The sandboxed Jinja renderer of `.prompt` bodies and Humanloop `jinja` templates."""
