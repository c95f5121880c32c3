"""The sidecar: ``prompt-middleware serve``, the middleware in front of the embedded forwarder.

Everything here is for the standalone server; the library core (the middleware, the
transport, the engine, the stores) never imports it.

    app.py        ``Sidecar``: its own endpoints (probes, metrics), the sidecar keys, then the
                  middleware in front of the forwarder or the echo upstream
    forwarder/    the embedded forwarder (aiohttp)
    echo.py       ``--echo``: the rewritten request answered as a completion
    metrics.py    Prometheus metrics, an ``Observer``
    cli.py        the ``prompt-middleware`` command (``serve``, ``render``)
    logs.py       structlog to stderr for the command
"""

from prompt_middleware.sidecar.app import Endpoint, Sidecar, create_app_from_env

__all__ = ["Endpoint", "Sidecar", "create_app_from_env"]
