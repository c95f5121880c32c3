"""Live updates across workers and replicas: webhooks, invalidations, last known good.

The modules::

    webhook.py          Langfuse's signature check and event
    bus.py              invalidations applied here and sent to the links
    redis_link.py       Redis: pub/sub fan-out, the write queue, the up/down watcher
    last_known_good.py  every fetched prompt kept in Redis for a replica whose store fails
    workers.py          invalidations between the workers of one ``serve``
"""
