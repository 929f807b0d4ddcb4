"""The frontend-neutral gateway core, sans-I/O.

`connection.Connection` is one connected gateway, whatever protocol it speaks: identity, frequency plans,
scheduler, clock synchronisation, round-trip times, last status, statistics and counters. `gateways.GatewayCore`
holds the connections of one daemon and the pipeline they share (uplink tokens, events, metrics, the Network
Server). Frontends (`gatewayserver/io/*`) translate their wire format into calls on these and drain what they
produce; shells read the clock and arm one timer from `next_deadline()`. Nothing here reads a clock, arms a timer
or imports a frontend.

This `__init__` imports nothing, so a frontend may import `core.metrics` without pulling in the rest.
"""
