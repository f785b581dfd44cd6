from protos.sentiedge.v1 import common_pb2 as _common_pb2
from protos.sentiedge.v1 import sync_pb2 as _sync_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdaptRequest(_message.Message):
    __slots__ = ("name", "version", "rounds", "steps", "regularization", "clip", "noise_multiplier", "epsilon", "min_labels", "min_edges", "round_timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REGULARIZATION_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    MIN_LABELS_FIELD_NUMBER: _ClassVar[int]
    MIN_EDGES_FIELD_NUMBER: _ClassVar[int]
    ROUND_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    rounds: int
    steps: int
    regularization: float
    clip: float
    noise_multiplier: float
    epsilon: float
    min_labels: int
    min_edges: int
    round_timeout_s: float
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., rounds: _Optional[int] = ..., steps: _Optional[int] = ..., regularization: _Optional[float] = ..., clip: _Optional[float] = ..., noise_multiplier: _Optional[float] = ..., epsilon: _Optional[float] = ..., min_labels: _Optional[int] = ..., min_edges: _Optional[int] = ..., round_timeout_s: _Optional[float] = ...) -> None: ...

class AdaptationRoundInfo(_message.Message):
    __slots__ = ("round", "edges", "labels", "update_norm", "declined")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_NORM_FIELD_NUMBER: _ClassVar[int]
    DECLINED_FIELD_NUMBER: _ClassVar[int]
    round: int
    edges: int
    labels: int
    update_norm: float
    declined: int
    def __init__(self, round: _Optional[int] = ..., edges: _Optional[int] = ..., labels: _Optional[int] = ..., update_norm: _Optional[float] = ..., declined: _Optional[int] = ...) -> None: ...

class AdaptationJob(_message.Message):
    __slots__ = ("job", "model", "state", "round", "rounds", "noise_multiplier", "clip", "epsilon", "delta", "candidate", "error", "history", "created_at", "updated_at", "awaiting_signature")
    JOB_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    AWAITING_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    job: str
    model: _common_pb2.ModelRef
    state: str
    round: int
    rounds: int
    noise_multiplier: float
    clip: float
    epsilon: float
    delta: float
    candidate: str
    error: str
    history: _containers.RepeatedCompositeFieldContainer[AdaptationRoundInfo]
    created_at: float
    updated_at: float
    awaiting_signature: bool
    def __init__(self, job: _Optional[str] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., state: _Optional[str] = ..., round: _Optional[int] = ..., rounds: _Optional[int] = ..., noise_multiplier: _Optional[float] = ..., clip: _Optional[float] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., candidate: _Optional[str] = ..., error: _Optional[str] = ..., history: _Optional[_Iterable[_Union[AdaptationRoundInfo, _Mapping]]] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., awaiting_signature: _Optional[bool] = ...) -> None: ...

class ListAdaptationsRequest(_message.Message):
    __slots__ = ("name", "job")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    name: str
    job: str
    def __init__(self, name: _Optional[str] = ..., job: _Optional[str] = ...) -> None: ...

