"""Gateway-facing protocols. Each protocol has a sans-I/O codec and translation plus a thin asyncio shell."""
