"""Finding plugins: entry points, pluggy, and the registry of named components.

Each entry point of the ``parquet_ingestor`` group is loaded on its own: a plugin that fails to
import or to validate is skipped with a warning naming its distribution, version and error, so
one broken plugin never bricks the CLI. ``INGEST_DISABLE_PLUGINS=a,b`` skips plugins by name.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, Protocol

import pluggy

from . import hookspecs
from .errors import ConfigError, PluginError
from .options import Option, mask, parse_options, secret_values

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "parquet_ingestor"
Kind = Literal["source", "transformer", "encoder", "sink", "metrics_exporter"]
#: the pipeline's components (each with its --NAME flag and a plugin template)
KINDS: tuple[Kind, ...] = ("source", "transformer", "encoder", "sink")
#: everything a plugin registers: the components, and exporters of the run's metrics
REGISTERED: tuple[Kind, ...] = (*KINDS, "metrics_exporter")


@dataclass(frozen=True)
class Bundled:
    """A plugin that ships with parquet-ingestor as its own distribution and core extra."""

    plugin: str  # entry-point name
    distribution: str
    extra: str
    components: tuple[tuple[Kind, str], ...]

    def install(self) -> str:
        return f"pip install 'parquet-ingestor[{self.extra}]'"


#: The bundled plugins, declared once: what the hints for a missing component, ``ingest plugins``
#: and ``ingest demo`` say (a test checks it against the plugins and the core's extras).
BUNDLED: tuple[Bundled, ...] = (
    Bundled("parquet", "parquet-ingestor-parquet", "parquet", (("encoder", "parquet"),)),
    Bundled("s3", "parquet-ingestor-s3", "s3", (("sink", "s3"),)),
    Bundled("sqs", "parquet-ingestor-sqs", "sqs", (("source", "sqs"),)),
    Bundled("iceberg", "parquet-ingestor-iceberg", "iceberg", (("sink", "iceberg"),)),
)


def bundled_with(kind: Kind, name: str) -> Bundled | None:
    """The bundled plugin that provides component ``name`` of ``kind``, if any."""
    return next((b for b in BUNDLED if (kind, name) in b.components), None)


@dataclass
class PluginInfo:
    """One plugin as ``ingest plugins`` shows it."""

    name: str
    distribution: str
    version: str
    module: str
    components: list[ComponentSpec] = field(default_factory=list)
    error: str | None = None


@dataclass
class ComponentSpec:
    """A registered component: its name, how to build it, and the options it takes."""

    kind: Kind
    name: str
    factory: Callable[..., Any] | str
    options: tuple[Option, ...] = ()
    help: str = ""
    plugin: str = ""
    distribution: str = ""

    def where(self) -> str:
        return f"{self.kind.replace('_', ' ')} '{self.name}'"

    def parse(self, raw: dict[str, Any]) -> dict[str, Any]:
        return parse_options(self.options, raw, self.where())

    def create(self, raw: dict[str, Any]) -> Any:
        """Validate ``raw`` options and build the component (importing it now if lazy).

        A ConfigError raised by the component has the values of its secret options masked.
        """
        values = self.parse(raw)
        factory = self.factory
        if isinstance(factory, str):
            factory = load_object(factory)
        try:
            return factory(**values)
        except ConfigError as exc:
            secrets = secret_values(self.options, values)
            if not secrets:
                raise
            raise ConfigError(mask(str(exc), secrets)) from None


def option_collisions(registry: Registry, reserved: Iterable[str]) -> list[str]:
    """Component options named like a pipeline option (``workers``...), one line each: the
    two are easy to confuse in a config file and in ``INGEST_*`` variables."""
    names = set(reserved)
    return [f"{spec.kind} '{spec.name}' (plugin {spec.plugin}): option '{opt.name}' has the "
            f"name of the pipeline option --{opt.name.replace('_', '-')}; rename it"
            for kinds in registry.components.values() for spec in kinds.values()
            for opt in spec.options if opt.name in names]


def load_object(ref: str) -> Any:
    """Import ``"package.module:attr"`` (the only kind of import a config can cause)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"expected 'module:attribute', got {ref!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {ref!r}: {exc}") from None
    return obj


