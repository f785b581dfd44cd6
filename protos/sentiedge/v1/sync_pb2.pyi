from protos.sentiedge.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnrollRequest(_message.Message):
    __slots__ = ("node_id", "enrollment_token")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    enrollment_token: str
    def __init__(self, node_id: _Optional[str] = ..., enrollment_token: _Optional[str] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("node_id", "node_secret")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_SECRET_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    node_secret: str
    def __init__(self, node_id: _Optional[str] = ..., node_secret: _Optional[str] = ...) -> None: ...

class EdgeMessage(_message.Message):
    __slots__ = ("hello", "ack", "heartbeat", "filing", "adaptation")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    FILING_FIELD_NUMBER: _ClassVar[int]
    ADAPTATION_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    ack: Ack
    heartbeat: Heartbeat
    filing: PrivacyFiling
    adaptation: AdaptationUpdate
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., filing: _Optional[_Union[PrivacyFiling, _Mapping]] = ..., adaptation: _Optional[_Union[AdaptationUpdate, _Mapping]] = ...) -> None: ...

class AdaptationUpdate(_message.Message):
    __slots__ = ("job", "round", "status", "delta", "count", "error")
    JOB_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    job: str
    round: int
    status: str
    delta: _containers.RepeatedScalarFieldContainer[float]
    count: int
    error: str
    def __init__(self, job: _Optional[str] = ..., round: _Optional[int] = ..., status: _Optional[str] = ..., delta: _Optional[_Iterable[float]] = ..., count: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("node_id", "region", "capabilities", "model", "privacy_cursor", "agent_version", "bundled", "cohort_window_seconds", "cooccurrence_window_seconds")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_CURSOR_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    BUNDLED_FIELD_NUMBER: _ClassVar[int]
    COHORT_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COOCCURRENCE_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    region: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    model: _common_pb2.ModelRef
    privacy_cursor: int
    agent_version: str
    bundled: _common_pb2.ModelRef
    cohort_window_seconds: int
    cooccurrence_window_seconds: int
    def __init__(self, node_id: _Optional[str] = ..., region: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., privacy_cursor: _Optional[int] = ..., agent_version: _Optional[str] = ..., bundled: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., cohort_window_seconds: _Optional[int] = ..., cooccurrence_window_seconds: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("status", "error", "privacy_seq", "model")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_SEQ_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.AckStatus
    error: str
    privacy_seq: int
    model: _common_pb2.ModelRef
    def __init__(self, status: _Optional[_Union[_common_pb2.AckStatus, str]] = ..., error: _Optional[str] = ..., privacy_seq: _Optional[int] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("health", "cohorts", "triggers", "experiments", "seq", "segments", "cooccurrence")
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    COOCCURRENCE_FIELD_NUMBER: _ClassVar[int]
    health: NodeHealth
    cohorts: _containers.RepeatedCompositeFieldContainer[CohortAggregate]
    triggers: _containers.RepeatedCompositeFieldContainer[TriggerEvent]
    experiments: _containers.RepeatedCompositeFieldContainer[ExperimentAggregate]
    seq: int
    segments: _containers.RepeatedCompositeFieldContainer[SegmentAggregate]
    cooccurrence: _containers.RepeatedCompositeFieldContainer[PairWindow]
    def __init__(self, health: _Optional[_Union[NodeHealth, _Mapping]] = ..., cohorts: _Optional[_Iterable[_Union[CohortAggregate, _Mapping]]] = ..., triggers: _Optional[_Iterable[_Union[TriggerEvent, _Mapping]]] = ..., experiments: _Optional[_Iterable[_Union[ExperimentAggregate, _Mapping]]] = ..., seq: _Optional[int] = ..., segments: _Optional[_Iterable[_Union[SegmentAggregate, _Mapping]]] = ..., cooccurrence: _Optional[_Iterable[_Union[PairWindow, _Mapping]]] = ...) -> None: ...

class PairWindow(_message.Message):
    __slots__ = ("tenant", "window_start", "window_seconds", "items", "pairs")
    class ItemsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    window_start: int
    window_seconds: int
    items: _containers.ScalarMap[str, int]
    pairs: _containers.RepeatedCompositeFieldContainer[ItemPair]
    def __init__(self, tenant: _Optional[str] = ..., window_start: _Optional[int] = ..., window_seconds: _Optional[int] = ..., items: _Optional[_Mapping[str, int]] = ..., pairs: _Optional[_Iterable[_Union[ItemPair, _Mapping]]] = ...) -> None: ...

class ItemPair(_message.Message):
    __slots__ = ("a", "b", "users")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    a: str
    b: str
    users: int
    def __init__(self, a: _Optional[str] = ..., b: _Optional[str] = ..., users: _Optional[int] = ...) -> None: ...

class SegmentAggregate(_message.Message):
    __slots__ = ("window_start", "version", "index", "seed", "users", "vector_sum", "categories")
    class CategoriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_SUM_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    window_start: int
    version: int
    index: int
    seed: bool
    users: int
    vector_sum: _containers.RepeatedScalarFieldContainer[float]
    categories: _containers.ScalarMap[str, float]
    def __init__(self, window_start: _Optional[int] = ..., version: _Optional[int] = ..., index: _Optional[int] = ..., seed: _Optional[bool] = ..., users: _Optional[int] = ..., vector_sum: _Optional[_Iterable[float]] = ..., categories: _Optional[_Mapping[str, float]] = ...) -> None: ...

class TriggerEvent(_message.Message):
    __slots__ = ("rule", "cohort", "active", "value", "at", "tenant")
    RULE_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    rule: str
    cohort: str
    active: bool
    value: float
    at: float
    tenant: str
    def __init__(self, rule: _Optional[str] = ..., cohort: _Optional[str] = ..., active: _Optional[bool] = ..., value: _Optional[float] = ..., at: _Optional[float] = ..., tenant: _Optional[str] = ...) -> None: ...

class NodeHealth(_message.Message):
    __slots__ = ("ready", "model", "privacy_cursor", "uptime_s", "queued_filings", "serving_personal", "outputs", "quality")
    READY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_CURSOR_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FILINGS_FIELD_NUMBER: _ClassVar[int]
    SERVING_PERSONAL_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    model: _common_pb2.ModelRef
    privacy_cursor: int
    uptime_s: float
    queued_filings: int
    serving_personal: bool
    outputs: ModelOutputs
    quality: _containers.RepeatedCompositeFieldContainer[ModelQuality]
    def __init__(self, ready: _Optional[bool] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., privacy_cursor: _Optional[int] = ..., uptime_s: _Optional[float] = ..., queued_filings: _Optional[int] = ..., serving_personal: _Optional[bool] = ..., outputs: _Optional[_Union[ModelOutputs, _Mapping]] = ..., quality: _Optional[_Iterable[_Union[ModelQuality, _Mapping]]] = ...) -> None: ...

class ModelQuality(_message.Message):
    __slots__ = ("model", "labelled", "disagreements")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LABELLED_FIELD_NUMBER: _ClassVar[int]
    DISAGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    labelled: int
    disagreements: int
    def __init__(self, model: _Optional[str] = ..., labelled: _Optional[int] = ..., disagreements: _Optional[int] = ...) -> None: ...

class ModelOutputs(_message.Message):
    __slots__ = ("labels", "label_counts", "reference_labels", "confidence_counts", "reference_confidence", "label_psi", "confidence_psi")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_LABELS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_PSI_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_PSI_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    label_counts: _containers.RepeatedScalarFieldContainer[int]
    reference_labels: _containers.RepeatedScalarFieldContainer[float]
    confidence_counts: _containers.RepeatedScalarFieldContainer[int]
    reference_confidence: _containers.RepeatedScalarFieldContainer[float]
    label_psi: float
    confidence_psi: float
    def __init__(self, labels: _Optional[_Iterable[str]] = ..., label_counts: _Optional[_Iterable[int]] = ..., reference_labels: _Optional[_Iterable[float]] = ..., confidence_counts: _Optional[_Iterable[int]] = ..., reference_confidence: _Optional[_Iterable[float]] = ..., label_psi: _Optional[float] = ..., confidence_psi: _Optional[float] = ...) -> None: ...

class CohortAggregate(_message.Message):
    __slots__ = ("window_start", "window_seconds", "cohort", "users", "texts", "negative", "events", "sentiment_sum", "categories", "topic_texts", "topic_negative", "topic_events", "topic_sentiment", "tenant", "aspect_texts", "aspect_negative", "aspect_sentiment")
    class CategoriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TopicTextsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class TopicNegativeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class TopicEventsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class TopicSentimentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class AspectTextsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class AspectNegativeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class AspectSentimentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_SUM_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    TOPIC_TEXTS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_EVENTS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ASPECT_TEXTS_FIELD_NUMBER: _ClassVar[int]
    ASPECT_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    ASPECT_SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    window_start: int
    window_seconds: int
    cohort: str
    users: int
    texts: int
    negative: int
    events: int
    sentiment_sum: float
    categories: _containers.ScalarMap[str, float]
    topic_texts: _containers.ScalarMap[str, int]
    topic_negative: _containers.ScalarMap[str, int]
    topic_events: _containers.ScalarMap[str, int]
    topic_sentiment: _containers.ScalarMap[str, float]
    tenant: str
    aspect_texts: _containers.ScalarMap[str, int]
    aspect_negative: _containers.ScalarMap[str, int]
    aspect_sentiment: _containers.ScalarMap[str, float]
    def __init__(self, window_start: _Optional[int] = ..., window_seconds: _Optional[int] = ..., cohort: _Optional[str] = ..., users: _Optional[int] = ..., texts: _Optional[int] = ..., negative: _Optional[int] = ..., events: _Optional[int] = ..., sentiment_sum: _Optional[float] = ..., categories: _Optional[_Mapping[str, float]] = ..., topic_texts: _Optional[_Mapping[str, int]] = ..., topic_negative: _Optional[_Mapping[str, int]] = ..., topic_events: _Optional[_Mapping[str, int]] = ..., topic_sentiment: _Optional[_Mapping[str, float]] = ..., tenant: _Optional[str] = ..., aspect_texts: _Optional[_Mapping[str, int]] = ..., aspect_negative: _Optional[_Mapping[str, int]] = ..., aspect_sentiment: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PrivacyFiling(_message.Message):
    __slots__ = ("request_id", "kind", "subject", "purposes", "at", "policy_version")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    kind: _common_pb2.PrivacyKind
    subject: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    at: float
    policy_version: str
    def __init__(self, request_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.PrivacyKind, str]] = ..., subject: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., at: _Optional[float] = ..., policy_version: _Optional[str] = ...) -> None: ...

class ControlMessage(_message.Message):
    __slots__ = ("welcome", "privacy", "model", "priors", "filing_receipt", "rules", "experiments", "apps", "heartbeat_receipt", "segments", "adaptation", "neighbours", "topics")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIORS_FIELD_NUMBER: _ClassVar[int]
    FILING_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    ADAPTATION_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    privacy: PrivacyUpdate
    model: ModelAssignment
    priors: CohortPriors
    filing_receipt: FilingReceipt
    rules: RuleSet
    experiments: ExperimentSet
    apps: AppSet
    heartbeat_receipt: HeartbeatReceipt
    segments: SegmentSet
    adaptation: AdaptationRound
    neighbours: NeighbourTable
    topics: TopicSets
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., privacy: _Optional[_Union[PrivacyUpdate, _Mapping]] = ..., model: _Optional[_Union[ModelAssignment, _Mapping]] = ..., priors: _Optional[_Union[CohortPriors, _Mapping]] = ..., filing_receipt: _Optional[_Union[FilingReceipt, _Mapping]] = ..., rules: _Optional[_Union[RuleSet, _Mapping]] = ..., experiments: _Optional[_Union[ExperimentSet, _Mapping]] = ..., apps: _Optional[_Union[AppSet, _Mapping]] = ..., heartbeat_receipt: _Optional[_Union[HeartbeatReceipt, _Mapping]] = ..., segments: _Optional[_Union[SegmentSet, _Mapping]] = ..., adaptation: _Optional[_Union[AdaptationRound, _Mapping]] = ..., neighbours: _Optional[_Union[NeighbourTable, _Mapping]] = ..., topics: _Optional[_Union[TopicSets, _Mapping]] = ...) -> None: ...

class NeighbourTable(_message.Message):
    __slots__ = ("tenant", "version", "built_at", "items")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    version: int
    built_at: float
    items: _containers.RepeatedCompositeFieldContainer[ItemNeighbours]
    def __init__(self, tenant: _Optional[str] = ..., version: _Optional[int] = ..., built_at: _Optional[float] = ..., items: _Optional[_Iterable[_Union[ItemNeighbours, _Mapping]]] = ...) -> None: ...

class ItemNeighbours(_message.Message):
    __slots__ = ("item", "neighbours", "similarity")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    item: str
    neighbours: _containers.RepeatedScalarFieldContainer[str]
    similarity: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, item: _Optional[str] = ..., neighbours: _Optional[_Iterable[str]] = ..., similarity: _Optional[_Iterable[float]] = ...) -> None: ...

