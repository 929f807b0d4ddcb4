"""Several instances as one Gateway Server: what they share through Redis and how they find each other.

Without `redis_url` nothing here runs. With it, each instance keeps its own gateways' state as one process does
and uses Redis for what the others need to see (who owns a gateway, events, connection stats).
"""
