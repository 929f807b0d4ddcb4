"""Generated protobuf and gRPC modules for our ``ttn.lorawan.v3`` subset.

Everything else in this package is written by ``proto/generate.py`` from
``proto/ttn/lorawan/v3/*.proto``; regenerate instead of editing. Modules are
imported explicitly (``from gatewayserver.ttnpb import messages_pb2``) so that
importing the package does not load every descriptor.
"""
