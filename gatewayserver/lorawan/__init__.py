"""LoRaWAN frame handling the Gateway Server needs (parsing only; no keys, no crypto)."""

from gatewayserver.lorawan.phypayload import PayloadError, parse_phypayload

__all__ = ["PayloadError", "parse_phypayload"]
