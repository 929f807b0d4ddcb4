"""Protobuf messages in The Things Stack's JSON shape, both ways.

The Things Stack does not use plain protojson: EUIs and DevAddrs are uppercase hex, a few enums are numbers,
field names stay snake_case and zero values are always left out. Operators' tools parse exactly that shape, so
this module reproduces it. Everything is driven by descriptors; the per-message plan (field order, names, value
encoders) is compiled once per message type and cached, so encoding a message is one `ListFields()` call and a
dict build.

Output is Python values (`to_dict`) ready for orjson (`to_json`); input accepts what the reference accepts:
snake_case or lowerCamelCase names, hex or base64 for HEX fields, enum names with or without their prefix or
numbers, 64-bit integers as strings or numbers.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import keyword
import math
import re
import struct
from collections.abc import Callable
from typing import Any, cast

import orjson
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from gatewayserver.errors import INVALID_ARGUMENT, GsError

__all__ = [
    "HEX_FIELDS",
    "NUMERIC_ENUMS",
    "JsonError",
    "any_to_dict",
    "format_duration_ns",
    "format_timestamp",
    "float32_value",
    "format_timestamp_ns",
    "parse",
    "parse_dict",
    "to_dict",
    "to_json",
]

#: Bytes fields written as uppercase hex (the `HEX` marker in the reference), with their length in bytes. The
#: length decides, on input, whether a string is hex (2·N digits) or base64 (of N bytes).
HEX_FIELDS: dict[str, int] = {
    "ttn.lorawan.v3.EndDeviceIdentifiers.dev_eui": 8,
    "ttn.lorawan.v3.EndDeviceIdentifiers.join_eui": 8,
    "ttn.lorawan.v3.EndDeviceIdentifiers.dev_addr": 4,
    "ttn.lorawan.v3.GatewayIdentifiers.eui": 8,
    "ttn.lorawan.v3.NetworkIdentifiers.net_id": 3,
    "ttn.lorawan.v3.NetworkIdentifiers.ns_id": 8,
    "ttn.lorawan.v3.FHDR.dev_addr": 4,
    "ttn.lorawan.v3.JoinRequestPayload.join_eui": 8,
    "ttn.lorawan.v3.JoinRequestPayload.dev_eui": 8,
    "ttn.lorawan.v3.JoinRequestPayload.dev_nonce": 2,
    "ttn.lorawan.v3.RejoinRequestPayload.net_id": 3,
    "ttn.lorawan.v3.RejoinRequestPayload.join_eui": 8,
    "ttn.lorawan.v3.RejoinRequestPayload.dev_eui": 8,
    "ttn.lorawan.v3.JoinAcceptPayload.join_nonce": 3,
    "ttn.lorawan.v3.JoinAcceptPayload.net_id": 3,
    "ttn.lorawan.v3.JoinAcceptPayload.dev_addr": 4,
    "ttn.lorawan.v3.PacketBrokerMetadata.forwarder_net_id": 3,
    "ttn.lorawan.v3.PacketBrokerMetadata.forwarder_gateway_eui": 8,
    "ttn.lorawan.v3.PacketBrokerMetadata.home_network_net_id": 3,
    "ttn.lorawan.v3.GetGatewayIdentifiersForEUIRequest.eui": 8,
}

#: Enums the reference writes as numbers; every other ttn.lorawan.v3 enum is written by name.
NUMERIC_ENUMS = frozenset(
    {"ttn.lorawan.v3.DataRateIndex", "ttn.lorawan.v3.DataRateOffset", "ttn.lorawan.v3.RxDelay"}
)

_TYPE_URL_PREFIX = "type.googleapis.com/"
_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_INT32_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_SFIXED32,
    }
)
_WRAPPERS = frozenset(
    {
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    }
)
#: Well-known types whose JSON is not an object of their fields; inside Any they go under "value".
_WKT_VALUE_IN_ANY = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.FieldMask",
        *_WRAPPERS,
    }
)


class JsonError(GsError):
    """A request body that is not valid JSON for the expected message (HTTP 400 / INVALID_ARGUMENT)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "pkg/jsonpb", "unmarshal", "could not parse request: {detail}", code=INVALID_ARGUMENT,
            attributes={"detail": detail},
        )


