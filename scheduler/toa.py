"""Time-on-air in integer nanoseconds, computed with integer arithmetic only.

Why integers: the scheduler adds and compares durations against a 1 h duty-cycle window and against each other
(no-overlap); float durations drift by a nanosecond here and there and make "exactly at the limit" flaky. Every
LoRa duration here is a whole number of quarter-symbols, so we count quarter-symbols exactly and convert to
nanoseconds once, rounding up (a transmission is never assumed shorter than it is).

Formulas (facts, rewritten here):
- LoRa sub-GHz (125/250/500 kHz): Semtech SX127x/SX126x datasheets. Symbols =
  preamble + 4.25 (+2 for SF5/SF6) + 8 + max(ceil((8PL + 16CRC - 4SF + 8[SF>=7] + 20[explicit]) /
  (4(SF - 2DE))), 0) * (CR + 4), with DE (low data rate optimisation) on when the symbol lasts >= 16 ms.
- LoRa 2.4 GHz (203.125/406.25/812.5/1625 kHz): SX1280 datasheet; DE is implied for SF11/SF12 at every bandwidth;
  the long-interleaver coding rates ("4/5LI", "4/6LI", "4/8LI") use their own payload formula.
- FSK (LoRaWAN): preamble 5 bytes + sync word 3 + length 1 + CRC 2 around the payload.
- LR-FHSS: 114-bit headers (3 for CR 1/3 and 1/2, 2 for CR 2/3 and 5/6) plus 50-bit blocks carrying 48 coded
  bits each, at 488.28125 bit/s; whole blocks are counted, which matches The Things Stack's figures.
"""

from __future__ import annotations

from .errors import (
    InvalidBandwidth,
    InvalidBitRate,
    InvalidCodingRate,
    InvalidPayloadSize,
    InvalidSpreadingFactor,
)

NS_PER_S = 1_000_000_000

SUB_GHZ_BANDWIDTHS = frozenset({125_000, 250_000, 500_000})
ISM2400_BANDWIDTHS = frozenset({203_125, 406_250, 812_500, 1_625_000})

# Coding rate string -> number of coded bits per 4 data bits.
_CODING_RATES = {"4/5": 5, "4/6": 6, "4/7": 7, "4/8": 8}
# "4/7LI" is how some tables (and TTS) spell the 4/8 long-interleaver rate.
_LI_CODING_RATES = {"4/5LI": 5, "4/6LI": 6, "4/8LI": 8, "4/7LI": 8}

MAX_LORA_PAYLOAD = 255


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_payload(payload_size: int, maximum: int = MAX_LORA_PAYLOAD) -> None:
    if not isinstance(payload_size, int) or isinstance(payload_size, bool) or not 0 <= payload_size <= maximum:
        raise InvalidPayloadSize(payload_size)


def low_data_rate_optimization(spreading_factor: int, bandwidth_hz: int) -> bool:
    """Whether the radio must run with low-data-rate optimisation (DE=1).

    Sub-GHz: symbol time 2^SF/BW >= 16 ms (SF11/SF12 at 125 kHz, SF12 at 250 kHz). 2.4 GHz: SF11 and SF12.
    """
    if bandwidth_hz in ISM2400_BANDWIDTHS:
        return spreading_factor >= 11
    return (1 << spreading_factor) * 1000 >= 16 * bandwidth_hz


