"""Time-on-air against an independently written closed form (floating point, Semtech datasheet layout)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import InvalidBandwidth, InvalidCodingRate, InvalidSpreadingFactor, ToaError
from scheduler.toa import fsk_time_on_air, lora_time_on_air, lrfhss_time_on_air

SUB_GHZ = [125_000, 250_000, 500_000]
ISM2400 = [203_125, 406_250, 812_500, 1_625_000]
CRS = ["4/5", "4/6", "4/7", "4/8"]
LI_CRS = ["4/5LI", "4/6LI", "4/8LI"]


def reference_sub_ghz(pl, sf, bw, cr, crc=True, preamble=8, implicit=False):
    """SX126x datasheet §6.1.4, written out as in the document, in floating point seconds."""
    cr_index = int(cr[2]) - 4
    t_sym = (2**sf) / bw
    ldro = 1 if t_sym >= 0.016 else 0
    h = 0 if implicit else 1
    c = 1 if crc else 0
    if sf in (5, 6):
        n_payload = 8 + math.ceil(max(8 * pl + 16 * c - 4 * sf + 20 * h, 0) / (4 * sf)) * (cr_index + 4)
        n_sym = preamble + 6.25 + n_payload
    else:
        n_payload = 8 + math.ceil(max(8 * pl + 16 * c - 4 * sf + 8 + 20 * h, 0) / (4 * (sf - 2 * ldro))) * (
            cr_index + 4
        )
        n_sym = preamble + 4.25 + n_payload
    return n_sym * t_sym


def reference_2g4(pl, sf, bw, cr, crc=True, preamble=8):
    """SX1280 datasheet time-on-air (explicit header), floating point seconds."""
    t_sym = (2**sf) / bw
    n_crc = 16 if crc else 0
    extra = 6.25 if sf < 7 else 4.25
    if cr.endswith("LI"):
        ratio = {"4/5LI": 5, "4/6LI": 6, "4/8LI": 8}[cr]
        header_space = math.floor(((sf - 5) if sf < 7 else (sf - 7)) / 2) * 8
        den = 4 * sf if sf <= 10 else 4 * (sf - 2)
        bits = 8 * pl + n_crc
        sub = min(header_space, 8 * pl) if bits > header_space else header_space
        n = preamble + extra + 8 + math.ceil(max(0, bits - sub) * ratio / den)
    else:
        cr_index = int(cr[2]) - 4
        den = 4 * sf if sf <= 10 else 4 * (sf - 2)
        num = 8 * pl + n_crc - 4 * sf + 20 + (8 if sf >= 7 else 0)
        n = preamble + extra + 8 + math.ceil(max(num, 0) / den) * (cr_index + 4)
    return n * t_sym


def test_reference_figure():
    assert lora_time_on_air(10, 7, 125_000, "4/5") == 41_216_000


def test_known_downlink_figures():
    # SF12/BW125 (uplink, CRC on): 23-byte join-request 1482.752 ms, 13 bytes 1155.072 ms.
    assert lora_time_on_air(23, 12, 125_000, "4/5") == 1_482_752_000
    assert lora_time_on_air(13, 12, 125_000, "4/5") == 1_155_072_000
    # FSK 50 kbit/s: (PL + 11) * 160 µs.
    assert fsk_time_on_air(10, 50_000) == 3_360_000
    # LR-FHSS DR8 (CR 1/3), 10 bytes: 3 headers + ceil(13/2) blocks.
    assert lrfhss_time_on_air(10, "1/3") == 3 * 233_472_000 + 7 * 102_400_000
    assert lrfhss_time_on_air(10, "2/3") == 2 * 233_472_000 + 4 * 102_400_000


@settings(max_examples=200, deadline=None)
@given(
    pl=st.integers(0, 255),
    sf=st.integers(5, 12),
    bw=st.sampled_from(SUB_GHZ),
    cr=st.sampled_from(CRS),
    crc=st.booleans(),
    preamble=st.integers(6, 16),
)
def test_sub_ghz_matches_closed_form(pl, sf, bw, cr, crc, preamble):
    got = lora_time_on_air(pl, sf, bw, cr, crc=crc, preamble=preamble)
    expected = reference_sub_ghz(pl, sf, bw, cr, crc, preamble) * 1e9
    assert abs(got - expected) < 1.0 + expected * 1e-12


def test_sub_ghz_every_combination_exhaustively():
    # Every SF, BW, CR and size 0-255 (CRC on and off): 2 * 8 * 3 * 4 * 256 = 49152 cases, ~0.3 s.
    for crc in (True, False):
        for sf in range(5, 13):
            for bw in SUB_GHZ:
                for cr in CRS:
                    for pl in range(256):
                        got = lora_time_on_air(pl, sf, bw, cr, crc=crc)
                        expected = reference_sub_ghz(pl, sf, bw, cr, crc) * 1e9
                        assert abs(got - expected) < 1.0, (pl, sf, bw, cr, crc, got, expected)


def test_2g4_every_combination_exhaustively():
    for sf in range(5, 13):
        for bw in ISM2400:
            for cr in CRS + LI_CRS:
                for pl in range(256):
                    got = lora_time_on_air(pl, sf, bw, cr)
                    expected = reference_2g4(pl, sf, bw, cr) * 1e9
                    assert abs(got - expected) < 1.0, (pl, sf, bw, cr, got, expected)


def test_exactness_is_integer_rounded_up():
    # 2.4 GHz symbol times are not whole nanoseconds: the result is the ceiling, never below the exact value.
    from fractions import Fraction

    got = lora_time_on_air(20, 9, 203_125, "4/5LI")
    exact = Fraction(reference_2g4(20, 9, 203_125, "4/5LI")).limit_denominator(10**15) * 10**9
    assert got == math.ceil(exact)


def test_ldro_boundary():
    # SF11/125 (16.384 ms symbols) uses DE, SF10/125 does not: 4*(SF-2) vs 4*SF bits per symbol.
    assert lora_time_on_air(51, 11, 125_000, "4/5") == pytest.approx(reference_sub_ghz(51, 11, 125_000, "4/5") * 1e9)


@pytest.mark.parametrize(
    "args, error, attribute",
    [
        ((10, 7, 100_000, "4/5"), InvalidBandwidth, "bandwidth"),
        ((10, 4, 125_000, "4/5"), InvalidSpreadingFactor, "spreading_factor"),
        ((10, 13, 125_000, "4/5"), InvalidSpreadingFactor, "spreading_factor"),
        ((10, 7, 125_000, "4/9"), InvalidCodingRate, "coding_rate"),
        ((10, 7, 125_000, "4/5LI"), InvalidCodingRate, "coding_rate"),  # LI only exists at 2.4 GHz
    ],
)
def test_invalid_parameters(args, error, attribute):
    with pytest.raises(error) as info:
        lora_time_on_air(*args)
    assert info.value.namespace == "pkg/toa"
    assert info.value.name == attribute
    assert info.value.grpc_code == 3
    assert attribute in info.value.attributes
    assert isinstance(info.value, ToaError)


def test_invalid_payload_and_modulations():
    with pytest.raises(ToaError):
        lora_time_on_air(256, 7, 125_000, "4/5")
    with pytest.raises(ToaError):
        lora_time_on_air(-1, 7, 125_000, "4/5")
    with pytest.raises(ToaError):
        fsk_time_on_air(10, 0)
    with pytest.raises(InvalidCodingRate):
        lrfhss_time_on_air(10, "4/5")
