import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import enums_pb2 as _enums_pb2
from . import identifiers_pb2 as _identifiers_pb2
from . import metadata_pb2 as _metadata_pb2
from . import secrets_pb2 as _secrets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GatewayAntennaPlacement(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLACEMENT_UNKNOWN: _ClassVar[GatewayAntennaPlacement]
    INDOOR: _ClassVar[GatewayAntennaPlacement]
    OUTDOOR: _ClassVar[GatewayAntennaPlacement]
PLACEMENT_UNKNOWN: GatewayAntennaPlacement
INDOOR: GatewayAntennaPlacement
OUTDOOR: GatewayAntennaPlacement

class GatewayStatus(_message.Message):
    __slots__ = ("time", "boot_time", "versions", "antenna_locations", "ip", "metrics", "advanced")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TIME_FIELD_NUMBER: _ClassVar[int]
    BOOT_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ANTENNA_LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ADVANCED_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    boot_time: _timestamp_pb2.Timestamp
    versions: _containers.ScalarMap[str, str]
    antenna_locations: _containers.RepeatedCompositeFieldContainer[_metadata_pb2.Location]
    ip: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.ScalarMap[str, float]
    advanced: _struct_pb2.Struct
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., boot_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., versions: _Optional[_Mapping[str, str]] = ..., antenna_locations: _Optional[_Iterable[_Union[_metadata_pb2.Location, _Mapping]]] = ..., ip: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., advanced: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GatewayRemoteAddress(_message.Message):
    __slots__ = ("ip",)
    IP_FIELD_NUMBER: _ClassVar[int]
    ip: str
    def __init__(self, ip: _Optional[str] = ...) -> None: ...

class GatewayConnectionStats(_message.Message):
    __slots__ = ("connected_at", "disconnected_at", "protocol", "last_status_received_at", "last_status", "last_uplink_received_at", "uplink_count", "last_downlink_received_at", "downlink_count", "last_tx_acknowledgment_received_at", "tx_acknowledgment_count", "round_trip_times", "sub_bands", "gateway_remote_address")
    class RoundTripTimes(_message.Message):
        __slots__ = ("min", "max", "median", "count")
        MIN_FIELD_NUMBER: _ClassVar[int]
        MAX_FIELD_NUMBER: _ClassVar[int]
        MEDIAN_FIELD_NUMBER: _ClassVar[int]
        COUNT_FIELD_NUMBER: _ClassVar[int]
        min: _duration_pb2.Duration
        max: _duration_pb2.Duration
        median: _duration_pb2.Duration
        count: int
        def __init__(self, min: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., median: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...
    class SubBand(_message.Message):
        __slots__ = ("min_frequency", "max_frequency", "downlink_utilization_limit", "downlink_utilization")
        MIN_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
        MAX_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
        DOWNLINK_UTILIZATION_LIMIT_FIELD_NUMBER: _ClassVar[int]
        DOWNLINK_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
        min_frequency: int
        max_frequency: int
        downlink_utilization_limit: float
        downlink_utilization: float
        def __init__(self, min_frequency: _Optional[int] = ..., max_frequency: _Optional[int] = ..., downlink_utilization_limit: _Optional[float] = ..., downlink_utilization: _Optional[float] = ...) -> None: ...
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    DISCONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_UPLINK_RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    UPLINK_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_DOWNLINK_RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    DOWNLINK_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_TX_ACKNOWLEDGMENT_RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    TX_ACKNOWLEDGMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_TIMES_FIELD_NUMBER: _ClassVar[int]
    SUB_BANDS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_REMOTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    connected_at: _timestamp_pb2.Timestamp
    disconnected_at: _timestamp_pb2.Timestamp
    protocol: str
    last_status_received_at: _timestamp_pb2.Timestamp
    last_status: GatewayStatus
    last_uplink_received_at: _timestamp_pb2.Timestamp
    uplink_count: int
    last_downlink_received_at: _timestamp_pb2.Timestamp
    downlink_count: int
    last_tx_acknowledgment_received_at: _timestamp_pb2.Timestamp
    tx_acknowledgment_count: int
    round_trip_times: GatewayConnectionStats.RoundTripTimes
    sub_bands: _containers.RepeatedCompositeFieldContainer[GatewayConnectionStats.SubBand]
    gateway_remote_address: GatewayRemoteAddress
    def __init__(self, connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disconnected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., protocol: _Optional[str] = ..., last_status_received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_status: _Optional[_Union[GatewayStatus, _Mapping]] = ..., last_uplink_received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uplink_count: _Optional[int] = ..., last_downlink_received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., downlink_count: _Optional[int] = ..., last_tx_acknowledgment_received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tx_acknowledgment_count: _Optional[int] = ..., round_trip_times: _Optional[_Union[GatewayConnectionStats.RoundTripTimes, _Mapping]] = ..., sub_bands: _Optional[_Iterable[_Union[GatewayConnectionStats.SubBand, _Mapping]]] = ..., gateway_remote_address: _Optional[_Union[GatewayRemoteAddress, _Mapping]] = ...) -> None: ...

class GatewayVersionIdentifiers(_message.Message):
    __slots__ = ("brand_id", "model_id", "hardware_version", "firmware_version", "runtime_version")
    BRAND_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    brand_id: str
    model_id: str
    hardware_version: str
    firmware_version: str
    runtime_version: str
    def __init__(self, brand_id: _Optional[str] = ..., model_id: _Optional[str] = ..., hardware_version: _Optional[str] = ..., firmware_version: _Optional[str] = ..., runtime_version: _Optional[str] = ...) -> None: ...

class GatewayAntenna(_message.Message):
    __slots__ = ("gain", "location", "attributes", "placement")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GAIN_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    gain: float
    location: _metadata_pb2.Location
    attributes: _containers.ScalarMap[str, str]
    placement: GatewayAntennaPlacement
    def __init__(self, gain: _Optional[float] = ..., location: _Optional[_Union[_metadata_pb2.Location, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., placement: _Optional[_Union[GatewayAntennaPlacement, str]] = ...) -> None: ...

class GatewayRadio(_message.Message):
    __slots__ = ("enable", "chip_type", "frequency", "rssi_offset", "tx_configuration")
    class TxConfiguration(_message.Message):
        __slots__ = ("min_frequency", "max_frequency", "notch_frequency")
        MIN_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
        MAX_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
        NOTCH_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
        min_frequency: int
        max_frequency: int
        notch_frequency: int
        def __init__(self, min_frequency: _Optional[int] = ..., max_frequency: _Optional[int] = ..., notch_frequency: _Optional[int] = ...) -> None: ...
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    CHIP_TYPE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    RSSI_OFFSET_FIELD_NUMBER: _ClassVar[int]
    TX_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    enable: bool
    chip_type: str
    frequency: int
    rssi_offset: float
    tx_configuration: GatewayRadio.TxConfiguration
    def __init__(self, enable: _Optional[bool] = ..., chip_type: _Optional[str] = ..., frequency: _Optional[int] = ..., rssi_offset: _Optional[float] = ..., tx_configuration: _Optional[_Union[GatewayRadio.TxConfiguration, _Mapping]] = ...) -> None: ...

class Gateway(_message.Message):
    __slots__ = ("ids", "created_at", "updated_at", "deleted_at", "name", "description", "attributes", "administrative_contact", "technical_contact", "version_ids", "gateway_server_address", "auto_update", "update_channel", "frequency_plan_id", "frequency_plan_ids", "antennas", "status_public", "location_public", "schedule_downlink_late", "enforce_duty_cycle", "downlink_path_constraint", "schedule_anytime_delay", "update_location_from_status", "lbs_lns_secret", "target_cups_uri", "target_cups_key", "require_authenticated_connection", "lrfhss", "disable_packet_broker_forwarding")
    class LRFHSS(_message.Message):
        __slots__ = ("supported",)
        SUPPORTED_FIELD_NUMBER: _ClassVar[int]
        supported: bool
        def __init__(self, supported: _Optional[bool] = ...) -> None: ...
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ADMINISTRATIVE_CONTACT_FIELD_NUMBER: _ClassVar[int]
    TECHNICAL_CONTACT_FIELD_NUMBER: _ClassVar[int]
    VERSION_IDS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_SERVER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AUTO_UPDATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PLAN_IDS_FIELD_NUMBER: _ClassVar[int]
    ANTENNAS_FIELD_NUMBER: _ClassVar[int]
    STATUS_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    LOCATION_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_DOWNLINK_LATE_FIELD_NUMBER: _ClassVar[int]
    ENFORCE_DUTY_CYCLE_FIELD_NUMBER: _ClassVar[int]
    DOWNLINK_PATH_CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ANYTIME_DELAY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_LOCATION_FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    LBS_LNS_SECRET_FIELD_NUMBER: _ClassVar[int]
    TARGET_CUPS_URI_FIELD_NUMBER: _ClassVar[int]
    TARGET_CUPS_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_AUTHENTICATED_CONNECTION_FIELD_NUMBER: _ClassVar[int]
    LRFHSS_FIELD_NUMBER: _ClassVar[int]
    DISABLE_PACKET_BROKER_FORWARDING_FIELD_NUMBER: _ClassVar[int]
    ids: _identifiers_pb2.GatewayIdentifiers
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    deleted_at: _timestamp_pb2.Timestamp
    name: str
    description: str
    attributes: _containers.ScalarMap[str, str]
    administrative_contact: _identifiers_pb2.OrganizationOrUserIdentifiers
    technical_contact: _identifiers_pb2.OrganizationOrUserIdentifiers
    version_ids: GatewayVersionIdentifiers
    gateway_server_address: str
    auto_update: bool
    update_channel: str
    frequency_plan_id: str
    frequency_plan_ids: _containers.RepeatedScalarFieldContainer[str]
    antennas: _containers.RepeatedCompositeFieldContainer[GatewayAntenna]
    status_public: bool
    location_public: bool
    schedule_downlink_late: bool
    enforce_duty_cycle: bool
    downlink_path_constraint: _enums_pb2.DownlinkPathConstraint
    schedule_anytime_delay: _duration_pb2.Duration
    update_location_from_status: bool
    lbs_lns_secret: _secrets_pb2.Secret
    target_cups_uri: str
    target_cups_key: _secrets_pb2.Secret
    require_authenticated_connection: bool
    lrfhss: Gateway.LRFHSS
    disable_packet_broker_forwarding: bool
    def __init__(self, ids: _Optional[_Union[_identifiers_pb2.GatewayIdentifiers, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., administrative_contact: _Optional[_Union[_identifiers_pb2.OrganizationOrUserIdentifiers, _Mapping]] = ..., technical_contact: _Optional[_Union[_identifiers_pb2.OrganizationOrUserIdentifiers, _Mapping]] = ..., version_ids: _Optional[_Union[GatewayVersionIdentifiers, _Mapping]] = ..., gateway_server_address: _Optional[str] = ..., auto_update: _Optional[bool] = ..., update_channel: _Optional[str] = ..., frequency_plan_id: _Optional[str] = ..., frequency_plan_ids: _Optional[_Iterable[str]] = ..., antennas: _Optional[_Iterable[_Union[GatewayAntenna, _Mapping]]] = ..., status_public: _Optional[bool] = ..., location_public: _Optional[bool] = ..., schedule_downlink_late: _Optional[bool] = ..., enforce_duty_cycle: _Optional[bool] = ..., downlink_path_constraint: _Optional[_Union[_enums_pb2.DownlinkPathConstraint, str]] = ..., schedule_anytime_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., update_location_from_status: _Optional[bool] = ..., lbs_lns_secret: _Optional[_Union[_secrets_pb2.Secret, _Mapping]] = ..., target_cups_uri: _Optional[str] = ..., target_cups_key: _Optional[_Union[_secrets_pb2.Secret, _Mapping]] = ..., require_authenticated_connection: _Optional[bool] = ..., lrfhss: _Optional[_Union[Gateway.LRFHSS, _Mapping]] = ..., disable_packet_broker_forwarding: _Optional[bool] = ...) -> None: ...

class GetGatewayRequest(_message.Message):
    __slots__ = ("gateway_ids", "field_mask")
    GATEWAY_IDS_FIELD_NUMBER: _ClassVar[int]
    FIELD_MASK_FIELD_NUMBER: _ClassVar[int]
    gateway_ids: _identifiers_pb2.GatewayIdentifiers
    field_mask: _field_mask_pb2.FieldMask
    def __init__(self, gateway_ids: _Optional[_Union[_identifiers_pb2.GatewayIdentifiers, _Mapping]] = ..., field_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class GetGatewayIdentifiersForEUIRequest(_message.Message):
    __slots__ = ("eui",)
    EUI_FIELD_NUMBER: _ClassVar[int]
    eui: bytes
    def __init__(self, eui: _Optional[bytes] = ...) -> None: ...