# ============================================================================================================
# Scalars
# ============================================================================================================


_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_date_cache: dict[int, str] = {}


def _fraction(nanos: int) -> str:
    """Fractional seconds as the reference writes them: none, or trimmed to 3, 6 or 9 digits."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def format_timestamp(seconds: int, nanos: int) -> str:
    """RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as the reference writes timestamps.

    Dates are cached per day: `time.gmtime` + `strftime` cost more than the rest of an event's JSON.
    """
    days, rem = divmod(seconds, 86400)
    date = _date_cache.get(days)
    if date is None:
        date = datetime.date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
        if len(_date_cache) > 4096:
            _date_cache.clear()
        _date_cache[days] = date
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    return f"{date}T{hours:02d}:{minutes:02d}:{secs:02d}{_fraction(nanos)}Z"


def format_timestamp_ns(time_ns: int) -> str:
    return format_timestamp(time_ns // 1_000_000_000, time_ns % 1_000_000_000)


def format_duration_ns(total_ns: int) -> str:
    """`"1.500s"`, `"2s"`, `"0.130s"`: seconds with the fraction trimmed to 0/3/6/9 digits."""
    sign = "-" if total_ns < 0 else ""
    seconds, nanos = divmod(abs(total_ns), 1_000_000_000)
    return f"{sign}{seconds}{_fraction(nanos)}s"


_F32 = struct.Struct("<f")
_float32_cache: dict[float, Any] = {}


def _json_number(value: float) -> Any:
    """Integral floats as ints (the reference prints `-42`, not `-42.0`); NaN and infinities as strings."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def float32_value(value: float) -> float | int | str:
    """A float32 read from a message, as the shortest number that is the same float32 (0.001, not
    0.0010000000474974513): for JSON documents built by hand from message fields, as `to_dict` does for messages.
    """
    result: float | int | str = _float32(value)
    return result


def _float32(value: float) -> Any:
    """A float32 field printed shortest as float32 (9.8, not 9.800000190734863), like Go does."""
    cached = _float32_cache.get(value)
    if cached is not None:
        return cached
    if value != value or value in (math.inf, -math.inf) or value.is_integer():
        result = _json_number(value)
    else:
        result = value
        for digits in range(1, 10):
            candidate = float(f"{value:.{digits}g}")
            if _F32.unpack(_F32.pack(candidate))[0] == value:
                result = candidate
                break
    if len(_float32_cache) < 65536:
        _float32_cache[value] = result
    return result


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _hex(value: bytes) -> str:
    return value.hex().upper()


# ============================================================================================================
# Messages → JSON
# ============================================================================================================

Encoder = Callable[[Any], Any]
_plans: dict[str, Callable[[Message], Any]] = {}


def _descriptor(message: Message) -> Descriptor:
    # The stubs type DESCRIPTOR as the pure-Python or the upb class; with the upb runtime the two are the same class.
    return cast(Descriptor, message.DESCRIPTOR)


def _message_type(fd: FieldDescriptor) -> Descriptor:
    """The type of a message field (the stubs allow None, which only non-message fields have)."""
    desc = fd.message_type
    if desc is None:
        raise TypeError(f"{fd.full_name} is not a message field")
    return desc


def _enum_type(fd: FieldDescriptor) -> EnumDescriptor:
    """The type of an enum field (the stubs allow None, which only non-enum fields have)."""
    desc = fd.enum_type
    if desc is None:
        raise TypeError(f"{fd.full_name} is not an enum field")
    return desc


def to_dict(message: Message) -> Any:
    """The reference JSON value of `message` as Python objects (a dict for ordinary messages)."""
    return _message_encoder(_descriptor(message))(message)


def to_json(message: Message) -> bytes:
    return orjson.dumps(to_dict(message))