class TopicSets(_message.Message):
    __slots__ = ("version", "sets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SETS_FIELD_NUMBER: _ClassVar[int]
    version: int
    sets: _containers.RepeatedCompositeFieldContainer[TopicSet]
    def __init__(self, version: _Optional[int] = ..., sets: _Optional[_Iterable[_Union[TopicSet, _Mapping]]] = ...) -> None: ...

class TopicSet(_message.Message):
    __slots__ = ("tenant", "version", "topics")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    version: int
    topics: _containers.RepeatedCompositeFieldContainer[Topic]
    def __init__(self, tenant: _Optional[str] = ..., version: _Optional[int] = ..., topics: _Optional[_Iterable[_Union[Topic, _Mapping]]] = ...) -> None: ...

class Topic(_message.Message):
    __slots__ = ("name", "examples", "keywords")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    examples: _containers.RepeatedScalarFieldContainer[str]
    keywords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., examples: _Optional[_Iterable[str]] = ..., keywords: _Optional[_Iterable[str]] = ...) -> None: ...

class AdaptationRound(_message.Message):
    __slots__ = ("job", "round", "rounds", "model", "dimension", "theta", "steps", "regularization", "clip", "noise_multiplier", "min_labels")
    JOB_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REGULARIZATION_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MIN_LABELS_FIELD_NUMBER: _ClassVar[int]
    job: str
    round: int
    rounds: int
    model: _common_pb2.ModelRef
    dimension: int
    theta: _containers.RepeatedScalarFieldContainer[float]
    steps: int
    regularization: float
    clip: float
    noise_multiplier: float
    min_labels: int
    def __init__(self, job: _Optional[str] = ..., round: _Optional[int] = ..., rounds: _Optional[int] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., dimension: _Optional[int] = ..., theta: _Optional[_Iterable[float]] = ..., steps: _Optional[int] = ..., regularization: _Optional[float] = ..., clip: _Optional[float] = ..., noise_multiplier: _Optional[float] = ..., min_labels: _Optional[int] = ...) -> None: ...

