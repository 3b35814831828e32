"""The channel registry: every channel type, built-in or third-party, found through the
``syndicate.channels`` entry-point group.

A type is an entry point ``NAME = "module:Class"``: NAME is the ``type`` of its
``[[channels]]`` entries, and Class follows the :class:`~._base.Channel` Protocol
(``type_name`` equal to NAME, a ``Settings`` model, ``deliver(job)``). The five built-ins
are declared in this project's ``pyproject.toml`` exactly like a plug-in's (datasette
loads its own plugins the way it loads anyone's). An entry point is loaded only when its
type is needed: validating a config that lists ``feed`` imports the feed channel, not
the webhook one and its HTTP library.

When this distribution's own entry points are not installed (a source checkout run
from ``PYTHONPATH``, an editable install made before they were declared), the
built-ins come from :data:`BUILTINS`, the same table.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, cast

from ..config import ChannelSettings
from ..errors import PluginError

if TYPE_CHECKING:
    from ..config import Config
    from ._base import Channel

GROUP = "syndicate.channels"
DISTRIBUTION = "syndicate"

#: The built-in types, as in ``[project.entry-points."syndicate.channels"]``.
BUILTINS: Mapping[str, str] = {
    "archive": "syndicate.channels.archive:ArchiveChannel",
    "feed": "syndicate.channels.feed:FeedChannel",
    "outbox": "syndicate.channels.outbox:OutboxChannel",
    "smtp": "syndicate.channels.smtp:SmtpChannel",
    "webhook": "syndicate.channels.webhook:WebhookChannel",
}


@dataclass(frozen=True)
class Source:
    """Where a channel type comes from: ``module:attr`` in a distribution."""

    name: str
    value: str
    distribution: str


def installed_sources() -> dict[str, Source]:
    """Every channel type of the entry-point group, plus the built-ins if missing."""
    found: dict[str, Source] = {}
    for point in entry_points(group=GROUP):
        dist = point.dist.name if point.dist is not None else "?"
        # Two distributions declaring one name: the first wins, as importlib lists them;
        # a built-in name always means the built-in.
        if point.name not in found or dist == DISTRIBUTION:
            found[point.name] = Source(point.name, point.value, dist)
    for name, value in BUILTINS.items():
        if name not in found or found[name].distribution != DISTRIBUTION:
            found[name] = Source(name, value, DISTRIBUTION)
    return found


def _load(source: Source) -> type[Channel]:
    """Import ``source`` and check it is a channel class; :class:`PluginError` if not."""
    where = f"channel type {source.name!r} ({source.value}, from the package {source.distribution})"
    module, _, attr = source.value.partition(":")
    try:
        obj: object = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
    except Exception as exc:  # a broken plug-in must name itself, in one line
        raise PluginError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    settings = getattr(obj, "Settings", None)
    if not isinstance(obj, type) or not (
        isinstance(settings, type) and issubclass(settings, ChannelSettings)
    ) or not callable(getattr(obj, "deliver", None)):
        raise PluginError(f"{where} is not a channel: expected a class with a Settings model "
                          "(a ChannelSettings subclass) and a deliver(job) method")
    declared = getattr(obj, "type_name", source.name)
    if declared != source.name:
        raise PluginError(f"{where} declares type_name = {declared!r}: expected "
                          f"{source.name!r}, the entry point's name")
    return cast("type[Channel]", obj)


class ChannelRegistry:
    """Channel types by name, loaded on first use (thread-safe).

    ``more``: where the rest of the sources come from (the entry points), asked once and
    only when a name outside ``sources`` is needed or every type is listed: reading
    every installed distribution's entry points costs tens of milliseconds, which a
    config naming only built-in types (they are in ``sources`` from the start) never pays.
    """

    def __init__(self, sources: Mapping[str, Source],
                 more: Callable[[], Mapping[str, Source]] | None = None) -> None:
        self._sources = dict(sources)
        self._more = more
        #: Loaded (or registered in-process) classes, by type name.
        self.classes: dict[str, type[Channel]] = {}
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()

    @classmethod
    def installed(cls) -> ChannelRegistry:
        builtins = {name: Source(name, value, DISTRIBUTION) for name, value in BUILTINS.items()}
        return cls(builtins, more=installed_sources)

    @property
    def sources(self) -> dict[str, Source]:
        """Every source (the entry points read first if they were not yet)."""
        with self._scan_lock:
            if self._more is not None:
                # The whole table replaces the built-ins given first (the same values:
                # installed_sources keeps a built-in name for the built-in).
                self._sources = dict(self._more())
                self._more = None
            return self._sources

    def _source(self, name: str) -> Source:
        """The source of ``name`` (KeyError if unknown), without reading the entry points
        for a built-in type."""
        found = self._sources.get(name)
        return found if found is not None else self.sources[name]

    def types(self) -> list[str]:
        return sorted({*self.sources, *self.classes})

    def __contains__(self, name: object) -> bool:
        return name in self._sources or name in self.classes or name in self.sources

    def channel_class(self, name: str) -> type[Channel]:
        """The class of type ``name``; KeyError if unknown, PluginError if broken."""
        with self._lock:
            if name not in self.classes:
                self.classes[name] = _load(self._source(name))
            return self.classes[name]

    def register(self, cls: type[Channel]) -> None:
        """Add ``cls`` in this process (tests, scripts); a package uses an entry point."""
        name = cls.type_name
        with self._lock:
            known = self.classes.get(name)
            if known is not None and known is not cls:
                raise ValueError(f"channel type {name!r} registered twice")
            self.classes[name] = cls

    def settings_models(self) -> SettingsModels:
        """Type name -> settings model, loading a type only when it is looked up."""
        return SettingsModels(self)

    def build(self, settings: ChannelSettings, config: Config) -> Channel:
        return self.channel_class(settings.type)(settings, config)


class SettingsModels(Mapping[str, type[ChannelSettings]]):
    """A read-only view of a registry's settings models: iterating lists the type
    names without importing anything; a lookup imports that one type."""

    def __init__(self, registry: ChannelRegistry) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> type[ChannelSettings]:
        if name not in self._registry:
            raise KeyError(name)
        return self._registry.channel_class(name).Settings

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.types())

    def __len__(self) -> int:
        return len(self._registry.types())


_installed: ChannelRegistry | None = None
_installed_lock = threading.Lock()


def channel_registry() -> ChannelRegistry:
    """The registry of the installed channel types (read once per process)."""
    global _installed
    with _installed_lock:
        if _installed is None:
            _installed = ChannelRegistry.installed()
        return _installed


def register_channel(cls: type[Channel]) -> type[Channel]:
    """Class decorator: make ``cls`` available as ``type = cls.type_name`` in this process.

    A package adds a channel type with an entry point instead (docs/channels.md).
    """
    channel_registry().register(cls)
    return cls


def channel_types() -> list[str]:
    return channel_registry().types()


def channel_settings_models() -> SettingsModels:
    return channel_registry().settings_models()


def channel_settings_model(type_name: str) -> type[ChannelSettings] | None:
    return channel_settings_models().get(type_name)


def build_channel(settings: ChannelSettings, config: Config) -> Channel:
    return channel_registry().build(settings, config)
