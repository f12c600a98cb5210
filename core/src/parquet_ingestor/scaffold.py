"""``ingest new-plugin``: render the plugin template into a new, installable distribution.

The template ships inside this package (``parquet_ingestor/templates/plugin``), so the command
works from an installed wheel. It is plain files: ``common/`` for every kind plus one directory
per kind (``source/``, ``sink/``...). Files ending in ``.tmpl`` have ``{{placeholder}}`` fields
replaced (and lose the suffix); placeholders in paths are replaced too. No template engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from . import __version__
from .errors import ConfigError
from .plugins import KINDS, Kind

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
SUFFIX = ".tmpl"

#: Per kind: the module holding the component, the one method the author writes, and the
#: command-line flags that try the component out (``{{example}}`` in the README).
_KIND_DETAILS: dict[Kind, tuple[str, str, str]] = {
    "source": ("source", "fetch",
               "--source {name} --source-opt path=spool "
               "--sink file --sink-opt path=out --exit-when-idle 2s"),
    "sink": ("sink", "put",
             "--source file --source-opt path=events.jsonl --sink {name} --sink-opt path=out"),
    "encoder": ("encoder", "encode_rows",
                "--source file --source-opt path=events.jsonl --encoder {name} "
                "--sink file --sink-opt path=out"),
    "transformer": ("transformer", "parse",
                    "--source file --source-opt path=events.txt --transformer {name} "
                    "--encoder jsonl --sink file --sink-opt path=out"),
}


@dataclass(frozen=True)
class PluginNames:
    """Every spelling of a plugin's name the template needs."""

    name: str  # "my-queue": the component and entry-point name
    kind: Kind

    @property
    def distribution(self) -> str:
        return f"parquet-ingestor-{self.name.replace('_', '-')}"

    @property
    def module(self) -> str:
        return f"parquet_ingestor_{self.name.replace('-', '_')}"

    @property
    def class_name(self) -> str:
        words = re.split(r"[-_]", self.name)
        return "".join(w[:1].upper() + w[1:] for w in words) + self.kind.capitalize()

    def variables(self) -> dict[str, str]:
        component, method, example = _KIND_DETAILS[self.kind]
        return {
            "name": self.name,
            "kind": self.kind,
            "kind_title": self.kind.capitalize(),
            "distribution": self.distribution,
            "module": self.module,
            "class_name": self.class_name,
            "component": component,
            "method": method,
            "todo": _todo(self.kind, self.class_name, method),
            "example": example.format(name=self.name),
            "core_version": __version__,
        }


def _todo(kind: Kind, class_name: str, method: str) -> str:
    """What the author writes: a source's four calls to its system, else one method."""
    if kind == "source":
        return (f"the four calls to your system: {class_name}.fetch(), .delete(), .extend() "
                f"and .give_back()")
    return f"one method: {class_name}.{method}()"


def template_root() -> Traversable:
    """The packaged template directory (works from a source tree, a wheel or a zip)."""
    return files("parquet_ingestor").joinpath("templates", "plugin")


def render_text(text: str, variables: dict[str, str], where: str) -> str:
    """Replace ``{{key}}`` fields; an unknown key is a bug in the template, so it raises."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise KeyError(f"{where}: unknown template field {{{{{key}}}}}")
        return variables[key]

    return _PLACEHOLDER.sub(replace, text)


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    """(relative path, file) for every file under ``node``, sorted."""
    out: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            out.extend(_walk(child, rel + "/"))
        else:
            out.append((rel, child))
    return out


def render_plugin(name: str, kind: str = "source", directory: str | Path = ".") -> Path:
    """Write ``<directory>/parquet-ingestor-<name>/`` and return its path.

    Raises ConfigError for a bad name or kind, or when the target already exists.
    """
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"plugin name {name!r}: use lowercase letters, digits and dashes, "
                          f"starting with a letter (e.g. 'kafka', 'my-queue')")
    if kind not in KINDS:
        raise ConfigError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    names = PluginNames(name, kind)  # type: ignore[arg-type]  # checked just above
    target = Path(directory) / names.distribution
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --dir or name")
    variables = names.variables()
    root = template_root()
    rendered: dict[str, str | bytes] = {}
    for part in ("common", kind):
        for rel, source in _walk(root.joinpath(part)):
            path = render_text(rel, variables, rel)
            if path.endswith(SUFFIX):
                rendered[path[: -len(SUFFIX)]] = render_text(source.read_text("utf-8"),
                                                             variables, rel)
            else:
                rendered[path] = source.read_bytes()
    for rel, content in rendered.items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            out.write_text(content, encoding="utf-8")
        else:
            out.write_bytes(content)
    return target


def next_steps(target: Path, name: str, kind: str) -> str:
    """What to do after rendering, printed by ``ingest new-plugin``."""
    names = PluginNames(name, kind)  # type: ignore[arg-type]
    _, method, example = _KIND_DETAILS[names.kind]
    return (
        f"created {target}\n"
        f"next:\n"
        f"  1. implement {_todo(names.kind, names.class_name, method)} in "
        f"{target / 'src' / names.module / (names.kind + '.py')}\n"
        f"  2. pip install -e {target}   (or: uv pip install -e {target})\n"
        f"  3. ingest plugins            (lists '{name}')\n"
        f"  4. cd {target} && pytest\n"
        f"  5. ingest {example.format(name=name)}\n"
    )
