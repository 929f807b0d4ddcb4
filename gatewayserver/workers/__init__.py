"""Several worker processes as one Gateway Server (`gatewayserver run --workers N`).

The kernel steers each Semtech datagram to the worker that owns its gateway EUI (an `SO_REUSEPORT` group with a
classic BPF program), so every datagram of a gateway meets the same connection state; calls that arrive at another
worker are forwarded to the owner over an internal framed connection on a Unix socket (`transport.py`). `spec` is
what the supervisor and the workers agree on: who owns which gateway, where each worker listens, and how they prove
who they are.
"""
