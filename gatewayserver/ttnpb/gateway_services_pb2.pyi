from . import gateway_pb2 as _gateway_pb2
from . import identifiers_pb2 as _identifiers_pb2
from . import rights_pb2 as _rights_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