def any_to_dict(message: Message) -> dict[str, Any]:
    """`message` as it appears inside a `google.protobuf.Any` (with "@type"), without packing it first.

    Event data is kept unpacked until read, so this saves a serialise/parse round trip per event.
    """
    desc = _descriptor(message)
    if desc.full_name == "google.protobuf.Any":
        return _encode_any(message)
    out: dict[str, Any] = {"@type": _TYPE_URL_PREFIX + desc.full_name}
    value = _message_encoder(desc)(message)
    if desc.full_name in _WKT_VALUE_IN_ANY:
        out["value"] = value
    else:
        out.update(value)
    return out


def _message_encoder(desc: Descriptor) -> Callable[[Message], Any]:
    full_name = desc.full_name
    encoder = _plans.get(full_name)
    if encoder is None:
        _compiling.add(full_name)
        try:
            encoder = _plans[full_name] = _compile(desc)
        finally:
            _compiling.discard(full_name)
    return encoder


def _compile(desc: Descriptor) -> Callable[[Message], Any]:
    special = _WKT_ENCODERS.get(desc.full_name)
    if special is not None:
        return special
    if desc.full_name in _WRAPPERS:
        inner = _scalar_encoder(desc.fields_by_name["value"])

        def encode_wrapper(m: Any) -> Any:  # a wrapper message: its one field is `value`
            return inner(m.value)

        return encode_wrapper
    return _generate(desc)


def _generate(desc: Descriptor) -> Callable[[Message], Any]:
    """Generate a straight-line encoder for one message type.

    `ListFields()` on upb builds a descriptor wrapper per set field (~1 µs each); reading the attributes of a
    known field list directly is several times cheaper, and it yields declaration order for free.
    """
    env: dict[str, Any] = {"P": _plans}
    lines = ["def encode(m):", "    out = {}"]
    for i, fd in enumerate(desc.fields):
        name = fd.name
        attr = f"getattr(m, {name!r})" if keyword.iskeyword(name) else f"m.{name}"
        key = repr(name)
        is_message = fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)
        if is_message and _message_type(fd).GetOptions().map_entry:
            key_fd = _message_type(fd).fields_by_name["key"]
            value_fd = _message_type(fd).fields_by_name["value"]
            env[f"K{i}"] = (lambda k: "true" if k else "false") if key_fd.type == FieldDescriptor.TYPE_BOOL else str
            env[f"V{i}"] = _value_encoder(value_fd)
            lines += [
                f"    v = {attr}",
                "    if v:",
                f"        out[{key}] = {{K{i}(k): V{i}(x) for k, x in v.items()}}",
            ]
        elif fd.is_repeated:
            enc = _value_encoder(fd)
            lines += [f"    v = {attr}", "    if v:"]
            if enc is _identity:
                lines.append(f"        out[{key}] = list(v)")
            else:
                env[f"E{i}"] = enc
                lines.append(f"        e = E{i}")
                lines.append(f"        out[{key}] = [e(x) for x in v]")
        elif is_message:
            env[f"E{i}"] = _value_encoder(fd)
            lines += [f"    if m.HasField({name!r}):", f"        out[{key}] = E{i}({attr})"]
        else:
            enc = _scalar_encoder(fd)
            value = "v" if enc is _identity else f"E{i}(v)"
            env[f"E{i}"] = enc
            if fd.has_presence:
                lines += [f"    if m.HasField({name!r}):", f"        v = {attr}", f"        out[{key}] = {value}"]
            else:
                lines += [f"    v = {attr}", "    if v:", f"        out[{key}] = {value}"]
    lines.append("    return out")
    exec("\n".join(lines), env)
    return env["encode"]


def _value_encoder(fd: FieldDescriptor) -> Encoder:
    """Encoder of one element of `fd`; message types are compiled first (recursion resolved via `P`)."""
    if fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        message_type = _message_type(fd)
        full_name = message_type.full_name
        if full_name in _compiling:
            return lambda m: _plans[full_name](m)
        return _message_encoder(message_type)
    return _scalar_encoder(fd)


_compiling: set[str] = set()


def _identity(value: Any) -> Any:
    return value