def lora_symbols_quarters(
    payload_size: int,
    spreading_factor: int,
    bandwidth_hz: int,
    coding_rate: str,
    *,
    crc: bool = True,
    preamble: int = 8,
    implicit_header: bool = False,
) -> int:
    """Total packet length in quarter-symbols (exact); exposed for tests and for callers that want symbols."""
    sf = spreading_factor
    if not isinstance(sf, int) or isinstance(sf, bool) or not 5 <= sf <= 12:
        raise InvalidSpreadingFactor(spreading_factor)
    ism2400 = bandwidth_hz in ISM2400_BANDWIDTHS
    if not ism2400 and bandwidth_hz not in SUB_GHZ_BANDWIDTHS:
        raise InvalidBandwidth(bandwidth_hz)
    if coding_rate in _CODING_RATES:
        coded = _CODING_RATES[coding_rate]
        long_interleaving = False
    elif ism2400 and coding_rate in _LI_CODING_RATES:
        coded = _LI_CODING_RATES[coding_rate]
        long_interleaving = True
    else:
        raise InvalidCodingRate(coding_rate)
    _check_payload(payload_size)
    if not isinstance(preamble, int) or preamble < 0:
        raise ValueError(f"invalid preamble length {preamble!r}")

    crc_bits = 16 if crc else 0
    data_bits = 8 * payload_size + crc_bits
    de = low_data_rate_optimization(sf, bandwidth_hz)
    bits_per_symbol_x4 = 4 * (sf - 2) if de else 4 * sf

    if not long_interleaving:
        numerator = data_bits - 4 * sf + (8 if sf >= 7 else 0) + (0 if implicit_header else 20)
        payload_symbols = 8 + max(_ceil_div(numerator, bits_per_symbol_x4), 0) * coded
    elif not implicit_header:
        # Part of the explicit header's symbols carries payload bits ("header space").
        header_space = ((sf - 5) // 2 if sf < 7 else (sf - 7) // 2) * 8
        if data_bits > header_space:
            remaining = data_bits - min(header_space, 8 * payload_size)
        else:
            remaining = data_bits - header_space
        payload_symbols = 8 + _ceil_div(max(remaining, 0) * coded, bits_per_symbol_x4)
    else:
        # Implicit header with long interleaving: the first 8 symbols are coded differently.
        scaled = data_bits * coded
        first_den = 4 * sf if sf < 7 else 4 * (sf - 2)
        begin = _ceil_div(scaled, first_den)
        if begin <= 8:
            payload_symbols = begin
        elif sf < 7:
            payload_symbols = _ceil_div(scaled - 32 * sf, 4 * sf) + 8
        elif sf <= 10:
            payload_symbols = _ceil_div(scaled + 64 - 32 * sf, 4 * sf) + 8
        else:
            payload_symbols = _ceil_div(scaled - 32 * (sf - 2), 4 * (sf - 2)) + 8

    preamble_quarters = 4 * preamble + 17 + (8 if sf < 7 else 0)  # n + 4.25 (+ 2 for SF5/SF6)
    return preamble_quarters + 4 * payload_symbols


def lora_time_on_air(
    payload_size: int,
    spreading_factor: int,
    bandwidth_hz: int,
    coding_rate: str,
    *,
    crc: bool = True,
    preamble: int = 8,
    implicit_header: bool = False,
) -> int:
    """LoRa time-on-air in nanoseconds, rounded up to the next nanosecond.

    `payload_size` is the PHYPayload length. LoRaWAN uplinks carry a PHY CRC (crc=True), downlinks do not.
    SF7/BW125/4-5, 10 bytes, CRC, explicit header = 41_216_000 ns.
    """
    quarters = lora_symbols_quarters(
        payload_size,
        spreading_factor,
        bandwidth_hz,
        coding_rate,
        crc=crc,
        preamble=preamble,
        implicit_header=implicit_header,
    )
    # t = quarters/4 * 2^SF / BW seconds
    return _ceil_div(quarters * (1 << spreading_factor) * NS_PER_S, 4 * bandwidth_hz)


FSK_OVERHEAD_BYTES = 5 + 3 + 1 + 2  # preamble, sync word, length, CRC


def fsk_time_on_air(payload_size: int, bit_rate: int) -> int:
    """FSK time-on-air in nanoseconds (rounded up): (payload + 11) * 8 / bit_rate. 50 kbit/s is exact."""
    _check_payload(payload_size)
    if not isinstance(bit_rate, int) or isinstance(bit_rate, bool) or bit_rate <= 0:
        raise InvalidBitRate(bit_rate)
    return _ceil_div((payload_size + FSK_OVERHEAD_BYTES) * 8 * NS_PER_S, bit_rate)


# LR-FHSS coding rate -> (coded bits numerator, denominator, header count)
_LRFHSS_CODING_RATES = {"1/3": (3, 1, 3), "1/2": (2, 1, 3), "2/3": (3, 2, 2), "5/6": (6, 5, 2)}
LRFHSS_BIT_NS = 2_048_000  # 1 / 488.28125 bit/s, exact
LRFHSS_HEADER_BITS = 114  # 233.472 ms
LRFHSS_FRAGMENT_BITS = 48
LRFHSS_BLOCK_BITS = 50  # fragment + 2 block preamble bits: 102.4 ms


def lrfhss_time_on_air(payload_size: int, coding_rate: str) -> int:
    """LR-FHSS time-on-air in nanoseconds for a PHYPayload of `payload_size` bytes."""
    if coding_rate not in _LRFHSS_CODING_RATES:
        raise InvalidCodingRate(coding_rate)
    _check_payload(payload_size)
    num, den, headers = _LRFHSS_CODING_RATES[coding_rate]
    length_bits = (payload_size + 2) * 8 + 6  # payload CRC16 + 6 tail bits
    coded_bits = _ceil_div(length_bits * num, den)
    blocks = _ceil_div(coded_bits, LRFHSS_FRAGMENT_BITS)
    return (headers * LRFHSS_HEADER_BITS + blocks * LRFHSS_BLOCK_BITS) * LRFHSS_BIT_NS


__all__ = [
    "NS_PER_S",
    "SUB_GHZ_BANDWIDTHS",
    "ISM2400_BANDWIDTHS",
    "low_data_rate_optimization",
    "lora_symbols_quarters",
    "lora_time_on_air",
    "fsk_time_on_air",
    "lrfhss_time_on_air",
]
