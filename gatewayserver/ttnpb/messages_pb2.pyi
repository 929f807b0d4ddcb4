import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from . import identifiers_pb2 as _identifiers_pb2
from . import lorawan_pb2 as _lorawan_pb2
from . import metadata_pb2 as _metadata_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UplinkMessage(_message.Message):
    __slots__ = ("raw_payload", "payload", "settings", "rx_metadata", "received_at", "correlation_ids", "device_channel_index", "consumed_airtime", "crc_status")
    RAW_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    RX_METADATA_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_IDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CHANNEL_INDEX_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_AIRTIME_FIELD_NUMBER: _ClassVar[int]
    CRC_STATUS_FIELD_NUMBER: _ClassVar[int]
    raw_payload: bytes
    payload: _lorawan_pb2.Message
    settings: _lorawan_pb2.TxSettings
    rx_metadata: _containers.RepeatedCompositeFieldContainer[_metadata_pb2.RxMetadata]
    received_at: _timestamp_pb2.Timestamp
    correlation_ids: _containers.RepeatedScalarFieldContainer[str]
    device_channel_index: int
    consumed_airtime: _duration_pb2.Duration
    crc_status: _wrappers_pb2.BoolValue
    def __init__(self, raw_payload: _Optional[bytes] = ..., payload: _Optional[_Union[_lorawan_pb2.Message, _Mapping]] = ..., settings: _Optional[_Union[_lorawan_pb2.TxSettings, _Mapping]] = ..., rx_metadata: _Optional[_Iterable[_Union[_metadata_pb2.RxMetadata, _Mapping]]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., correlation_ids: _Optional[_Iterable[str]] = ..., device_channel_index: _Optional[int] = ..., consumed_airtime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., crc_status: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ...) -> None: ...

class GatewayUplinkMessage(_message.Message):
    __slots__ = ("message", "band_id")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BAND_ID_FIELD_NUMBER: _ClassVar[int]
    message: UplinkMessage
    band_id: str
    def __init__(self, message: _Optional[_Union[UplinkMessage, _Mapping]] = ..., band_id: _Optional[str] = ...) -> None: ...

class DownlinkMessage(_message.Message):
    __slots__ = ("raw_payload", "payload", "end_device_ids", "request", "scheduled", "correlation_ids", "session_key_id")
    RAW_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    END_DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_IDS_FIELD_NUMBER: _ClassVar[int]
    SESSION_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    raw_payload: bytes
    payload: _lorawan_pb2.Message
    end_device_ids: _identifiers_pb2.EndDeviceIdentifiers
    request: _lorawan_pb2.TxRequest
    scheduled: _lorawan_pb2.TxSettings
    correlation_ids: _containers.RepeatedScalarFieldContainer[str]
    session_key_id: bytes
    def __init__(self, raw_payload: _Optional[bytes] = ..., payload: _Optional[_Union[_lorawan_pb2.Message, _Mapping]] = ..., end_device_ids: _Optional[_Union[_identifiers_pb2.EndDeviceIdentifiers, _Mapping]] = ..., request: _Optional[_Union[_lorawan_pb2.TxRequest, _Mapping]] = ..., scheduled: _Optional[_Union[_lorawan_pb2.TxSettings, _Mapping]] = ..., correlation_ids: _Optional[_Iterable[str]] = ..., session_key_id: _Optional[bytes] = ...) -> None: ...

class TxAcknowledgment(_message.Message):
    __slots__ = ("correlation_ids", "result", "downlink_message")
    class Result(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SUCCESS: _ClassVar[TxAcknowledgment.Result]
        UNKNOWN_ERROR: _ClassVar[TxAcknowledgment.Result]
        TOO_LATE: _ClassVar[TxAcknowledgment.Result]
        TOO_EARLY: _ClassVar[TxAcknowledgment.Result]
        COLLISION_PACKET: _ClassVar[TxAcknowledgment.Result]
        COLLISION_BEACON: _ClassVar[TxAcknowledgment.Result]
        TX_FREQ: _ClassVar[TxAcknowledgment.Result]
        TX_POWER: _ClassVar[TxAcknowledgment.Result]
        GPS_UNLOCKED: _ClassVar[TxAcknowledgment.Result]
    SUCCESS: TxAcknowledgment.Result
    UNKNOWN_ERROR: TxAcknowledgment.Result
    TOO_LATE: TxAcknowledgment.Result
    TOO_EARLY: TxAcknowledgment.Result
    COLLISION_PACKET: TxAcknowledgment.Result
    COLLISION_BEACON: TxAcknowledgment.Result
    TX_FREQ: TxAcknowledgment.Result
    TX_POWER: TxAcknowledgment.Result
    GPS_UNLOCKED: TxAcknowledgment.Result
    CORRELATION_IDS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DOWNLINK_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    correlation_ids: _containers.RepeatedScalarFieldContainer[str]
    result: TxAcknowledgment.Result
    downlink_message: DownlinkMessage
    def __init__(self, correlation_ids: _Optional[_Iterable[str]] = ..., result: _Optional[_Union[TxAcknowledgment.Result, str]] = ..., downlink_message: _Optional[_Union[DownlinkMessage, _Mapping]] = ...) -> None: ...

class GatewayTxAcknowledgment(_message.Message):
    __slots__ = ("gateway_ids", "tx_ack")
    GATEWAY_IDS_FIELD_NUMBER: _ClassVar[int]
    TX_ACK_FIELD_NUMBER: _ClassVar[int]
    gateway_ids: _identifiers_pb2.GatewayIdentifiers
    tx_ack: TxAcknowledgment
    def __init__(self, gateway_ids: _Optional[_Union[_identifiers_pb2.GatewayIdentifiers, _Mapping]] = ..., tx_ack: _Optional[_Union[TxAcknowledgment, _Mapping]] = ...) -> None: ...