def _scalar_encoder(fd: FieldDescriptor) -> Encoder:
    t = fd.type
    if t in _INT64_TYPES:
        return str
    if t == FieldDescriptor.TYPE_FLOAT:
        return _float32
    if t == FieldDescriptor.TYPE_DOUBLE:
        return _json_number
    if t == FieldDescriptor.TYPE_BYTES:
        return _hex if fd.full_name in HEX_FIELDS else _b64
    if t == FieldDescriptor.TYPE_ENUM:
        return _enum_encoder(_enum_type(fd))
    return _identity


def _enum_encoder(enum: EnumDescriptor) -> Encoder:
    if enum.full_name in NUMERIC_ENUMS or not enum.full_name.startswith("ttn."):
        return _identity
    names = {v.number: v.name for v in reversed(enum.values)}  # first declared name wins for aliases

    def encode(value: int) -> Any:
        return names.get(value, value)

    return encode


def _encode_timestamp(m: Message) -> str:
    return format_timestamp(m.seconds, m.nanos)  # type: ignore[attr-defined]


def _encode_duration(m: Message) -> str:
    return format_duration_ns(m.seconds * 1_000_000_000 + m.nanos)  # type: ignore[attr-defined]


def _encode_value(m: Message) -> Any:
    kind = m.WhichOneof("kind")
    if kind == "number_value":
        return _json_number(m.number_value)  # type: ignore[attr-defined]
    if kind == "string_value":
        return m.string_value  # type: ignore[attr-defined]
    if kind == "bool_value":
        return m.bool_value  # type: ignore[attr-defined]
    if kind == "struct_value":
        return _encode_struct(m.struct_value)  # type: ignore[attr-defined]
    if kind == "list_value":
        return _encode_list(m.list_value)  # type: ignore[attr-defined]
    return None


def _encode_struct(m: Message) -> dict[str, Any]:
    return {k: _encode_value(v) for k, v in m.fields.items()}  # type: ignore[attr-defined]


def _encode_list(m: Message) -> list[Any]:
    return [_encode_value(v) for v in m.values]  # type: ignore[attr-defined]


def _encode_field_mask(m: Message) -> dict[str, Any]:
    paths = list(m.paths)  # type: ignore[attr-defined]
    return {"paths": paths} if paths else {}


def _encode_any(m: Message) -> dict[str, Any]:
    type_url: str = m.type_url  # type: ignore[attr-defined]
    if not type_url:
        return {}
    cls = _message_class(type_url)
    if cls is None:
        return {"@type": type_url, "value": _b64(m.value)}  # type: ignore[attr-defined]
    inner = cls()
    inner.ParseFromString(m.value)  # type: ignore[attr-defined]
    out = any_to_dict(inner)
    out["@type"] = type_url
    return out


def _encode_empty(m: Message) -> dict[str, Any]:
    return {}


_WKT_ENCODERS: dict[str, Callable[[Message], Any]] = {
    "google.protobuf.Timestamp": _encode_timestamp,
    "google.protobuf.Duration": _encode_duration,
    "google.protobuf.Value": _encode_value,
    "google.protobuf.Struct": _encode_struct,
    "google.protobuf.ListValue": _encode_list,
    "google.protobuf.FieldMask": _encode_field_mask,
    "google.protobuf.Any": _encode_any,
    "google.protobuf.Empty": _encode_empty,
}


def _message_class(type_url: str) -> type[Message] | None:
    name = type_url.rsplit("/", 1)[-1]
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        _import_ttnpb()
        try:
            desc = descriptor_pool.Default().FindMessageTypeByName(name)
        except KeyError:
            return None
    return message_factory.GetMessageClass(desc)


def _import_ttnpb() -> None:
    """Load every generated ttnpb module so Any payloads of any of our types resolve."""
    import importlib
    import pkgutil

    try:
        import gatewayserver.ttnpb as pkg
    except ImportError:  # pragma: no cover
        return
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")


# ============================================================================================================
# JSON → messages
# ============================================================================================================


