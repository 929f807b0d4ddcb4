"""LoRaWAN Gateway Server: Semtech UDP in, ttn.lorawan.v3 gRPC out."""
__version__ = "0.1.0"
