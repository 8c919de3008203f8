"""qualmon's exceptions, in one place so callers can tell them apart."""


class QualmonError(Exception):
    """Base of every error qualmon raises on purpose."""


class ConfigError(QualmonError):
    """A setting has a value qualmon cannot use; the message names it and the fix."""


class BrokerUnavailable(QualmonError):
    """The Kafka cluster did not answer in time."""


class BrokerStartError(QualmonError):
    """The embedded broker could not be started."""