def parse(data: bytes | str, message_type: type[Message] | Message) -> Message:
    """Parse a request body (bytes or str) into a new message of `message_type` (or into a given message)."""
    try:
        value = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as exc:
        raise JsonError(f"invalid JSON: {exc}") from exc
    return parse_dict(value, message_type)


def parse_dict(value: Any, message_type: type[Message] | Message) -> Message:
    message = message_type() if isinstance(message_type, type) else message_type
    _parse_message(value, message, message.DESCRIPTOR.full_name)
    return message


_lookup_cache: dict[str, dict[str, FieldDescriptor]] = {}


def _field_lookup(desc: Descriptor) -> dict[str, FieldDescriptor]:
    lookup = _lookup_cache.get(desc.full_name)
    if lookup is None:
        lookup = {}
        for fd in desc.fields:
            lookup[fd.name] = fd
            lookup[fd.json_name] = fd
            lookup[_camel(fd.name)] = fd
        _lookup_cache[desc.full_name] = lookup
    return lookup


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _parse_message(value: Any, message: Message, path: str) -> None:
    desc = _descriptor(message)
    special = _WKT_PARSERS.get(desc.full_name)
    if special is not None:
        special(value, message, path)
        return
    if desc.full_name in _WRAPPERS:
        if isinstance(value, dict):
            value = value.get("value")
        if value is not None:
            message.value = _parse_scalar(value, desc.fields_by_name["value"], path)  # type: ignore[attr-defined]  # wrappers have it
        return
    if not isinstance(value, dict):
        raise JsonError(f"{path}: expected an object")
    lookup = _field_lookup(desc)
    message.SetInParent()
    for key, item in value.items():
        fd = lookup.get(key)
        if fd is None or item is None:
            continue  # unknown fields are ignored, null means unset
        _parse_field(item, message, fd, f"{path}.{fd.name}")


def _parse_field(value: Any, message: Message, fd: FieldDescriptor, path: str) -> None:
    is_message = fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)
    if is_message and _message_type(fd).GetOptions().map_entry:
        if not isinstance(value, dict):
            raise JsonError(f"{path}: expected an object")
        container = getattr(message, fd.name)
        key_fd = _message_type(fd).fields_by_name["key"]
        value_fd = _message_type(fd).fields_by_name["value"]
        for k, v in value.items():
            key = _parse_map_key(k, key_fd, path)
            if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                _parse_message(v, container[key], f"{path}[{k}]")
            else:
                container[key] = _parse_scalar(v, value_fd, f"{path}[{k}]")
        return
    if fd.is_repeated:
        if not isinstance(value, list):
            raise JsonError(f"{path}: expected a list")
        container = getattr(message, fd.name)
        for i, item in enumerate(value):
            if is_message:
                _parse_message(item, container.add(), f"{path}[{i}]")
            else:
                container.append(_parse_scalar(item, fd, f"{path}[{i}]"))
        return
    if is_message:
        _parse_message(value, getattr(message, fd.name), path)
    else:
        setattr(message, fd.name, _parse_scalar(value, fd, path))


def _parse_map_key(key: str, fd: FieldDescriptor, path: str) -> Any:
    if fd.type == FieldDescriptor.TYPE_STRING:
        return key
    if fd.type == FieldDescriptor.TYPE_BOOL:
        if key in ("true", "false"):
            return key == "true"
        raise JsonError(f"{path}: invalid map key {key!r}")
    return _parse_int(key, fd, path)


_HEX_RE = re.compile(r"\A[0-9A-Fa-f]*\Z")


def _parse_scalar(value: Any, fd: FieldDescriptor, path: str) -> Any:
    t = fd.type
    if t in _INT64_TYPES or t in _INT32_TYPES:
        return _parse_int(value, fd, path)
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return _parse_float(value, path)
    if t == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise JsonError(f"{path}: expected a boolean")
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise JsonError(f"{path}: expected a string")
        return value
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            raise JsonError(f"{path}: expected a string")
        size = HEX_FIELDS.get(fd.full_name)
        if size is not None:
            return _parse_hex_bytes(value, size, path)
        return _parse_base64(value, path)
    if t == FieldDescriptor.TYPE_ENUM:
        return _parse_enum(value, _enum_type(fd), path)
    raise JsonError(f"{path}: unsupported field type")  # pragma: no cover


