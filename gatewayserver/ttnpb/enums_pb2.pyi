from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class DownlinkPathConstraint(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOWNLINK_PATH_CONSTRAINT_NONE: _ClassVar[DownlinkPathConstraint]
    DOWNLINK_PATH_CONSTRAINT_PREFER_OTHER: _ClassVar[DownlinkPathConstraint]
    DOWNLINK_PATH_CONSTRAINT_NEVER: _ClassVar[DownlinkPathConstraint]
DOWNLINK_PATH_CONSTRAINT_NONE: DownlinkPathConstraint
DOWNLINK_PATH_CONSTRAINT_PREFER_OTHER: DownlinkPathConstraint
DOWNLINK_PATH_CONSTRAINT_NEVER: DownlinkPathConstraint
