"""The channel Protocol, the settings base class and the registry."""

from __future__ import annotations

import errno
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import Field, model_validator

from ..config import Duration, Strict
from ..errors import RenderError

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline import PublishJob

# Modules holding the built-in channel types; imported on first registry use so
# that ``syndicate.config`` can validate channels without import cycles.
_BUILTIN_MODULES = ("feed", "archive", "outbox", "smtp", "webhook")


def deadline_field(default: int) -> Any:
    """The ``deadline`` key, with a default per channel type (seconds)."""
    return Field(
        default, ge=1,
        description="Longest time this channel may take for one edition. Channels run in "
        "parallel, each within its own deadline: past it, the channel stops at the next safe "
        "point and what is left stays pending, for the next `resume` (or publish) to finish.",
    )


class ChannelSettings(Strict):
    """Keys every ``[[channels]]`` entry accepts; each type adds its own."""

    type: str = Field(description="Channel type.")
    name: str = Field("", description="Name in logs and the ledger (default: the type); unique.")
    enabled: bool = Field(True, description="Set to false to keep the entry but not deliver.")
    deadline: Duration = deadline_field(120)

    @model_validator(mode="after")
    def _default_name(self) -> ChannelSettings:
        if not self.name:
            object.__setattr__(self, "name", self.type)
        return self

    def secret_env_vars(self) -> dict[str, str]:
        """``{key: ENV_VAR}`` for each secret this entry reads from the environment."""
        return {}


@dataclass(frozen=True)
class DeliveryReport:
    """What one channel did for one edition."""

    channel: str
    sent: int = 0
    failed: int = 0  # failed for good, not counting bounces: needs the operator
    skipped: int = 0
    pending: int = 0  # still to deliver: the edition stays unfinished, resumed later
    detail: str = ""
    bounced: int = 0  # the address does not exist: an outcome, not a failure

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.pending == 0


class Channel(Protocol):
    """An outbound channel. ``deliver`` must be idempotent per edition: the ledger
    says what was already done, so a resumed edition sends only what is missing."""

    type: ClassVar[str]
    Settings: ClassVar[type[ChannelSettings]]
    settings: ChannelSettings

    def deliver(self, job: PublishJob) -> DeliveryReport: ...


_REGISTRY: dict[str, type[Any]] = {}
_loaded = False


def register_channel(cls: type[Any]) -> type[Any]:
    """Class decorator: make ``cls`` available as ``type = cls.type`` in the config."""
    name = cls.type
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"channel type {name!r} registered twice")
    _REGISTRY[name] = cls
    return cls


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module}":
                raise


def channel_types() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def channel_settings_model(type_name: str) -> type[ChannelSettings] | None:
    _load_builtins()
    cls = _REGISTRY.get(type_name)
    return cls.Settings if cls is not None else None


def build_channel(settings: ChannelSettings, config: Config) -> Channel:
    _load_builtins()
    return _REGISTRY[settings.type](settings, config)  # type: ignore[no-any-return]


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_name(value: str, example: str) -> str:
    """Validate a ``*_env`` setting: it names an environment variable, it is not the secret."""
    if value and not _ENV_NAME.match(value):
        raise ValueError(f"the NAME of an environment variable, e.g. {example!r}")
    return value


# Write errors worth retrying on the next resume; anything else (permissions, read-only
# file system, missing mount) needs the operator.
_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EIO}
)


def is_transient(exc: OSError) -> bool:
    """Whether a write error may pass by itself (retry on resume) or needs the operator."""
    return exc.errno in _TRANSIENT_ERRNOS


def write_once(job: PublishJob, name: str, what: str, write: Callable[[], str]) -> DeliveryReport:
    """Deliver a channel that writes files once per edition (``feed``, ``archive``).

    One ledger row per edition (recipient ''): a row already 'sent' is not redone on
    resume, a 'failed' one waits for ``retry-failed``. ``write()`` renders and writes,
    returning the detail to record; a broken template (:class:`RenderError`) is a
    permanent failure, a write error is permanent unless :func:`is_transient`, in which
    case the row stays pending for the next resume. ``what`` names the files in messages.
    """
    delivery = job.ledger.ensure_delivery(job.edition.id, name, "")
    if delivery.status == "sent":
        return DeliveryReport(name, skipped=1, detail=f"{what} already written")
    if delivery.status == "failed":
        return DeliveryReport(name, failed=1, detail=f"failed earlier: {delivery.response}")
    try:
        detail = write()
    except RenderError as exc:
        job.ledger.mark_failed(delivery.id, None, str(exc), permanent=True)
        job.log.error("channel %s: %s", name, exc)
        return DeliveryReport(name, failed=1, detail=str(exc))
    except OSError as exc:
        message = f"cannot write the {what} in {job.config.public_dir}: {exc}"
        transient = is_transient(exc)
        job.ledger.mark_failed(delivery.id, None, message, permanent=not transient)
        job.log.error("channel %s: %s", name, message)
        if transient:
            return DeliveryReport(name, pending=1, detail=message)
        return DeliveryReport(name, failed=1, detail=message)
    job.ledger.mark_sent(delivery.id, detail)
    return DeliveryReport(name, sent=1, detail=detail)
