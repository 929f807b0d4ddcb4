"""The Semtech UDP packet forwarder protocol.

`packets` frames and unframes datagrams, `translate` maps their JSON bodies to and from `ttn.lorawan.v3`
messages. Both are sans-I/O: they take bytes, dicts, numbers and explicit times.
"""
