"""The gRPC gateway frontend: `ttn.lorawan.v3.GtwGs.LinkGateway`, one bidirectional stream per gateway.

`translate` checks and fills the `ttn.lorawan.v3` messages a gateway sends (sans-I/O); `frontend` is the asyncio
shell that serves one stream: it connects the gateway to the core, feeds it what is read, and writes what the
core's outbox holds through a bounded send queue.
"""