def _parse_int(value: Any, fd: FieldDescriptor, path: str) -> int:
    if isinstance(value, bool):
        raise JsonError(f"{path}: expected an integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            number = float(value) if ("e" in value or "E" in value or "." in value) else int(value, 10)
        except ValueError:
            raise JsonError(f"{path}: invalid integer {value!r}") from None
        if isinstance(number, float):
            if not number.is_integer():
                raise JsonError(f"{path}: invalid integer {value!r}")
            number = int(number)
        result = number
    else:
        raise JsonError(f"{path}: expected an integer")
    unsigned = fd.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED32,
                           FieldDescriptor.TYPE_FIXED64)
    bits = 64 if fd.type in _INT64_TYPES else 32
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= result <= high:
        raise JsonError(f"{path}: integer out of range")
    return result


def _parse_float(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise JsonError(f"{path}: expected a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise JsonError(f"{path}: expected a number")


def _parse_base64(value: str, path: str) -> bytes:
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise JsonError(f"{path}: invalid base64") from None


def _parse_hex_bytes(value: str, size: int, path: str) -> bytes:
    if value == "":
        return b""
    if len(value) == 2 * size and _HEX_RE.match(value):
        return bytes.fromhex(value)
    try:
        decoded = _parse_base64(value, path)
    except JsonError:
        decoded = b""
    if len(decoded) != size:
        raise JsonError(f"{path}: expected {size} bytes as hex or base64")
    return decoded


_enum_lookups: dict[str, dict[str, int]] = {}


def _parse_enum(value: Any, enum: EnumDescriptor, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise JsonError(f"{path}: expected an enum name or number")
    lookup = _enum_lookups.get(enum.full_name)
    if lookup is None:
        lookup = _enum_lookups[enum.full_name] = _enum_lookup(enum)
    number = lookup.get(value)
    if number is None:
        number = lookup.get(value.upper())
    if number is None:
        try:
            return int(value, 10)
        except ValueError:
            raise JsonError(f"{path}: unknown value {value!r} for {enum.full_name}") from None
    return number


def _enum_lookup(enum: EnumDescriptor) -> dict[str, int]:
    """Full names, plus every `_`-separated tail that names exactly one value.

    The reference accepts names without the enum's declared prefix (`C` for CLASS_C, `GPS` for SOURCE_GPS,
    `V1_0_3` for MAC_V1_0_3); accepting every unambiguous tail covers each of those prefixes without listing
    them, and never guesses between two values.
    """
    lookup = {v.name: v.number for v in enum.values}
    tails: dict[str, set[int]] = {}
    for v in enum.values:
        name = v.name
        for i, ch in enumerate(name):
            if ch == "_" and i + 1 < len(name):
                tails.setdefault(name[i + 1 :], set()).add(v.number)
    for tail, numbers in tails.items():
        if len(numbers) == 1 and tail not in lookup:
            lookup[tail] = next(iter(numbers))
    return lookup


# --- well-known types on input --------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})\Z"
)


def parse_timestamp(value: str) -> tuple[int, int]:
    """RFC 3339 → (seconds, nanos) since the Unix epoch."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise JsonError(f"invalid timestamp {value!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    try:
        seconds = calendar.timegm(
            (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
        )
    except (ValueError, OverflowError):
        raise JsonError(f"invalid timestamp {value!r}") from None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((frac or "").ljust(9, "0")) if frac else 0
    return seconds, nanos


_DURATION_RE = re.compile(r"\A(-)?(\d+)(?:\.(\d{1,9}))?s\Z")


def parse_duration_ns(value: str) -> int:
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise JsonError(f"invalid duration {value!r}")
    sign, seconds, frac = match.groups()
    total = int(seconds) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
    return -total if sign else total


def _parse_timestamp_into(value: Any, message: Message, path: str) -> None:
    try:
        seconds, nanos = parse_timestamp(value)
    except JsonError:
        raise JsonError(f"{path}: invalid timestamp {value!r}") from None
    message.seconds = seconds  # type: ignore[attr-defined]
    message.nanos = nanos  # type: ignore[attr-defined]


def _parse_duration_into(value: Any, message: Message, path: str) -> None:
    try:
        total = parse_duration_ns(value)
    except JsonError:
        raise JsonError(f"{path}: invalid duration {value!r}") from None
    seconds = int(total / 1_000_000_000)
    message.seconds = seconds  # type: ignore[attr-defined]
    message.nanos = total - seconds * 1_000_000_000  # type: ignore[attr-defined]


def _parse_value_into(value: Any, message: Message, path: str) -> None:
    if value is None:
        message.null_value = 0  # type: ignore[attr-defined]
    elif isinstance(value, bool):
        message.bool_value = value  # type: ignore[attr-defined]
    elif isinstance(value, (int, float)):
        message.number_value = float(value)  # type: ignore[attr-defined]
    elif isinstance(value, str):
        message.string_value = value  # type: ignore[attr-defined]
    elif isinstance(value, dict):
        _parse_struct_into(value, message.struct_value, path)  # type: ignore[attr-defined]
    elif isinstance(value, list):
        _parse_list_into(value, message.list_value, path)  # type: ignore[attr-defined]
    else:  # pragma: no cover
        raise JsonError(f"{path}: unsupported value")


def _parse_struct_into(value: Any, message: Message, path: str) -> None:
    if not isinstance(value, dict):
        raise JsonError(f"{path}: expected an object")
    message.SetInParent()
    for k, v in value.items():
        _parse_value_into(v, message.fields[k], f"{path}.{k}")  # type: ignore[attr-defined]


def _parse_list_into(value: Any, message: Message, path: str) -> None:
    if not isinstance(value, list):
        raise JsonError(f"{path}: expected a list")
    message.SetInParent()
    for i, v in enumerate(value):
        _parse_value_into(v, message.values.add(), f"{path}[{i}]")  # type: ignore[attr-defined]


def _parse_field_mask_into(value: Any, message: Message, path: str) -> None:
    if isinstance(value, str):
        paths = [p for p in value.split(",") if p]
    elif isinstance(value, dict):
        paths = value.get("paths") or []
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise JsonError(f"{path}: paths must be a list of strings")
    else:
        raise JsonError(f"{path}: expected a field mask")
    message.SetInParent()
    message.paths.extend(paths)  # type: ignore[attr-defined]


def _parse_any_into(value: Any, message: Message, path: str) -> None:
    if not isinstance(value, dict):
        raise JsonError(f"{path}: expected an object")
    type_url = value.get("@type")
    if not isinstance(type_url, str) or not type_url:
        raise JsonError(f"{path}: Any without @type")
    cls = _message_class(type_url)
    if cls is None:
        raise JsonError(f"{path}: unknown type {type_url!r}")
    inner = cls()
    if inner.DESCRIPTOR.full_name in _WKT_VALUE_IN_ANY:
        _parse_message(value.get("value"), inner, path)
    else:
        _parse_message({k: v for k, v in value.items() if k != "@type"}, inner, path)
    message.type_url = type_url  # type: ignore[attr-defined]
    message.value = inner.SerializeToString()  # type: ignore[attr-defined]


def _parse_empty_into(value: Any, message: Message, path: str) -> None:
    message.SetInParent()


_WKT_PARSERS: dict[str, Callable[[Any, Message, str], None]] = {
    "google.protobuf.Timestamp": _parse_timestamp_into,
    "google.protobuf.Duration": _parse_duration_into,
    "google.protobuf.Value": _parse_value_into,
    "google.protobuf.Struct": _parse_struct_into,
    "google.protobuf.ListValue": _parse_list_into,
    "google.protobuf.FieldMask": _parse_field_mask_into,
    "google.protobuf.Any": _parse_any_into,
    "google.protobuf.Empty": _parse_empty_into,
}
