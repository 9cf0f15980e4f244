"""Named presets: TOML files that describe a pipeline, validated when they are loaded.

A preset file has a one-line ``description`` and an array of ``[[step]]`` tables, each with a
``type`` (a registered transform) and its parameters: a value, a ``[min, max]`` range, a
``{ range = [min, max], sign = "random" }`` table or a ``{ choice = [...] }`` table. An optional
``[redact]`` table (the options of :class:`deid.redact.RedactOptions`) makes redaction of spoken
personal data the preset's default.

The presets shipped with deid live in the repository's ``presets/`` folder; a wheel carries them
as ``deid/_presets``.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path

from deid.errors import DeidError, PresetError
from deid.pipeline import Pipeline

DEFAULT = "standard"


def preset_dir() -> Path:
    """The folder of the shipped presets: inside the installed package, or the source checkout."""
    packaged = Path(str(resources.files("deid") / "_presets"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "presets"


def list_presets() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in preset_dir().glob("*.toml"))


def preset_path(name_or_path: str | Path) -> Path:
    """The file of a shipped preset name, or the given path if it is a file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file() or len(candidate.parts) > 1:
        if not candidate.is_file():
            raise PresetError("preset file not found", candidate)
        return candidate
    shipped = preset_dir() / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise PresetError(f"unknown preset {str(name_or_path)!r}; available: {', '.join(list_presets())}")
    return shipped


def load_preset(name_or_path: str | Path | Pipeline) -> Pipeline:
    """Load and validate a preset by name (``"standard"``) or path (``"my.toml"``).

    Raises
    ------
    PresetError
        Naming the preset file, the step, the parameter and its allowed range.
    """
    from deid import transforms

    if isinstance(name_or_path, Pipeline):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise PresetError(f"a preset is a name, a path or a deid.Pipeline, not {type(name_or_path).__name__}")
    path = preset_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"cannot read preset: {exc}", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"not valid TOML: {exc}", path) from None

    unknown = sorted(set(data) - {"description", "step", "redact"})
    if unknown:
        raise PresetError(f"unknown top-level key(s) {', '.join(unknown)}; expected 'description', [[step]] "
                          "and [redact]", path)
    steps = data.get("step", [])
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise PresetError("a preset needs at least one [[step]] table", path)
    pipeline = Pipeline(name=path.stem, description=str(data.get("description", "")), redact=_redact_table(data, path))
    for number, step in enumerate(steps, start=1):
        try:
            pipeline.append(transforms.create(step))
        except DeidError as exc:
            raise PresetError(f"step {number}: {exc.reason}", path) from None
    return pipeline


def _redact_table(data: dict, path: Path) -> object:
    """A preset's ``[redact]`` table as validated `RedactOptions`: redaction becomes its default."""
    if "redact" not in data:
        return None
    table = data["redact"]
    if not isinstance(table, dict):
        raise PresetError("[redact] must be a table of redaction options", path)
    from deid.redact.options import RedactOptions

    try:
        return RedactOptions.from_mapping(table, source=path)
    except DeidError as exc:
        raise PresetError(exc.reason, path) from None
