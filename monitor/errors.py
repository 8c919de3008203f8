"""qualmon's exceptions, in one place so callers can tell them apart."""


class QualmonError(Exception):
    """Base of every error qualmon raises on purpose."""


class ConfigError(QualmonError):
    """A setting has a value qualmon cannot use; the message names it and the fix."""


class BrokerUnavailable(QualmonError):
    """The Kafka cluster did not answer in time."""


class BrokerStartError(QualmonError):
    """The embedded broker could not be started."""


class NotFound(QualmonError):
    """A resource named by id does not exist; the message names it."""


class Conflict(QualmonError):
    """The request is valid but the resource's state does not allow it (e.g. a transition)."""


class InsufficientData(QualmonError):
    """The stored history cannot support the computation asked for; the message says what is
    missing."""


class ClosingTakenOver(QualmonError):
    """Another worker has started closing buckets since this one did: this one must stop writing
    (it lost input partition 0 without noticing, e.g. after a long pause)."""


class PartitionTakenOver(QualmonError):
    """Another worker has checkpointed an input partition this one still counted: this one
    lost the partition without noticing and must stop writing for it."""