class SegmentSet(_message.Message):
    __slots__ = ("version", "k", "dimension", "segments", "updated_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    k: int
    dimension: int
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    updated_at: float
    def __init__(self, version: _Optional[int] = ..., k: _Optional[int] = ..., dimension: _Optional[int] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., updated_at: _Optional[float] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("id", "label", "centroid", "users", "last_users", "categories")
    class CategoriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CENTROID_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    LAST_USERS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    centroid: _containers.RepeatedScalarFieldContainer[float]
    users: float
    last_users: int
    categories: _containers.ScalarMap[str, float]
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., centroid: _Optional[_Iterable[float]] = ..., users: _Optional[float] = ..., last_users: _Optional[int] = ..., categories: _Optional[_Mapping[str, float]] = ...) -> None: ...

class HeartbeatReceipt(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class AppSet(_message.Message):
    __slots__ = ("version", "apps", "legacy_tenant")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    LEGACY_TENANT_FIELD_NUMBER: _ClassVar[int]
    version: int
    apps: _containers.RepeatedCompositeFieldContainer[App]
    legacy_tenant: str
    def __init__(self, version: _Optional[int] = ..., apps: _Optional[_Iterable[_Union[App, _Mapping]]] = ..., legacy_tenant: _Optional[str] = ...) -> None: ...

class App(_message.Message):
    __slots__ = ("app_id", "name", "origins", "client_keys", "signing_keys", "server_keys", "revoked_at", "tenant", "policy_version", "policy_url")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEYS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEYS_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEYS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_URL_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    name: str
    origins: _containers.RepeatedScalarFieldContainer[str]
    client_keys: _containers.RepeatedCompositeFieldContainer[KeyDigest]
    signing_keys: _containers.RepeatedCompositeFieldContainer[SigningKey]
    server_keys: _containers.RepeatedCompositeFieldContainer[ServerKey]
    revoked_at: float
    tenant: str
    policy_version: str
    policy_url: str
    def __init__(self, app_id: _Optional[str] = ..., name: _Optional[str] = ..., origins: _Optional[_Iterable[str]] = ..., client_keys: _Optional[_Iterable[_Union[KeyDigest, _Mapping]]] = ..., signing_keys: _Optional[_Iterable[_Union[SigningKey, _Mapping]]] = ..., server_keys: _Optional[_Iterable[_Union[ServerKey, _Mapping]]] = ..., revoked_at: _Optional[float] = ..., tenant: _Optional[str] = ..., policy_version: _Optional[str] = ..., policy_url: _Optional[str] = ...) -> None: ...

class KeyDigest(_message.Message):
    __slots__ = ("sha256", "not_after")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    not_after: float
    def __init__(self, sha256: _Optional[str] = ..., not_after: _Optional[float] = ...) -> None: ...

class SigningKey(_message.Message):
    __slots__ = ("kid", "alg", "secret", "public_key", "not_after")
    KID_FIELD_NUMBER: _ClassVar[int]
    ALG_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    kid: str
    alg: str
    secret: str
    public_key: str
    not_after: float
    def __init__(self, kid: _Optional[str] = ..., alg: _Optional[str] = ..., secret: _Optional[str] = ..., public_key: _Optional[str] = ..., not_after: _Optional[float] = ...) -> None: ...

class ServerKey(_message.Message):
    __slots__ = ("name", "sha256", "scopes", "revoked_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    revoked_at: float
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., revoked_at: _Optional[float] = ...) -> None: ...

class ExperimentSet(_message.Message):
    __slots__ = ("version", "experiments")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    def __init__(self, version: _Optional[int] = ..., experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("name", "salt", "arms", "segment", "tenant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    salt: str
    arms: _containers.RepeatedCompositeFieldContainer[Arm]
    segment: str
    tenant: str
    def __init__(self, name: _Optional[str] = ..., salt: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[Arm, _Mapping]]] = ..., segment: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class Arm(_message.Message):
    __slots__ = ("name", "weight", "holdout")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    weight: int
    holdout: bool
    def __init__(self, name: _Optional[str] = ..., weight: _Optional[int] = ..., holdout: _Optional[bool] = ...) -> None: ...

class ExperimentAggregate(_message.Message):
    __slots__ = ("window_start", "experiment", "arm", "cohort", "exposures", "clicks", "conversions", "value", "tenant")
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    window_start: int
    experiment: str
    arm: str
    cohort: str
    exposures: int
    clicks: int
    conversions: int
    value: float
    tenant: str
    def __init__(self, window_start: _Optional[int] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ..., cohort: _Optional[str] = ..., exposures: _Optional[int] = ..., clicks: _Optional[int] = ..., conversions: _Optional[int] = ..., value: _Optional[float] = ..., tenant: _Optional[str] = ...) -> None: ...

class RuleSet(_message.Message):
    __slots__ = ("version", "rules")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    version: int
    rules: _containers.RepeatedCompositeFieldContainer[TriggerRule]
    def __init__(self, version: _Optional[int] = ..., rules: _Optional[_Iterable[_Union[TriggerRule, _Mapping]]] = ...) -> None: ...

class TriggerRule(_message.Message):
    __slots__ = ("name", "cohort", "signal", "category", "op", "threshold", "clear", "window_minutes", "min_size", "action", "segment", "tenant", "topic")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MINUTES_FIELD_NUMBER: _ClassVar[int]
    MIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    name: str
    cohort: str
    signal: str
    category: str
    op: str
    threshold: float
    clear: float
    window_minutes: float
    min_size: int
    action: str
    segment: str
    tenant: str
    topic: str
    def __init__(self, name: _Optional[str] = ..., cohort: _Optional[str] = ..., signal: _Optional[str] = ..., category: _Optional[str] = ..., op: _Optional[str] = ..., threshold: _Optional[float] = ..., clear: _Optional[float] = ..., window_minutes: _Optional[float] = ..., min_size: _Optional[int] = ..., action: _Optional[str] = ..., segment: _Optional[str] = ..., tenant: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("node_id", "privacy_head", "heartbeat_interval_s", "privacy_floor", "cohort_window_seconds", "window_error", "cooccurrence_window_seconds")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_HEAD_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FLOOR_FIELD_NUMBER: _ClassVar[int]
    COHORT_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ERROR_FIELD_NUMBER: _ClassVar[int]
    COOCCURRENCE_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    privacy_head: int
    heartbeat_interval_s: float
    privacy_floor: int
    cohort_window_seconds: int
    window_error: str
    cooccurrence_window_seconds: int
    def __init__(self, node_id: _Optional[str] = ..., privacy_head: _Optional[int] = ..., heartbeat_interval_s: _Optional[float] = ..., privacy_floor: _Optional[int] = ..., cohort_window_seconds: _Optional[int] = ..., window_error: _Optional[str] = ..., cooccurrence_window_seconds: _Optional[int] = ...) -> None: ...

class PrivacyUpdate(_message.Message):
    __slots__ = ("seq", "request_id", "kind", "subject", "purposes", "at", "origin_node", "policy_version")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NODE_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    seq: int
    request_id: str
    kind: _common_pb2.PrivacyKind
    subject: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    at: float
    origin_node: str
    policy_version: str
    def __init__(self, seq: _Optional[int] = ..., request_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.PrivacyKind, str]] = ..., subject: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., at: _Optional[float] = ..., origin_node: _Optional[str] = ..., policy_version: _Optional[str] = ...) -> None: ...

class ModelAssignment(_message.Message):
    __slots__ = ("model", "bundle_sha256", "bundle_size", "bundled")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BUNDLED_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    bundle_sha256: str
    bundle_size: int
    bundled: bool
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., bundle_sha256: _Optional[str] = ..., bundle_size: _Optional[int] = ..., bundled: _Optional[bool] = ...) -> None: ...

class CohortPriors(_message.Message):
    __slots__ = ("generated_at", "cohorts", "recent")
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    generated_at: float
    cohorts: _containers.RepeatedCompositeFieldContainer[CohortAggregate]
    recent: _containers.RepeatedCompositeFieldContainer[CohortAggregate]
    def __init__(self, generated_at: _Optional[float] = ..., cohorts: _Optional[_Iterable[_Union[CohortAggregate, _Mapping]]] = ..., recent: _Optional[_Iterable[_Union[CohortAggregate, _Mapping]]] = ...) -> None: ...

class FilingReceipt(_message.Message):
    __slots__ = ("request_id", "seq")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    seq: int
    def __init__(self, request_id: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("manifest_sha256", "offset", "node_id")
    MANIFEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    manifest_sha256: str
    offset: int
    node_id: str
    def __init__(self, manifest_sha256: _Optional[str] = ..., offset: _Optional[int] = ..., node_id: _Optional[str] = ...) -> None: ...

class BundleChunk(_message.Message):
    __slots__ = ("data", "offset", "total")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    total: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...