class Register(Protocol):
    """What the ``ingest_register_*`` hooks receive: call it once per component."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        options: Iterable[Option] = (),
        help: str = "",  # noqa: A002 - the natural name
    ) -> ComponentSpec: ...


class Registry:
    """Every loaded plugin and the components they registered, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.plugins: dict[str, PluginInfo] = {}
        self.components: dict[Kind, dict[str, ComponentSpec]] = {k: {} for k in REGISTERED}
        self.conflicts: dict[tuple[Kind, str], list[ComponentSpec]] = {}

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def get(self, kind: Kind, name: str) -> ComponentSpec:
        """The component ``name`` of ``kind``; a ConfigError says what exists instead."""
        clash = self.conflicts.get((kind, name))
        if clash:
            who = " and ".join(f"{c.distribution} (plugin {c.plugin})" for c in clash)
            raise ConfigError(f"{kind} '{name}' is registered twice, by {who}; "
                              f"disable one with INGEST_DISABLE_PLUGINS")
        spec = self.components[kind].get(name)
        if spec is None:
            known = ", ".join(sorted(self.components[kind])) or "none installed"
            bundled = bundled_with(kind, name)
            hint = f": {self.missing_hint(bundled)}" if bundled else ""
            raise ConfigError(f"unknown {kind} '{name}' (available: {known}){hint}")
        return spec

    def missing_hint(self, bundled: Bundled) -> str:
        """Why a bundled plugin's components are absent here, and what to do about it."""
        if bundled.plugin in disabled_plugins():
            return f"the {bundled.plugin} plugin is disabled by INGEST_DISABLE_PLUGINS"
        info = self.plugins.get(bundled.plugin)
        if info is not None and info.error:
            return (f"the {bundled.plugin} plugin of {info.distribution} {info.version} failed "
                    f"to load: {info.error}")
        return f"it comes with {bundled.distribution} ({bundled.install()})"

    def missing_bundled(self) -> list[Bundled]:
        """Bundled plugins whose components this registry lacks (not installed, or disabled)."""
        return [b for b in BUNDLED
                if any(name not in self.components[kind] for kind, name in b.components)]

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.components[kind])

    def errors(self) -> list[str]:
        """Load errors and name clashes, one line each."""
        lines = [f"{p.name} ({p.distribution} {p.version}): {p.error}"
                 for p in self.plugins.values() if p.error]
        for (kind, name), specs in self.conflicts.items():
            dists = " and ".join(s.distribution for s in specs)
            lines.append(f"{kind} '{name}' registered by both {dists}")
        return lines

    # -- building ------------------------------------------------------------------------

    def add_plugin(self, module: object, info: PluginInfo) -> None:
        """Register one plugin object and collect its components; errors are recorded, not raised."""
        self.plugins[info.name] = info
        try:
            self.pm.register(module, name=info.name)
            _check_hooks(module, info.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not brick the CLI
            self._fail(info, exc)
            return
        for kind in REGISTERED:
            caller = getattr(self.pm.hook, f"ingest_register_{kind}s")
            for impl in caller.get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                try:
                    impl.function(register=self._register_fn(kind, info))
                except Exception as exc:  # noqa: BLE001
                    self._fail(info, exc)
                    return

    def _fail(self, info: PluginInfo, exc: Exception) -> None:
        info.error = f"{type(exc).__name__}: {exc}"
        log.warning("skipping plugin %s from %s %s: %s",
                    info.name, info.distribution, info.version, info.error)
        for spec in info.components:  # only this plugin's specs, never a clashing other's
            key = (spec.kind, spec.name)
            clash = [s for s in self.conflicts.get(key, []) if s is not spec]
            if key in self.conflicts:
                del self.conflicts[key]
                if len(clash) > 1:
                    self.conflicts[key] = clash
            if self.components[spec.kind].get(spec.name) is spec:
                del self.components[spec.kind][spec.name]
            if len(clash) == 1:
                self.components[spec.kind][spec.name] = clash[0]
        info.components.clear()
        if self.pm.get_plugin(info.name) is not None:
            self.pm.unregister(name=info.name)

    def _register_fn(self, kind: Kind, info: PluginInfo) -> Register:
        def register(
            name: str,
            factory: Callable[..., Any] | str,
            *,
            options: Iterable[Option] = (),
            help: str = "",
        ) -> ComponentSpec:
            if not isinstance(name, str) or not name:
                raise PluginError(f"{kind} name must be a non-empty string, got {name!r}")
            opts = tuple(options)
            for opt in opts:
                if not isinstance(opt, Option):
                    raise PluginError(f"{kind} '{name}': options must be Option values")
            doc = help or (_first_line(getattr(factory, "__doc__", None))
                           if not isinstance(factory, str) else "")
            spec = ComponentSpec(kind, name, factory, opts, doc, info.name, info.distribution)
            existing = self.components[kind].get(name)
            if existing is not None:
                self.conflicts.setdefault((kind, name), [existing]).append(spec)
            else:
                self.components[kind][name] = spec
            info.components.append(spec)
            return spec

        return register


def call_each(caller: Any, *, log_errors: bool = True, **kwargs: Any,
              ) -> list[tuple[str, Exception]]:
    """Call every implementation of a hook on its own, in pluggy's order: one that raises is
    logged and the others still run (a plain pluggy call stops at the first error and loses
    the rest). Returns (plugin name, error) for each that raised (logged with its traceback
    unless ``log_errors`` is False). ``caller`` may also be a plain callable (an embedder's
    own observer)."""
    get_impls = getattr(caller, "get_hookimpls", None)
    if not callable(get_impls):
        impls: list[tuple[str, Callable[..., Any], Sequence[str] | None]] = [
            (getattr(caller, "__name__", "observer"), caller, None)]
    else:
        impls = []
        for impl in reversed(get_impls()):
            if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
                log.warning("plugin %s: wrapper implementations of observer hooks are not "
                            "called", impl.plugin_name)
                continue
            impls.append((impl.plugin_name, impl.function, impl.argnames))
    failed: list[tuple[str, Exception]] = []
    for plugin, function, argnames in impls:
        args = kwargs if argnames is None else {k: kwargs[k] for k in argnames if k in kwargs}
        try:
            function(**args)
        except Exception as exc:  # noqa: BLE001 - one plugin must not silence the others
            if log_errors:
                log.exception("plugin %s: hook %s failed", plugin,
                              getattr(caller, "name", getattr(function, "__name__", "?")))
            failed.append((plugin, exc))
    return failed


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def _check_hooks(module: object, name: str) -> None:
    """Reject ``ingest_*`` functions that match no hookspec (usually a typo)."""
    for attr in dir(module):
        if attr.startswith("ingest_") and not hasattr(hookspecs, attr):
            fn = getattr(module, attr)
            if callable(fn):
                raise PluginError(f"{attr} is not a known hook (typo?)")


def disabled_plugins() -> set[str]:
    raw = os.environ.get("INGEST_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "unknown", "?"
    return dist.metadata["Name"] or dist.name, dist.version


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def build_registry(
    extra_plugins: Sequence[tuple[str, object]] = (), *, entry_points_enabled: bool = True
) -> Registry:
    """Load every installed plugin (and ``extra_plugins``, for tests and the Python API)."""
    registry = Registry(new_plugin_manager())
    disabled = disabled_plugins()
    if entry_points_enabled:
        seen: dict[str, str] = {}  # plugin name -> distribution
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in disabled:
                continue
            dist, version = _dist_of(ep)
            if ep.name in seen:
                if seen[ep.name] != dist:  # the same name from two distributions
                    clash = PluginInfo(f"{ep.name} [{dist}]", dist, version, ep.value)
                    registry.plugins[clash.name] = clash
                    registry._fail(clash, PluginError(
                        f"plugin name '{ep.name}' is already taken by {seen[ep.name]}"))
                continue
            seen[ep.name] = dist
            info = PluginInfo(ep.name, dist, version, ep.value)
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - import errors of any kind
                registry.plugins[info.name] = info
                registry._fail(info, exc)
                continue
            registry.add_plugin(module, info)
    for name, module in extra_plugins:
        if name in disabled:
            continue
        registry.add_plugin(module, PluginInfo(name, "(local)", "", getattr(module, "__name__", "")))
    return registry


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default
    if _default is None:
        _default = build_registry()
    return _default


def reset_registry() -> None:
    """Forget the process-wide registry (tests that install or disable plugins)."""
    global _default
    _default = None