class PrivacyLedgerRow(_message.Message):
    __slots__ = ("lineage", "noisy_rounds", "noiseless_rounds", "epsilon", "delta")
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    NOISY_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    NOISELESS_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    lineage: str
    noisy_rounds: int
    noiseless_rounds: int
    epsilon: float
    delta: float
    def __init__(self, lineage: _Optional[str] = ..., noisy_rounds: _Optional[int] = ..., noiseless_rounds: _Optional[int] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class ListAdaptationsResponse(_message.Message):
    __slots__ = ("jobs", "ledger")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[AdaptationJob]
    ledger: _containers.RepeatedCompositeFieldContainer[PrivacyLedgerRow]
    def __init__(self, jobs: _Optional[_Iterable[_Union[AdaptationJob, _Mapping]]] = ..., ledger: _Optional[_Iterable[_Union[PrivacyLedgerRow, _Mapping]]] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class QualityRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class QualityRow(_message.Message):
    __slots__ = ("model", "scope", "labelled", "disagreements", "disagreement_rate", "low", "high")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LABELLED_FIELD_NUMBER: _ClassVar[int]
    DISAGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    DISAGREEMENT_RATE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    model: str
    scope: str
    labelled: int
    disagreements: int
    disagreement_rate: float
    low: float
    high: float
    def __init__(self, model: _Optional[str] = ..., scope: _Optional[str] = ..., labelled: _Optional[int] = ..., disagreements: _Optional[int] = ..., disagreement_rate: _Optional[float] = ..., low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class QualityComparison(_message.Message):
    __slots__ = ("name", "candidate", "baseline", "candidate_rate", "baseline_rate", "difference", "low", "high", "p_value", "verdict", "candidate_labelled", "baseline_labelled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_RATE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_RATE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_LABELLED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_LABELLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    candidate: str
    baseline: str
    candidate_rate: float
    baseline_rate: float
    difference: float
    low: float
    high: float
    p_value: float
    verdict: str
    candidate_labelled: int
    baseline_labelled: int
    def __init__(self, name: _Optional[str] = ..., candidate: _Optional[str] = ..., baseline: _Optional[str] = ..., candidate_rate: _Optional[float] = ..., baseline_rate: _Optional[float] = ..., difference: _Optional[float] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., p_value: _Optional[float] = ..., verdict: _Optional[str] = ..., candidate_labelled: _Optional[int] = ..., baseline_labelled: _Optional[int] = ...) -> None: ...

class QualityReport(_message.Message):
    __slots__ = ("rows", "comparisons")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[QualityRow]
    comparisons: _containers.RepeatedCompositeFieldContainer[QualityComparison]
    def __init__(self, rows: _Optional[_Iterable[_Union[QualityRow, _Mapping]]] = ..., comparisons: _Optional[_Iterable[_Union[QualityComparison, _Mapping]]] = ...) -> None: ...

class DriftRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DriftRow(_message.Message):
    __slots__ = ("scope", "model", "predictions", "label_psi", "confidence_psi", "drift")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    LABEL_PSI_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_PSI_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    scope: str
    model: str
    predictions: int
    label_psi: float
    confidence_psi: float
    drift: bool
    def __init__(self, scope: _Optional[str] = ..., model: _Optional[str] = ..., predictions: _Optional[int] = ..., label_psi: _Optional[float] = ..., confidence_psi: _Optional[float] = ..., drift: _Optional[bool] = ...) -> None: ...

class DriftReport(_message.Message):
    __slots__ = ("rows", "threshold")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[DriftRow]
    threshold: float
    def __init__(self, rows: _Optional[_Iterable[_Union[DriftRow, _Mapping]]] = ..., threshold: _Optional[float] = ...) -> None: ...

class EnrollNodeRequest(_message.Message):
    __slots__ = ("node_id", "ttl_s")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    ttl_s: float
    def __init__(self, node_id: _Optional[str] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class NodeEnrollment(_message.Message):
    __slots__ = ("node_id", "enrollment_token", "expires_at")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    enrollment_token: str
    expires_at: float
    def __init__(self, node_id: _Optional[str] = ..., enrollment_token: _Optional[str] = ..., expires_at: _Optional[float] = ...) -> None: ...

class RevokeNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class QuarantineRequest(_message.Message):
    __slots__ = ("node_id", "release")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    release: bool
    def __init__(self, node_id: _Optional[str] = ..., release: _Optional[bool] = ...) -> None: ...

class ConfigureAppRequest(_message.Message):
    __slots__ = ("name", "set_origins", "origins", "policy_version", "policy_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SET_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    set_origins: bool
    origins: _containers.RepeatedScalarFieldContainer[str]
    policy_version: str
    policy_url: str
    def __init__(self, name: _Optional[str] = ..., set_origins: _Optional[bool] = ..., origins: _Optional[_Iterable[str]] = ..., policy_version: _Optional[str] = ..., policy_url: _Optional[str] = ...) -> None: ...

class AddAppRequest(_message.Message):
    __slots__ = ("name", "origins", "public_key", "tenant", "alg", "policy_version", "policy_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ALG_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    origins: _containers.RepeatedScalarFieldContainer[str]
    public_key: str
    tenant: str
    alg: str
    policy_version: str
    policy_url: str
    def __init__(self, name: _Optional[str] = ..., origins: _Optional[_Iterable[str]] = ..., public_key: _Optional[str] = ..., tenant: _Optional[str] = ..., alg: _Optional[str] = ..., policy_version: _Optional[str] = ..., policy_url: _Optional[str] = ...) -> None: ...

class ListAppsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateAppRequest(_message.Message):
    __slots__ = ("name", "grace_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    grace_s: float
    def __init__(self, name: _Optional[str] = ..., grace_s: _Optional[float] = ...) -> None: ...

class RevokeAppRequest(_message.Message):
    __slots__ = ("name", "server_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    server_key: str
    def __init__(self, name: _Optional[str] = ..., server_key: _Optional[str] = ...) -> None: ...

class AddServerKeyRequest(_message.Message):
    __slots__ = ("name", "key_name", "scopes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    name: str
    key_name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., key_name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class AppTokenRequest(_message.Message):
    __slots__ = ("name", "user_id", "ttl_s", "consent", "policy_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    user_id: str
    ttl_s: float
    consent: _containers.RepeatedScalarFieldContainer[str]
    policy_version: str
    def __init__(self, name: _Optional[str] = ..., user_id: _Optional[str] = ..., ttl_s: _Optional[float] = ..., consent: _Optional[_Iterable[str]] = ..., policy_version: _Optional[str] = ...) -> None: ...

class AppToken(_message.Message):
    __slots__ = ("token", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: float
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[float] = ...) -> None: ...

class ServerKeyInfo(_message.Message):
    __slots__ = ("name", "scopes", "created_at", "revoked_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    created_at: float
    revoked_at: float
    def __init__(self, name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., created_at: _Optional[float] = ..., revoked_at: _Optional[float] = ...) -> None: ...

class AppInfo(_message.Message):
    __slots__ = ("name", "app_id", "origins", "client_key", "signing_secret", "kid", "server_key", "server_keys", "created_at", "revoked_at", "client_keys", "tenant", "private_key", "alg", "policy_version", "policy_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    KID_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEY_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEYS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEYS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    ALG_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    app_id: str
    origins: _containers.RepeatedScalarFieldContainer[str]
    client_key: str
    signing_secret: str
    kid: str
    server_key: str
    server_keys: _containers.RepeatedCompositeFieldContainer[ServerKeyInfo]
    created_at: float
    revoked_at: float
    client_keys: int
    tenant: str
    private_key: str
    alg: str
    policy_version: str
    policy_url: str
    def __init__(self, name: _Optional[str] = ..., app_id: _Optional[str] = ..., origins: _Optional[_Iterable[str]] = ..., client_key: _Optional[str] = ..., signing_secret: _Optional[str] = ..., kid: _Optional[str] = ..., server_key: _Optional[str] = ..., server_keys: _Optional[_Iterable[_Union[ServerKeyInfo, _Mapping]]] = ..., created_at: _Optional[float] = ..., revoked_at: _Optional[float] = ..., client_keys: _Optional[int] = ..., tenant: _Optional[str] = ..., private_key: _Optional[str] = ..., alg: _Optional[str] = ..., policy_version: _Optional[str] = ..., policy_url: _Optional[str] = ...) -> None: ...

class ListAppsResponse(_message.Message):
    __slots__ = ("apps",)
    APPS_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[AppInfo]
    def __init__(self, apps: _Optional[_Iterable[_Union[AppInfo, _Mapping]]] = ...) -> None: ...

class DailyAggregate(_message.Message):
    __slots__ = ("day", "cohort", "category", "users", "texts", "negative", "sentiment_mean", "neutral_share")
    DAY_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_MEAN_FIELD_NUMBER: _ClassVar[int]
    NEUTRAL_SHARE_FIELD_NUMBER: _ClassVar[int]
    day: str
    cohort: str
    category: str
    users: int
    texts: int
    negative: int
    sentiment_mean: float
    neutral_share: float
    def __init__(self, day: _Optional[str] = ..., cohort: _Optional[str] = ..., category: _Optional[str] = ..., users: _Optional[int] = ..., texts: _Optional[int] = ..., negative: _Optional[int] = ..., sentiment_mean: _Optional[float] = ..., neutral_share: _Optional[float] = ...) -> None: ...

class ImportCohortsRequest(_message.Message):
    __slots__ = ("tenant", "rows", "source")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    rows: _containers.RepeatedCompositeFieldContainer[DailyAggregate]
    source: str
    def __init__(self, tenant: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[DailyAggregate, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class ImportCohortsResponse(_message.Message):
    __slots__ = ("rows", "days", "cohorts", "aggregates", "tenant")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    AGGREGATES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    rows: int
    days: int
    cohorts: int
    aggregates: int
    tenant: str
    def __init__(self, rows: _Optional[int] = ..., days: _Optional[int] = ..., cohorts: _Optional[int] = ..., aggregates: _Optional[int] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveRuleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RuleHistoryRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class RuleHistoryEntry(_message.Message):
    __slots__ = ("at", "node_id", "rule", "cohort", "event", "value")
    AT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    at: float
    node_id: str
    rule: str
    cohort: str
    event: str
    value: float
    def __init__(self, at: _Optional[float] = ..., node_id: _Optional[str] = ..., rule: _Optional[str] = ..., cohort: _Optional[str] = ..., event: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class RuleHistory(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[RuleHistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[RuleHistoryEntry, _Mapping]]] = ...) -> None: ...

class AddTopicRequest(_message.Message):
    __slots__ = ("tenant", "topic")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    topic: _sync_pb2.Topic
    def __init__(self, tenant: _Optional[str] = ..., topic: _Optional[_Union[_sync_pb2.Topic, _Mapping]] = ...) -> None: ...

class ListTopicsRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class RemoveTopicRequest(_message.Message):
    __slots__ = ("tenant", "name")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class SeedTopicsRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class SeedTopicsResponse(_message.Message):
    __slots__ = ("set", "added", "kept")
    SET_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    set: _sync_pb2.TopicSet
    added: _containers.RepeatedScalarFieldContainer[str]
    kept: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, set: _Optional[_Union[_sync_pb2.TopicSet, _Mapping]] = ..., added: _Optional[_Iterable[str]] = ..., kept: _Optional[_Iterable[str]] = ...) -> None: ...

class TopicTrendsRequest(_message.Message):
    __slots__ = ("tenant", "topic")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    topic: str
    def __init__(self, tenant: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class TopicWindow(_message.Message):
    __slots__ = ("window_start", "texts", "negative", "sentiment_sum", "users")
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_SUM_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    window_start: int
    texts: int
    negative: int
    sentiment_sum: float
    users: int
    def __init__(self, window_start: _Optional[int] = ..., texts: _Optional[int] = ..., negative: _Optional[int] = ..., sentiment_sum: _Optional[float] = ..., users: _Optional[int] = ...) -> None: ...

class TopicTrend(_message.Message):
    __slots__ = ("tenant", "topic", "windows", "recent_texts", "recent_negative", "baseline_texts", "baseline_negative", "recent_share", "baseline_share", "z", "p_value", "rising", "firing", "note", "mean_sentiment")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    RECENT_TEXTS_FIELD_NUMBER: _ClassVar[int]
    RECENT_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_TEXTS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    RECENT_SHARE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SHARE_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    RISING_FIELD_NUMBER: _ClassVar[int]
    FIRING_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    MEAN_SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    topic: str
    windows: _containers.RepeatedCompositeFieldContainer[TopicWindow]
    recent_texts: int
    recent_negative: int
    baseline_texts: int
    baseline_negative: int
    recent_share: float
    baseline_share: float
    z: float
    p_value: float
    rising: bool
    firing: bool
    note: str
    mean_sentiment: float
    def __init__(self, tenant: _Optional[str] = ..., topic: _Optional[str] = ..., windows: _Optional[_Iterable[_Union[TopicWindow, _Mapping]]] = ..., recent_texts: _Optional[int] = ..., recent_negative: _Optional[int] = ..., baseline_texts: _Optional[int] = ..., baseline_negative: _Optional[int] = ..., recent_share: _Optional[float] = ..., baseline_share: _Optional[float] = ..., z: _Optional[float] = ..., p_value: _Optional[float] = ..., rising: _Optional[bool] = ..., firing: _Optional[bool] = ..., note: _Optional[str] = ..., mean_sentiment: _Optional[float] = ...) -> None: ...

class TopicTrends(_message.Message):
    __slots__ = ("trends", "rule", "window_seconds", "generated_at")
    TRENDS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    trends: _containers.RepeatedCompositeFieldContainer[TopicTrend]
    rule: str
    window_seconds: int
    generated_at: float
    def __init__(self, trends: _Optional[_Iterable[_Union[TopicTrend, _Mapping]]] = ..., rule: _Optional[str] = ..., window_seconds: _Optional[int] = ..., generated_at: _Optional[float] = ...) -> None: ...

class SetWebhookRequest(_message.Message):
    __slots__ = ("tenant", "url", "rotate_secret")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ROTATE_SECRET_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    url: str
    rotate_secret: bool
    def __init__(self, tenant: _Optional[str] = ..., url: _Optional[str] = ..., rotate_secret: _Optional[bool] = ...) -> None: ...

class WebhookInfo(_message.Message):
    __slots__ = ("tenant", "url", "secret", "created_at", "updated_at", "pending", "failed")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    url: str
    secret: str
    created_at: float
    updated_at: float
    pending: int
    failed: int
    def __init__(self, tenant: _Optional[str] = ..., url: _Optional[str] = ..., secret: _Optional[str] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., pending: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[WebhookInfo]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[WebhookInfo, _Mapping]]] = ...) -> None: ...

class RemoveWebhookRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class WebhookLogRequest(_message.Message):
    __slots__ = ("tenant", "limit")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    limit: int
    def __init__(self, tenant: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class TestWebhookRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("event_id", "tenant", "type", "state", "attempts", "created_at", "next_at", "delivered_at", "last_error")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_AT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    tenant: str
    type: str
    state: str
    attempts: int
    created_at: float
    next_at: float
    delivered_at: float
    last_error: str
    def __init__(self, event_id: _Optional[str] = ..., tenant: _Optional[str] = ..., type: _Optional[str] = ..., state: _Optional[str] = ..., attempts: _Optional[int] = ..., created_at: _Optional[float] = ..., next_at: _Optional[float] = ..., delivered_at: _Optional[float] = ..., last_error: _Optional[str] = ...) -> None: ...

class WebhookAttempt(_message.Message):
    __slots__ = ("event_id", "tenant", "type", "attempt", "at", "status", "error", "duration_ms", "url")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    tenant: str
    type: str
    attempt: int
    at: float
    status: int
    error: str
    duration_ms: float
    url: str
    def __init__(self, event_id: _Optional[str] = ..., tenant: _Optional[str] = ..., type: _Optional[str] = ..., attempt: _Optional[int] = ..., at: _Optional[float] = ..., status: _Optional[int] = ..., error: _Optional[str] = ..., duration_ms: _Optional[float] = ..., url: _Optional[str] = ...) -> None: ...

class WebhookLog(_message.Message):
    __slots__ = ("attempts", "deliveries")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[WebhookAttempt]
    deliveries: _containers.RepeatedCompositeFieldContainer[WebhookDelivery]
    def __init__(self, attempts: _Optional[_Iterable[_Union[WebhookAttempt, _Mapping]]] = ..., deliveries: _Optional[_Iterable[_Union[WebhookDelivery, _Mapping]]] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExperimentReportRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ArmResult(_message.Message):
    __slots__ = ("arm", "cohort", "exposures", "conversions", "conversion_rate", "lift", "diff", "ci_low", "ci_high", "p_value", "is_holdout", "warning", "value")
    ARM_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    IS_HOLDOUT_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    arm: str
    cohort: str
    exposures: int
    conversions: int
    conversion_rate: float
    lift: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    is_holdout: bool
    warning: str
    value: float
    def __init__(self, arm: _Optional[str] = ..., cohort: _Optional[str] = ..., exposures: _Optional[int] = ..., conversions: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., lift: _Optional[float] = ..., diff: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., p_value: _Optional[float] = ..., is_holdout: _Optional[bool] = ..., warning: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class ExperimentReport(_message.Message):
    __slots__ = ("name", "holdout", "results")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    holdout: str
    results: _containers.RepeatedCompositeFieldContainer[ArmResult]
    def __init__(self, name: _Optional[str] = ..., holdout: _Optional[str] = ..., results: _Optional[_Iterable[_Union[ArmResult, _Mapping]]] = ...) -> None: ...

class AddTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("name", "token", "created_at", "revoked_at", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    token: str
    created_at: float
    revoked_at: float
    source: str
    def __init__(self, name: _Optional[str] = ..., token: _Optional[str] = ..., created_at: _Optional[float] = ..., revoked_at: _Optional[float] = ..., source: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("at", "who", "action", "detail", "ok")
    AT_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    at: float
    who: str
    action: str
    detail: str
    ok: bool
    def __init__(self, at: _Optional[float] = ..., who: _Optional[str] = ..., action: _Optional[str] = ..., detail: _Optional[str] = ..., ok: _Optional[bool] = ...) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...

class PushChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model", "bundle_sha256", "bundle_size", "pushed_at", "already_present")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PUSHED_AT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    bundle_sha256: str
    bundle_size: int
    pushed_at: float
    already_present: bool
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., bundle_sha256: _Optional[str] = ..., bundle_size: _Optional[int] = ..., pushed_at: _Optional[float] = ..., already_present: _Optional[bool] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class RolloutRequest(_message.Message):
    __slots__ = ("name", "version", "percent", "nodes", "allow_unknown")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    percent: int
    nodes: _containers.RepeatedScalarFieldContainer[str]
    allow_unknown: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., percent: _Optional[int] = ..., nodes: _Optional[_Iterable[str]] = ..., allow_unknown: _Optional[bool] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ModelStatusRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class NodeModelState(_message.Message):
    __slots__ = ("node_id", "assigned", "serving", "state", "error")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    assigned: _common_pb2.ModelRef
    serving: _common_pb2.ModelRef
    state: str
    error: str
    def __init__(self, node_id: _Optional[str] = ..., assigned: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., serving: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., state: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class RolloutStatus(_message.Message):
    __slots__ = ("name", "current", "previous", "percent", "nodes", "node_states", "chosen", "warnings", "current_bundled", "previous_bundled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    NODE_STATES_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_BUNDLED_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_BUNDLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    current: _common_pb2.ModelRef
    previous: _common_pb2.ModelRef
    percent: int
    nodes: _containers.RepeatedScalarFieldContainer[str]
    node_states: _containers.RepeatedCompositeFieldContainer[NodeModelState]
    chosen: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    current_bundled: bool
    previous_bundled: bool
    def __init__(self, name: _Optional[str] = ..., current: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., previous: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., percent: _Optional[int] = ..., nodes: _Optional[_Iterable[str]] = ..., node_states: _Optional[_Iterable[_Union[NodeModelState, _Mapping]]] = ..., chosen: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., current_bundled: _Optional[bool] = ..., previous_bundled: _Optional[bool] = ...) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("user_id", "purposes", "idempotency_key", "tenant")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    idempotency_key: str
    tenant: str
    def __init__(self, user_id: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., idempotency_key: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("user_id", "idempotency_key", "tenant")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    idempotency_key: str
    tenant: str
    def __init__(self, user_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class PrivacyStatusRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class ListPrivacyRequests(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class NodeReceipt(_message.Message):
    __slots__ = ("node_id", "at")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    at: float
    def __init__(self, node_id: _Optional[str] = ..., at: _Optional[float] = ...) -> None: ...

class PrivacyRequestStatus(_message.Message):
    __slots__ = ("request_id", "seq", "kind", "subject", "purposes", "state", "created_at", "completed_at", "receipts", "missing", "origin_node")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NODE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    seq: int
    kind: _common_pb2.PrivacyKind
    subject: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    state: str
    created_at: float
    completed_at: float
    receipts: _containers.RepeatedCompositeFieldContainer[NodeReceipt]
    missing: _containers.RepeatedScalarFieldContainer[str]
    origin_node: str
    def __init__(self, request_id: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[_Union[_common_pb2.PrivacyKind, str]] = ..., subject: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., state: _Optional[str] = ..., created_at: _Optional[float] = ..., completed_at: _Optional[float] = ..., receipts: _Optional[_Iterable[_Union[NodeReceipt, _Mapping]]] = ..., missing: _Optional[_Iterable[str]] = ..., origin_node: _Optional[str] = ...) -> None: ...

class ListPrivacyResponse(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PrivacyRequestStatus]
    def __init__(self, requests: _Optional[_Iterable[_Union[PrivacyRequestStatus, _Mapping]]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "region", "model", "privacy_cursor", "cursor_lag", "last_seen", "connected_since", "state", "serving_personal", "credential", "quarantined")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_CURSOR_FIELD_NUMBER: _ClassVar[int]
    CURSOR_LAG_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SINCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SERVING_PERSONAL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    region: str
    model: _common_pb2.ModelRef
    privacy_cursor: int
    cursor_lag: int
    last_seen: float
    connected_since: float
    state: str
    serving_personal: bool
    credential: str
    quarantined: bool
    def __init__(self, node_id: _Optional[str] = ..., region: _Optional[str] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., privacy_cursor: _Optional[int] = ..., cursor_lag: _Optional[int] = ..., last_seen: _Optional[float] = ..., connected_since: _Optional[float] = ..., state: _Optional[str] = ..., serving_personal: _Optional[bool] = ..., credential: _Optional[str] = ..., quarantined: _Optional[bool] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class DecommissionRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class MergedCohortsRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...
