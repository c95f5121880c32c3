"""Live updates across workers and replicas: webhooks, invalidations, last known good
(README, "Many replicas"). ``PromptMiddleware`` owns them: it answers the webhook and starts
and closes them in its lifespan; the sidecar adds ``/cache/invalidate`` behind its keys.
redis-py is imported only when a Redis URL is set.

The modules::

    webhook.py          Langfuse's signature check and event
    endpoints.py        the two doors: POST /webhooks/langfuse, POST /cache/invalidate
    bus.py              invalidations applied here and sent to the links
    apply.py            what an invalidation does to one engine (cache, local folder)
    workers.py          invalidations between the workers of one ``serve``
    redis_link.py       Redis: pub/sub fan-out, the write queue, the up/down watcher
    last_known_good.py  every fetched prompt kept in Redis for a replica whose store fails
    updates.py          the parts one process needs, from its settings, wired together
"""
