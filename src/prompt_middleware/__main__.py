"""``python -m prompt_middleware`` runs the ``prompt-middleware`` command."""

import sys

from prompt_middleware.sidecar.cli import main

sys.exit(main())
