import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import identifiers_pb2 as _identifiers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_REQUEST: _ClassVar[MType]
    JOIN_ACCEPT: _ClassVar[MType]
    UNCONFIRMED_UP: _ClassVar[MType]
    UNCONFIRMED_DOWN: _ClassVar[MType]
    CONFIRMED_UP: _ClassVar[MType]
    CONFIRMED_DOWN: _ClassVar[MType]
    REJOIN_REQUEST: _ClassVar[MType]
    PROPRIETARY: _ClassVar[MType]

class Major(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LORAWAN_R1: _ClassVar[Major]

class Minor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MINOR_RFU_0: _ClassVar[Minor]
    MINOR_1: _ClassVar[Minor]
    MINOR_RFU_2: _ClassVar[Minor]
    MINOR_RFU_3: _ClassVar[Minor]
    MINOR_RFU_4: _ClassVar[Minor]
    MINOR_RFU_5: _ClassVar[Minor]
    MINOR_RFU_6: _ClassVar[Minor]
    MINOR_RFU_7: _ClassVar[Minor]
    MINOR_RFU_8: _ClassVar[Minor]
    MINOR_RFU_9: _ClassVar[Minor]
    MINOR_RFU_10: _ClassVar[Minor]
    MINOR_RFU_11: _ClassVar[Minor]
    MINOR_RFU_12: _ClassVar[Minor]
    MINOR_RFU_13: _ClassVar[Minor]
    MINOR_RFU_14: _ClassVar[Minor]
    MINOR_RFU_15: _ClassVar[Minor]

class RejoinRequestType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTEXT: _ClassVar[RejoinRequestType]
    SESSION: _ClassVar[RejoinRequestType]
    KEYS: _ClassVar[RejoinRequestType]

class JoinRequestType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJOIN_CONTEXT: _ClassVar[JoinRequestType]
    REJOIN_SESSION: _ClassVar[JoinRequestType]
    REJOIN_KEYS: _ClassVar[JoinRequestType]
    JOIN: _ClassVar[JoinRequestType]

class CFListType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FREQUENCIES: _ClassVar[CFListType]
    CHANNEL_MASKS: _ClassVar[CFListType]

class RxDelay(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RX_DELAY_0: _ClassVar[RxDelay]
    RX_DELAY_1: _ClassVar[RxDelay]
    RX_DELAY_2: _ClassVar[RxDelay]
    RX_DELAY_3: _ClassVar[RxDelay]
    RX_DELAY_4: _ClassVar[RxDelay]
    RX_DELAY_5: _ClassVar[RxDelay]
    RX_DELAY_6: _ClassVar[RxDelay]
    RX_DELAY_7: _ClassVar[RxDelay]
    RX_DELAY_8: _ClassVar[RxDelay]
    RX_DELAY_9: _ClassVar[RxDelay]
    RX_DELAY_10: _ClassVar[RxDelay]
    RX_DELAY_11: _ClassVar[RxDelay]
    RX_DELAY_12: _ClassVar[RxDelay]
    RX_DELAY_13: _ClassVar[RxDelay]
    RX_DELAY_14: _ClassVar[RxDelay]
    RX_DELAY_15: _ClassVar[RxDelay]

class DataRateOffset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_RATE_OFFSET_0: _ClassVar[DataRateOffset]
    DATA_RATE_OFFSET_1: _ClassVar[DataRateOffset]
    DATA_RATE_OFFSET_2: _ClassVar[DataRateOffset]
    DATA_RATE_OFFSET_3: _ClassVar[DataRateOffset]
    DATA_RATE_OFFSET_4: _ClassVar[DataRateOffset]
    DATA_RATE_OFFSET_5: _ClassVar[DataRateOffset]
    DATA_RATE_OFFSET_6: _ClassVar[DataRateOffset]
    DATA_RATE_OFFSET_7: _ClassVar[DataRateOffset]

class DataRateIndex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_RATE_0: _ClassVar[DataRateIndex]
    DATA_RATE_1: _ClassVar[DataRateIndex]
    DATA_RATE_2: _ClassVar[DataRateIndex]
    DATA_RATE_3: _ClassVar[DataRateIndex]
    DATA_RATE_4: _ClassVar[DataRateIndex]
    DATA_RATE_5: _ClassVar[DataRateIndex]
    DATA_RATE_6: _ClassVar[DataRateIndex]
    DATA_RATE_7: _ClassVar[DataRateIndex]
    DATA_RATE_8: _ClassVar[DataRateIndex]
    DATA_RATE_9: _ClassVar[DataRateIndex]
    DATA_RATE_10: _ClassVar[DataRateIndex]
    DATA_RATE_11: _ClassVar[DataRateIndex]
    DATA_RATE_12: _ClassVar[DataRateIndex]
    DATA_RATE_13: _ClassVar[DataRateIndex]
    DATA_RATE_14: _ClassVar[DataRateIndex]
    DATA_RATE_15: _ClassVar[DataRateIndex]

class MACVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAC_UNKNOWN: _ClassVar[MACVersion]
    MAC_V1_0: _ClassVar[MACVersion]
    MAC_V1_0_1: _ClassVar[MACVersion]
    MAC_V1_0_2: _ClassVar[MACVersion]
    MAC_V1_1: _ClassVar[MACVersion]
    MAC_V1_0_3: _ClassVar[MACVersion]
    MAC_V1_0_4: _ClassVar[MACVersion]

class PHYVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHY_UNKNOWN: _ClassVar[PHYVersion]
    PHY_V1_0: _ClassVar[PHYVersion]
    TS001_V1_0: _ClassVar[PHYVersion]
    PHY_V1_0_1: _ClassVar[PHYVersion]
    TS001_V1_0_1: _ClassVar[PHYVersion]
    PHY_V1_0_2_REV_A: _ClassVar[PHYVersion]
    RP001_V1_0_2: _ClassVar[PHYVersion]
    PHY_V1_0_2_REV_B: _ClassVar[PHYVersion]
    RP001_V1_0_2_REV_B: _ClassVar[PHYVersion]
    PHY_V1_1_REV_A: _ClassVar[PHYVersion]
    RP001_V1_1_REV_A: _ClassVar[PHYVersion]
    PHY_V1_1_REV_B: _ClassVar[PHYVersion]
    RP001_V1_1_REV_B: _ClassVar[PHYVersion]
    PHY_V1_0_3_REV_A: _ClassVar[PHYVersion]
    RP001_V1_0_3_REV_A: _ClassVar[PHYVersion]
    RP002_V1_0_0: _ClassVar[PHYVersion]
    RP002_V1_0_1: _ClassVar[PHYVersion]
    RP002_V1_0_2: _ClassVar[PHYVersion]
    RP002_V1_0_3: _ClassVar[PHYVersion]
    RP002_V1_0_4: _ClassVar[PHYVersion]

class Class(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLASS_A: _ClassVar[Class]
    CLASS_B: _ClassVar[Class]
    CLASS_C: _ClassVar[Class]

class TxSchedulePriority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOWEST: _ClassVar[TxSchedulePriority]
    LOW: _ClassVar[TxSchedulePriority]
    BELOW_NORMAL: _ClassVar[TxSchedulePriority]
    NORMAL: _ClassVar[TxSchedulePriority]
    ABOVE_NORMAL: _ClassVar[TxSchedulePriority]
    HIGH: _ClassVar[TxSchedulePriority]
    HIGHEST: _ClassVar[TxSchedulePriority]

class RelayWORChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELAY_WOR_CHANNEL_DEFAULT: _ClassVar[RelayWORChannel]
    RELAY_WOR_CHANNEL_SECONDARY: _ClassVar[RelayWORChannel]
JOIN_REQUEST: MType
JOIN_ACCEPT: MType
UNCONFIRMED_UP: MType
UNCONFIRMED_DOWN: MType
CONFIRMED_UP: MType
CONFIRMED_DOWN: MType
REJOIN_REQUEST: MType
PROPRIETARY: MType
LORAWAN_R1: Major
MINOR_RFU_0: Minor
MINOR_1: Minor
MINOR_RFU_2: Minor
MINOR_RFU_3: Minor
MINOR_RFU_4: Minor
MINOR_RFU_5: Minor
MINOR_RFU_6: Minor
MINOR_RFU_7: Minor
MINOR_RFU_8: Minor
MINOR_RFU_9: Minor
MINOR_RFU_10: Minor
MINOR_RFU_11: Minor
MINOR_RFU_12: Minor
MINOR_RFU_13: Minor
MINOR_RFU_14: Minor
MINOR_RFU_15: Minor
CONTEXT: RejoinRequestType
SESSION: RejoinRequestType
KEYS: RejoinRequestType
REJOIN_CONTEXT: JoinRequestType
REJOIN_SESSION: JoinRequestType
REJOIN_KEYS: JoinRequestType
JOIN: JoinRequestType
FREQUENCIES: CFListType
CHANNEL_MASKS: CFListType
RX_DELAY_0: RxDelay
RX_DELAY_1: RxDelay
RX_DELAY_2: RxDelay
RX_DELAY_3: RxDelay
RX_DELAY_4: RxDelay
RX_DELAY_5: RxDelay
RX_DELAY_6: RxDelay
RX_DELAY_7: RxDelay
RX_DELAY_8: RxDelay
RX_DELAY_9: RxDelay
RX_DELAY_10: RxDelay
RX_DELAY_11: RxDelay
RX_DELAY_12: RxDelay
RX_DELAY_13: RxDelay
RX_DELAY_14: RxDelay
RX_DELAY_15: RxDelay
DATA_RATE_OFFSET_0: DataRateOffset
DATA_RATE_OFFSET_1: DataRateOffset
DATA_RATE_OFFSET_2: DataRateOffset
DATA_RATE_OFFSET_3: DataRateOffset
DATA_RATE_OFFSET_4: DataRateOffset
DATA_RATE_OFFSET_5: DataRateOffset
DATA_RATE_OFFSET_6: DataRateOffset
DATA_RATE_OFFSET_7: DataRateOffset
DATA_RATE_0: DataRateIndex
DATA_RATE_1: DataRateIndex
DATA_RATE_2: DataRateIndex
DATA_RATE_3: DataRateIndex
DATA_RATE_4: DataRateIndex
DATA_RATE_5: DataRateIndex
DATA_RATE_6: DataRateIndex
DATA_RATE_7: DataRateIndex
DATA_RATE_8: DataRateIndex
DATA_RATE_9: DataRateIndex
DATA_RATE_10: DataRateIndex
DATA_RATE_11: DataRateIndex
DATA_RATE_12: DataRateIndex
DATA_RATE_13: DataRateIndex
DATA_RATE_14: DataRateIndex
DATA_RATE_15: DataRateIndex
MAC_UNKNOWN: MACVersion
MAC_V1_0: MACVersion
MAC_V1_0_1: MACVersion
MAC_V1_0_2: MACVersion
MAC_V1_1: MACVersion
MAC_V1_0_3: MACVersion
MAC_V1_0_4: MACVersion
PHY_UNKNOWN: PHYVersion
PHY_V1_0: PHYVersion
TS001_V1_0: PHYVersion
PHY_V1_0_1: PHYVersion
TS001_V1_0_1: PHYVersion
PHY_V1_0_2_REV_A: PHYVersion
RP001_V1_0_2: PHYVersion
PHY_V1_0_2_REV_B: PHYVersion
RP001_V1_0_2_REV_B: PHYVersion
PHY_V1_1_REV_A: PHYVersion
RP001_V1_1_REV_A: PHYVersion
PHY_V1_1_REV_B: PHYVersion
RP001_V1_1_REV_B: PHYVersion
PHY_V1_0_3_REV_A: PHYVersion
RP001_V1_0_3_REV_A: PHYVersion
RP002_V1_0_0: PHYVersion
RP002_V1_0_1: PHYVersion
RP002_V1_0_2: PHYVersion
RP002_V1_0_3: PHYVersion
RP002_V1_0_4: PHYVersion
CLASS_A: Class
CLASS_B: Class
CLASS_C: Class
LOWEST: TxSchedulePriority
LOW: TxSchedulePriority
BELOW_NORMAL: TxSchedulePriority
NORMAL: TxSchedulePriority
ABOVE_NORMAL: TxSchedulePriority
HIGH: TxSchedulePriority
HIGHEST: TxSchedulePriority
RELAY_WOR_CHANNEL_DEFAULT: RelayWORChannel
RELAY_WOR_CHANNEL_SECONDARY: RelayWORChannel

class Message(_message.Message):
    __slots__ = ("m_hdr", "mic", "mac_payload", "join_request_payload", "join_accept_payload", "rejoin_request_payload")
    M_HDR_FIELD_NUMBER: _ClassVar[int]
    MIC_FIELD_NUMBER: _ClassVar[int]
    MAC_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    JOIN_REQUEST_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    JOIN_ACCEPT_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    REJOIN_REQUEST_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    m_hdr: MHDR
    mic: bytes
    mac_payload: MACPayload
    join_request_payload: JoinRequestPayload
    join_accept_payload: JoinAcceptPayload
    rejoin_request_payload: RejoinRequestPayload
    def __init__(self, m_hdr: _Optional[_Union[MHDR, _Mapping]] = ..., mic: _Optional[bytes] = ..., mac_payload: _Optional[_Union[MACPayload, _Mapping]] = ..., join_request_payload: _Optional[_Union[JoinRequestPayload, _Mapping]] = ..., join_accept_payload: _Optional[_Union[JoinAcceptPayload, _Mapping]] = ..., rejoin_request_payload: _Optional[_Union[RejoinRequestPayload, _Mapping]] = ...) -> None: ...

class MHDR(_message.Message):
    __slots__ = ("m_type", "major")
    M_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAJOR_FIELD_NUMBER: _ClassVar[int]
    m_type: MType
    major: Major
    def __init__(self, m_type: _Optional[_Union[MType, str]] = ..., major: _Optional[_Union[Major, str]] = ...) -> None: ...

class MACPayload(_message.Message):
    __slots__ = ("f_hdr", "f_port", "frm_payload", "decoded_payload", "full_f_cnt")
    F_HDR_FIELD_NUMBER: _ClassVar[int]
    F_PORT_FIELD_NUMBER: _ClassVar[int]
    FRM_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    DECODED_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    FULL_F_CNT_FIELD_NUMBER: _ClassVar[int]
    f_hdr: FHDR
    f_port: int
    frm_payload: bytes
    decoded_payload: _struct_pb2.Struct
    full_f_cnt: int
    def __init__(self, f_hdr: _Optional[_Union[FHDR, _Mapping]] = ..., f_port: _Optional[int] = ..., frm_payload: _Optional[bytes] = ..., decoded_payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., full_f_cnt: _Optional[int] = ...) -> None: ...

class FHDR(_message.Message):
    __slots__ = ("dev_addr", "f_ctrl", "f_cnt", "f_opts")
    DEV_ADDR_FIELD_NUMBER: _ClassVar[int]
    F_CTRL_FIELD_NUMBER: _ClassVar[int]
    F_CNT_FIELD_NUMBER: _ClassVar[int]
    F_OPTS_FIELD_NUMBER: _ClassVar[int]
    dev_addr: bytes
    f_ctrl: FCtrl
    f_cnt: int
    f_opts: bytes
    def __init__(self, dev_addr: _Optional[bytes] = ..., f_ctrl: _Optional[_Union[FCtrl, _Mapping]] = ..., f_cnt: _Optional[int] = ..., f_opts: _Optional[bytes] = ...) -> None: ...

class FCtrl(_message.Message):
    __slots__ = ("adr", "adr_ack_req", "ack", "f_pending", "class_b")
    ADR_FIELD_NUMBER: _ClassVar[int]
    ADR_ACK_REQ_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    F_PENDING_FIELD_NUMBER: _ClassVar[int]
    CLASS_B_FIELD_NUMBER: _ClassVar[int]
    adr: bool
    adr_ack_req: bool
    ack: bool
    f_pending: bool
    class_b: bool
    def __init__(self, adr: _Optional[bool] = ..., adr_ack_req: _Optional[bool] = ..., ack: _Optional[bool] = ..., f_pending: _Optional[bool] = ..., class_b: _Optional[bool] = ...) -> None: ...

class JoinRequestPayload(_message.Message):
    __slots__ = ("join_eui", "dev_eui", "dev_nonce")
    JOIN_EUI_FIELD_NUMBER: _ClassVar[int]
    DEV_EUI_FIELD_NUMBER: _ClassVar[int]
    DEV_NONCE_FIELD_NUMBER: _ClassVar[int]
    join_eui: bytes
    dev_eui: bytes
    dev_nonce: bytes
    def __init__(self, join_eui: _Optional[bytes] = ..., dev_eui: _Optional[bytes] = ..., dev_nonce: _Optional[bytes] = ...) -> None: ...

class RejoinRequestPayload(_message.Message):
    __slots__ = ("rejoin_type", "net_id", "join_eui", "dev_eui", "rejoin_cnt")
    REJOIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    NET_ID_FIELD_NUMBER: _ClassVar[int]
    JOIN_EUI_FIELD_NUMBER: _ClassVar[int]
    DEV_EUI_FIELD_NUMBER: _ClassVar[int]
    REJOIN_CNT_FIELD_NUMBER: _ClassVar[int]
    rejoin_type: RejoinRequestType
    net_id: bytes
    join_eui: bytes
    dev_eui: bytes
    rejoin_cnt: int
    def __init__(self, rejoin_type: _Optional[_Union[RejoinRequestType, str]] = ..., net_id: _Optional[bytes] = ..., join_eui: _Optional[bytes] = ..., dev_eui: _Optional[bytes] = ..., rejoin_cnt: _Optional[int] = ...) -> None: ...

class JoinAcceptPayload(_message.Message):
    __slots__ = ("encrypted", "join_nonce", "net_id", "dev_addr", "dl_settings", "rx_delay", "cf_list")
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    JOIN_NONCE_FIELD_NUMBER: _ClassVar[int]
    NET_ID_FIELD_NUMBER: _ClassVar[int]
    DEV_ADDR_FIELD_NUMBER: _ClassVar[int]
    DL_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    RX_DELAY_FIELD_NUMBER: _ClassVar[int]
    CF_LIST_FIELD_NUMBER: _ClassVar[int]
    encrypted: bytes
    join_nonce: bytes
    net_id: bytes
    dev_addr: bytes
    dl_settings: DLSettings
    rx_delay: RxDelay
    cf_list: CFList
    def __init__(self, encrypted: _Optional[bytes] = ..., join_nonce: _Optional[bytes] = ..., net_id: _Optional[bytes] = ..., dev_addr: _Optional[bytes] = ..., dl_settings: _Optional[_Union[DLSettings, _Mapping]] = ..., rx_delay: _Optional[_Union[RxDelay, str]] = ..., cf_list: _Optional[_Union[CFList, _Mapping]] = ...) -> None: ...

class DLSettings(_message.Message):
    __slots__ = ("rx1_dr_offset", "rx2_dr", "opt_neg")
    RX1_DR_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RX2_DR_FIELD_NUMBER: _ClassVar[int]
    OPT_NEG_FIELD_NUMBER: _ClassVar[int]
    rx1_dr_offset: DataRateOffset
    rx2_dr: DataRateIndex
    opt_neg: bool
    def __init__(self, rx1_dr_offset: _Optional[_Union[DataRateOffset, str]] = ..., rx2_dr: _Optional[_Union[DataRateIndex, str]] = ..., opt_neg: _Optional[bool] = ...) -> None: ...

class CFList(_message.Message):
    __slots__ = ("type", "freq", "ch_masks")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FREQ_FIELD_NUMBER: _ClassVar[int]
    CH_MASKS_FIELD_NUMBER: _ClassVar[int]
    type: CFListType
    freq: _containers.RepeatedScalarFieldContainer[int]
    ch_masks: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, type: _Optional[_Union[CFListType, str]] = ..., freq: _Optional[_Iterable[int]] = ..., ch_masks: _Optional[_Iterable[bool]] = ...) -> None: ...

class DataRate(_message.Message):
    __slots__ = ("lora", "fsk", "lrfhss")
    LORA_FIELD_NUMBER: _ClassVar[int]
    FSK_FIELD_NUMBER: _ClassVar[int]
    LRFHSS_FIELD_NUMBER: _ClassVar[int]
    lora: LoRaDataRate
    fsk: FSKDataRate
    lrfhss: LRFHSSDataRate
    def __init__(self, lora: _Optional[_Union[LoRaDataRate, _Mapping]] = ..., fsk: _Optional[_Union[FSKDataRate, _Mapping]] = ..., lrfhss: _Optional[_Union[LRFHSSDataRate, _Mapping]] = ...) -> None: ...

class LoRaDataRate(_message.Message):
    __slots__ = ("bandwidth", "spreading_factor", "coding_rate")
    BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    SPREADING_FACTOR_FIELD_NUMBER: _ClassVar[int]
    CODING_RATE_FIELD_NUMBER: _ClassVar[int]
    bandwidth: int
    spreading_factor: int
    coding_rate: str
    def __init__(self, bandwidth: _Optional[int] = ..., spreading_factor: _Optional[int] = ..., coding_rate: _Optional[str] = ...) -> None: ...

class FSKDataRate(_message.Message):
    __slots__ = ("bit_rate",)
    BIT_RATE_FIELD_NUMBER: _ClassVar[int]
    bit_rate: int
    def __init__(self, bit_rate: _Optional[int] = ...) -> None: ...

class LRFHSSDataRate(_message.Message):
    __slots__ = ("modulation_type", "operating_channel_width", "coding_rate")
    MODULATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPERATING_CHANNEL_WIDTH_FIELD_NUMBER: _ClassVar[int]
    CODING_RATE_FIELD_NUMBER: _ClassVar[int]
    modulation_type: int
    operating_channel_width: int
    coding_rate: str
    def __init__(self, modulation_type: _Optional[int] = ..., operating_channel_width: _Optional[int] = ..., coding_rate: _Optional[str] = ...) -> None: ...

class TxSettings(_message.Message):
    __slots__ = ("data_rate", "frequency", "enable_crc", "timestamp", "time", "downlink", "concentrator_timestamp")
    class Downlink(_message.Message):
        __slots__ = ("antenna_index", "tx_power", "invert_polarization")
        ANTENNA_INDEX_FIELD_NUMBER: _ClassVar[int]
        TX_POWER_FIELD_NUMBER: _ClassVar[int]
        INVERT_POLARIZATION_FIELD_NUMBER: _ClassVar[int]
        antenna_index: int
        tx_power: float
        invert_polarization: bool
        def __init__(self, antenna_index: _Optional[int] = ..., tx_power: _Optional[float] = ..., invert_polarization: _Optional[bool] = ...) -> None: ...
    DATA_RATE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    ENABLE_CRC_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    DOWNLINK_FIELD_NUMBER: _ClassVar[int]
    CONCENTRATOR_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    data_rate: DataRate
    frequency: int
    enable_crc: bool
    timestamp: int
    time: _timestamp_pb2.Timestamp
    downlink: TxSettings.Downlink
    concentrator_timestamp: int
    def __init__(self, data_rate: _Optional[_Union[DataRate, _Mapping]] = ..., frequency: _Optional[int] = ..., enable_crc: _Optional[bool] = ..., timestamp: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., downlink: _Optional[_Union[TxSettings.Downlink, _Mapping]] = ..., concentrator_timestamp: _Optional[int] = ...) -> None: ...

class GatewayAntennaIdentifiers(_message.Message):
    __slots__ = ("gateway_ids", "antenna_index")
    GATEWAY_IDS_FIELD_NUMBER: _ClassVar[int]
    ANTENNA_INDEX_FIELD_NUMBER: _ClassVar[int]
    gateway_ids: _identifiers_pb2.GatewayIdentifiers
    antenna_index: int
    def __init__(self, gateway_ids: _Optional[_Union[_identifiers_pb2.GatewayIdentifiers, _Mapping]] = ..., antenna_index: _Optional[int] = ...) -> None: ...

class ClassBCGatewayIdentifiers(_message.Message):
    __slots__ = ("gateway_ids", "antenna_index", "group_index")
    GATEWAY_IDS_FIELD_NUMBER: _ClassVar[int]
    ANTENNA_INDEX_FIELD_NUMBER: _ClassVar[int]
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    gateway_ids: _identifiers_pb2.GatewayIdentifiers
    antenna_index: int
    group_index: int
    def __init__(self, gateway_ids: _Optional[_Union[_identifiers_pb2.GatewayIdentifiers, _Mapping]] = ..., antenna_index: _Optional[int] = ..., group_index: _Optional[int] = ...) -> None: ...

class DownlinkPath(_message.Message):
    __slots__ = ("uplink_token", "fixed")
    UPLINK_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FIXED_FIELD_NUMBER: _ClassVar[int]
    uplink_token: bytes
    fixed: GatewayAntennaIdentifiers
    def __init__(self, uplink_token: _Optional[bytes] = ..., fixed: _Optional[_Union[GatewayAntennaIdentifiers, _Mapping]] = ...) -> None: ...

class UplinkToken(_message.Message):
    __slots__ = ("ids", "timestamp", "server_time", "concentrator_time", "gateway_time")
    IDS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    CONCENTRATOR_TIME_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_TIME_FIELD_NUMBER: _ClassVar[int]
    ids: GatewayAntennaIdentifiers
    timestamp: int
    server_time: _timestamp_pb2.Timestamp
    concentrator_time: int
    gateway_time: _timestamp_pb2.Timestamp
    def __init__(self, ids: _Optional[_Union[GatewayAntennaIdentifiers, _Mapping]] = ..., timestamp: _Optional[int] = ..., server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., concentrator_time: _Optional[int] = ..., gateway_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TxRequest(_message.Message):
    __slots__ = ("downlink_paths", "rx1_delay", "rx1_data_rate", "rx1_frequency", "rx2_data_rate", "rx2_frequency", "priority", "absolute_time", "frequency_plan_id", "advanced")
    CLASS_FIELD_NUMBER: _ClassVar[int]
    DOWNLINK_PATHS_FIELD_NUMBER: _ClassVar[int]
    RX1_DELAY_FIELD_NUMBER: _ClassVar[int]
    RX1_DATA_RATE_FIELD_NUMBER: _ClassVar[int]
    RX1_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    RX2_DATA_RATE_FIELD_NUMBER: _ClassVar[int]
    RX2_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ABSOLUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    ADVANCED_FIELD_NUMBER: _ClassVar[int]
    downlink_paths: _containers.RepeatedCompositeFieldContainer[DownlinkPath]
    rx1_delay: RxDelay
    rx1_data_rate: DataRate
    rx1_frequency: int
    rx2_data_rate: DataRate
    rx2_frequency: int
    priority: TxSchedulePriority
    absolute_time: _timestamp_pb2.Timestamp
    frequency_plan_id: str
    advanced: _struct_pb2.Struct
    def __init__(self, downlink_paths: _Optional[_Iterable[_Union[DownlinkPath, _Mapping]]] = ..., rx1_delay: _Optional[_Union[RxDelay, str]] = ..., rx1_data_rate: _Optional[_Union[DataRate, _Mapping]] = ..., rx1_frequency: _Optional[int] = ..., rx2_data_rate: _Optional[_Union[DataRate, _Mapping]] = ..., rx2_frequency: _Optional[int] = ..., priority: _Optional[_Union[TxSchedulePriority, str]] = ..., absolute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., frequency_plan_id: _Optional[str] = ..., advanced: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., **kwargs) -> None: ...
