from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACK_STATUS_UNSPECIFIED: _ClassVar[AckStatus]
    ACK_STATUS_ACK: _ClassVar[AckStatus]
    ACK_STATUS_NACK: _ClassVar[AckStatus]

class PrivacyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIVACY_KIND_UNSPECIFIED: _ClassVar[PrivacyKind]
    PRIVACY_KIND_DELETE_USER: _ClassVar[PrivacyKind]
    PRIVACY_KIND_REVOKE_CONSENT: _ClassVar[PrivacyKind]
ACK_STATUS_UNSPECIFIED: AckStatus
ACK_STATUS_ACK: AckStatus
ACK_STATUS_NACK: AckStatus
PRIVACY_KIND_UNSPECIFIED: PrivacyKind
PRIVACY_KIND_DELETE_USER: PrivacyKind
PRIVACY_KIND_REVOKE_CONSENT: PrivacyKind

class ModelRef(_message.Message):
    __slots__ = ("name", "version", "manifest_sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    manifest_sha256: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., manifest_sha256: _Optional[str] = ...) -> None: ...
