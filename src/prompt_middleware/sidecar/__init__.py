"""The sidecar: ``prompt-middleware serve``, the middleware in front of the embedded forwarder.

Everything here is for the standalone server (the forwarder, the echo upstream, metrics, the
command line); the library core (the middleware, the transport, the engine) never imports it.
"""

from prompt_middleware.sidecar.app import Sidecar, create_app_from_env

__all__ = ["Sidecar", "create_app_from_env"]
