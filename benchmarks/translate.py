"""Cost of the uplink hot path per uplink: frame, JSON, translation to UplinkMessage, protobuf serialization.

Run: .venv/bin/python benchmarks/translate.py [--tokens]
"""

from __future__ import annotations

import argparse
import time

import orjson

from gatewayserver.io.udp.packets import encode_push_data, parse_datagram
from gatewayserver.io.udp.translate import uplinks_from_rxpk
from gatewayserver.tokens import UplinkTokens
from gatewayserver.ttnpb.identifiers_pb2 import GatewayIdentifiers

RXPK = {
    "tmst": 3512348611,
    "chan": 2,
    "rfch": 0,
    "freq": 868.5,
    "stat": 1,
    "modu": "LORA",
    "datr": "SF7BW125",
    "codr": "4/5",
    "rssi": -35,
    "lsnr": 5.1,
    "size": 23,
    "data": "QAQDAgGAAQABqqu8zd3u/wARIjNEVWY=",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--tokens", action="store_true", help="also issue an HMAC-authenticated uplink token")
    args = parser.parse_args()

    datagram = encode_push_data(2, b"\x12\x34", bytes.fromhex("0102030405060708"), orjson.dumps({"rxpk": [RXPK]}))
    ids = GatewayIdentifiers()
    ids.gateway_id = "eui-0102030405060708"
    ids.eui = bytes.fromhex("0102030405060708")
    tokens = UplinkTokens(b"k" * 32) if args.tokens else None
    received_at = 1_795_000_000_123_456_789

    def once() -> None:
        d = parse_datagram(datagram)
        body = orjson.loads(d.body)
        for up in uplinks_from_rxpk(body["rxpk"], ids, received_at, tokens=tokens):
            up.SerializeToString()

    for _ in range(2000):
        once()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(args.n // 5):
            once()
        best = min(best, (time.perf_counter() - start) / (args.n // 5))
    print(f"{best * 1e6:.2f} us per uplink (parse_datagram + orjson.loads + uplinks_from_rxpk + SerializeToString"
          f"{', with uplink token' if args.tokens else ''})")


if __name__ == "__main__":
    main()
