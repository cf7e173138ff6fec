"""Job files: standard maintenance kept as reviewed YAML instead of shell history.

    action: stop
    description: nightly stop of idle AUTO_STOP desktops
    targets: {directory_id: d-1234567890, running_mode: AUTO_STOP, idle_days: 3}
    options: {rate: 2, max_errors: 2%, waves: "5,50,all"}
    region: [us-east-1, eu-west-1]

A file is validated whole before anything runs (pydantic, unknown keys refused): one model for
the file and one per section (:data:`ParamsSection`, :data:`TargetsSection`,
:class:`OptionsSection`), the first two made from the catalogue's declarations. Every problem is
one line naming the file, the line and the field — ``jobs/x.yaml:7: options.rate: Input should be
greater than 0`` — found by walking the YAML node tree (``yaml.compose``) along the error's path.
Relative paths in a file (``targets.ids_file``, ``params.from``) are relative to its folder.
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
)

from fleetops.catalogue.actions import ACTIONS as CATALOGUE
from fleetops.catalogue.actions import Param, all_params, get_action
from fleetops.catalogue.options import JobOptions, parse_max_errors, parse_waves
from fleetops.catalogue.targets import (
    SELECTORS,
    Selector,
    Targets,
    validate_bundle_id,
    validate_directory_id,
    validate_workspace_id,
)
from fleetops.errors import JobFileError, UsageError

__all__ = [
    "ACTIONS",
    "JobFile",
    "OptionsSection",
    "ParamsSection",
    "TargetsSection",
    "load_job_file",
]

#: The actions a job file may name: the catalogue's, in its order.
ACTIONS = tuple(CATALOGUE)
#: Which params each action takes (from the catalogue); an action missing here takes none.
ACTION_PARAMS: dict[str, frozenset[str]] = {
    name: frozenset(p.key for p in spec.params) for name, spec in CATALOGUE.items() if spec.params
}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_FLAG_PREFIX = re.compile(r"^--[a-z-]+:?\s+")

Loc = tuple[str | int, ...]


# -- field checks (each raises ValueError: pydantic turns it into an error at the field's path) --


def _usage(check: Callable[[str], str]) -> Callable[[str], str]:
    def run(value: str) -> str:
        try:
            return check(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    return run


@cache
def _enum(shape: str) -> frozenset[str]:
    from fleetops.aws.model import service_model

    try:
        return frozenset(service_model().shape_for(shape).enum or ())
    except Exception:  # a botocore without the shape: the engine will say
        return frozenset()


def _one_of(shape: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        known = _enum(shape)
        upper = value.strip().upper()
        if known and upper not in known:
            close = difflib.get_close_matches(upper, sorted(known), n=1)
            hint = (
                f" (did you mean {close[0]}?)" if close else f" (one of {', '.join(sorted(known))})"
            )
            raise ValueError(f"unknown {what} {value!r}{hint}")
        return upper

    return check


def _listify(value: Any) -> Any:
    """A single string where a list is expected: ``states: UNHEALTHY``, ``protocols: WSP,PCOIP``."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _scoped_ids(value: Any) -> Any:
    """A rollout's ``bundle`` / ``image``: one id, or a mapping of scope (a region, or
    ``ACCOUNT/REGION``; quote it in YAML) to id."""
    from fleetops.catalogue.recipes import parse_scoped_ids

    if isinstance(value, Mapping):
        value = {str(key): item for key, item in value.items()}
    elif not isinstance(value, str):
        raise ValueError("an id, or a mapping of scope (region or ACCOUNT/REGION) to id")
    try:
        return parse_scoped_ids("", value)
    except UsageError as exc:
        raise ValueError(str(exc).lstrip()) from None


def _key_values(value: Any) -> Any:
    """``{owner-team: finance}`` or ``[owner-team=finance]`` → ``["owner-team=finance"]``."""
    if isinstance(value, Mapping):
        pairs = []
        for key, item in value.items():
            if isinstance(item, bool) or item is None:
                raise ValueError(f'tag {key!r}: the value must be text (quote it: "{item}")')
            pairs.append(f"{key}={item}")
        return pairs
    return _listify(value)


def _key_value(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"tag {text!r} must be KEY=VALUE")
    return text


def _flagless(message: str) -> str:
    """Messages written for flags (``--waves: …``) read better without the flag in a file."""
    return _FLAG_PREFIX.sub("", message, count=1)


def _max_errors(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a count (e.g. 10) or a percentage (e.g. 2%)")
    text = str(value).strip()
    try:
        parse_max_errors(text)
    except UsageError:
        raise ValueError(
            f"{text!r} must be a count (e.g. 10) or a percentage from 0% to 100% (e.g. 2%)"
        ) from None
    return text


def _waves(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, str | list):
        raise ValueError('must be a list of wave sizes or a text like "5,50,all"')
    try:
        waves = parse_waves(value if isinstance(value, str) else [str(v) for v in value])
    except UsageError as exc:
        raise ValueError(_flagless(str(exc))) from None
    return ["all" if size is None else size for size in waves]


def _on_off(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in {"on", "off"}:
        return value.strip().lower() == "on"
    return value


def _action(value: str) -> str:
    name = value.strip().lower()
    try:
        get_action(name)
    except UsageError as exc:
        raise ValueError(str(exc).replace(repr(name), repr(value), 1)) from None
    return name


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError(f"{value!r} is not an AWS region (e.g. us-east-1)")
    return value


def _endpoint(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} must be an http:// or https:// URL")
    return value


WorkspaceId = Annotated[str, AfterValidator(_usage(validate_workspace_id))]
DirectoryId = Annotated[str, AfterValidator(_usage(validate_directory_id))]
BundleId = Annotated[str, AfterValidator(_usage(validate_bundle_id))]
WorkspaceState = Annotated[str, AfterValidator(_one_of("WorkspaceState", "WorkSpace state"))]
RunningMode = Annotated[str, AfterValidator(_one_of("RunningMode", "running mode"))]
ComputeType = Annotated[str, AfterValidator(_one_of("Compute", "compute type"))]
ProtocolName = Annotated[str, AfterValidator(_one_of("Protocol", "protocol"))]
TagPair = Annotated[str, AfterValidator(_key_value)]
TagPairs = Annotated[list[TagPair], BeforeValidator(_key_values)]
Region = Annotated[str, AfterValidator(_region)]


def _account(value: object) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"\d{12}", text):
        raise ValueError(f"{text!r} is not an AWS account id (12 digits; quote it in YAML)")
    return text


Account = Annotated[str, BeforeValidator(_account)]


class _Strict(BaseModel):
    """A mapping of the file (the whole file, or one of its sections): unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: How a job file reads a value of each kind of the catalogue's parameters and selectors.
_KIND_TYPES: dict[str, Any] = {
    "text": str,
    "int": Annotated[int, Field(gt=0)],
    "days": Annotated[float, Field(gt=0)],
    "workspace_ids": Annotated[list[WorkspaceId], BeforeValidator(_listify)],
    "directory_id": DirectoryId,
    "bundle_id": BundleId,
    "states": Annotated[list[WorkspaceState], BeforeValidator(_listify)],
    "running_mode": RunningMode,
    "compute_type": ComputeType,
    "protocols": Annotated[list[ProtocolName], BeforeValidator(_listify)],
    "on_off": Annotated[bool, BeforeValidator(_on_off)],
    "pairs": TagPairs,
    "keys": Annotated[list[str], BeforeValidator(_listify)],
    "path": str,
    "ladder": Annotated[list[str], BeforeValidator(_listify)],
    "duration": str | float,
    "image_id": str,
    "scoped_ids": Annotated[str | dict[str, str], BeforeValidator(_scoped_ids)],
    "switch": bool,
}


def _param_field(param: Param) -> tuple[Any, Any]:
    # A key that is a Python keyword (``from``) is a field with an alias.
    alias = param.key if keyword.iskeyword(param.key) else None
    return (_KIND_TYPES[param.kind] | None, Field(default=None, alias=alias))


def _selector_field(selector: Selector) -> tuple[Any, Any]:
    # A repeatable selector is a list (empty: not given), the others a value or None.
    if selector.repeatable:
        return (_KIND_TYPES[selector.kind], [])
    return (_KIND_TYPES[selector.kind] | None, None)


def _field_name(key: str) -> str:
    return f"{key}_" if keyword.iskeyword(key) else key


#: What the action needs, named as the ``run`` flags are (``--to-bundle`` → ``to_bundle``): one
#: field per parameter of the catalogue.
ParamsSection: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "ParamsSection",
    __base__=_Strict,
    **{_field_name(p.key): _param_field(p) for p in all_params()},
)


#: Which WorkSpaces: selectors combine with AND (as the ``run`` flags do); one field per
#: selector of the catalogue, named as its key.
TargetsSection: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "TargetsSection",
    __base__=_Strict,
    __doc__="Which WorkSpaces: selectors combine with AND (as the ``run`` flags do).",
    **{selector.key: _selector_field(selector) for selector in SELECTORS},
)


class OptionsSection(_Strict):
    """How the job runs; each key is a ``run`` flag, and a flag given overrides the key."""

    rate: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    max_errors: Annotated[str | None, BeforeValidator(_max_errors)] = None
    waves: Annotated[list[int | str] | None, BeforeValidator(_waves)] = None
    no_wait: bool | None = None
    verify_timeout: float | None = Field(default=None, gt=0)
    include_connected: bool | None = None
    max_snapshot_age: float | None = Field(default=None, gt=0)
    ignore_snapshot_age: bool | None = None
    include_standby: bool | None = None
    wait_for_logoff: str | None = None  # "30m", "2h"


class JobFile(_Strict):
    """A validated job file. Build one with :func:`load_job_file`."""

    action: Annotated[str, AfterValidator(_action)]
    description: str | None = None
    params: ParamsSection = ParamsSection()
    targets: TargetsSection
    options: OptionsSection = OptionsSection()
    region: Annotated[list[Region], BeforeValidator(_listify)] = []
    profile: str | None = None
    endpoint_url: Annotated[str, AfterValidator(_endpoint)] | None = None
    accounts: Annotated[list[Account], BeforeValidator(_listify)] = []
    accounts_file: str | None = None
    role_name: str | None = None
    role_arn_template: str | None = None
    external_id: str | None = None
    # the two-person rule: stored with --plan-only, the plan starts once someone else approves
    require_approval: bool = False
    # told of the job's end: webhook URLs (one, or a list), sns: topics
    notify: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = []
    # maintenance windows ("SAT 22:00-SUN 04:00", "22:00-04:00") and their time zone
    window: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = []
    timezone: str | None = None

    _path: Path = PrivateAttr(default=Path("job.yaml"))
    _root: yaml.Node | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def base_dir(self) -> Path:
        return self._path.parent

    def regions(self) -> list[str]:
        """The regions named by the file (empty: the environment's, as botocore resolves it)."""
        return list(self.region)

    def resolve_path(self, name: str) -> Path:
        """A path written in the file, relative to the file's folder."""
        path = Path(name).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def to_targets(self) -> Targets:
        """The selectors as :class:`Targets` (reads ``ids_file``, relative to the file)."""
        given = {selector.key: getattr(self.targets, selector.key) for selector in SELECTORS}
        paths = [s.key for s in SELECTORS if s.kind == "path" and given[s.key] is not None]
        for key in paths:
            given[key] = str(self.resolve_path(given[key]))
        try:
            return Targets.build(**given)
        except UsageError as exc:  # a file read is the likely cause: point at it
            where: Loc = ("targets", paths[0]) if paths else ("targets",)
            raise self.error(where, str(exc)) from exc

    def to_options(self, overrides: Mapping[str, Any] | None = None) -> JobOptions:
        """The file's options, then every override that is not None (flags beat the file)."""
        values: dict[str, Any] = self.options.model_dump(exclude_none=True)
        if self.notify:
            values["notify"] = tuple(self.notify)
        if self.window:
            values["window"] = tuple(self.window)
        if self.timezone:
            values["timezone"] = self.timezone
        for key, value in (overrides or {}).items():
            if key not in JobOptions.__dataclass_fields__:
                raise UsageError(f"unknown job option {key!r}")
            if value is not None:
                values[key] = value
        if "waves" in values:
            values["waves"] = parse_waves(
                values["waves"]
                if isinstance(values["waves"], str)
                else [str(v) if v is not None else "all" for v in values["waves"]]
            )
        if values.get("max_errors") is not None:
            values["max_errors"] = str(values["max_errors"])
        return JobOptions(**values)

    def to_params(self) -> dict[str, Any]:
        """The action's parameters, keyed as the ``run`` flags (``set`` as a mapping, ``from`` as
        a path resolved against the file's folder)."""
        data: dict[str, Any] = self.params.model_dump(exclude_none=True, by_alias=True)
        for param in all_params():
            if param.key not in data:
                continue
            if param.kind == "pairs":
                data[param.key] = dict(pair.split("=", 1) for pair in data[param.key])
            elif param.kind == "path":
                data[param.key] = str(self.resolve_path(data[param.key]))
        return data

    def error(self, loc: Loc, message: str) -> JobFileError:
        """A one-line error at ``loc`` (``file:line: field: message``)."""
        return _error(self._path, self._root, loc, message)

    def check(self) -> None:
        """What one field cannot tell: the action's parameters, and the selectors and options as
        the engine will build them."""
        spec = CATALOGUE[self.action]
        given = set(self.params.model_dump(exclude_none=True, by_alias=True))
        for name in sorted(given - ACTION_PARAMS.get(self.action, frozenset())):
            raise self.error(("params", name), spec.unknown_param(name, style="field"))
        where: Loc = ("params",) if "params" in self.model_fields_set else ("action",)
        missing = spec.missing_params(given, style="field")
        if missing is not None:
            raise self.error(where, missing)
        source = given & {p.key for p in spec.params if p.kind == "path"}
        for name in sorted(source):
            path = self.resolve_path(str(self.params.model_dump(by_alias=True)[name]))
            if not path.is_file():
                raise self.error(("params", name), f"no such file {path}")
        if len(set(self.region)) != len(self.region):
            raise self.error(("region",), "a region is named twice")
        self.to_targets()
        try:
            self.to_options()
        except UsageError as exc:
            raise self.error(("options",), _flagless(str(exc))) from exc


# -- loading -------------------------------------------------------------------------------------


def load_job_file(path: str | Path) -> JobFile:
    """Read, parse and validate a job file; any problem is a one-line :class:`JobFileError`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobFileError(f"{file}: cannot read the job file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise JobFileError(f"{file}: not UTF-8 text") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "not valid YAML"
        raise JobFileError(f"{file}:{line}: {problem}") from exc
    except yaml.reader.ReaderError as exc:
        # A character YAML cannot hold; the reader knows its position, not its line.
        line = text.count("\n", 0, exc.position) + 1
        raise JobFileError(
            f"{file}:{line}: special character {exc.character!r} is not allowed in YAML"
        ) from exc
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise JobFileError(f"{file}:1: {problem}") from exc
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        kind = "an empty file" if root is None else "not a mapping"
        raise JobFileError(
            f"{file}:1: a job file is a mapping of action, targets, params, options, region… "
            f"({kind})"
        )
    _check_duplicate_keys(file, root)
    try:
        job = JobFile.model_validate(data)
    except ValidationError as exc:
        raise _first_error(file, root, exc) from None
    job._path = file
    job._root = root
    job.check()
    return job


def _check_duplicate_keys(file: Path, node: yaml.Node, loc: Loc = ()) -> None:
    """PyYAML keeps the last of two equal keys silently; a job file must not say two things."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                shown = _show((*loc, key))
                raise JobFileError(f"{file}:{key_node.start_mark.line + 1}: {shown}: duplicate key")
            seen.add(key)
            _check_duplicate_keys(file, value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(file, item, (*loc, index))


def _locate(root: yaml.Node | None, loc: Sequence[str | int]) -> tuple[int, Loc]:
    """The line of ``loc`` in the YAML tree and the part of ``loc`` that names the file's keys
    (pydantic adds union and validator tags to paths: they stop the walk)."""
    if root is None:
        return 1, tuple(loc)
    node = root
    line = root.start_mark.line + 1
    shown: list[str | int] = []
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((pair for pair in node.value if pair[0].value == part), None)
            shown.append(part)
            if match is None:  # a missing key: point at the mapping that lacks it
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.MappingNode) and isinstance(part, int):
            if part >= len(node.value):  # a mapping turned into a list (tags: {k: v})
                break
            key_node = node.value[part][0]
            shown.append(str(key_node.value))
            line = key_node.start_mark.line + 1
            node = node.value[part][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            shown.append(part)
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line, tuple(shown)


def _show(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


_MODELS: dict[Loc, type[BaseModel]] = {
    (): JobFile,
    ("params",): ParamsSection,
    ("targets",): TargetsSection,
    ("options",): OptionsSection,
}


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        model = _MODELS.get(loc[:-1])
        if model is not None:
            known = sorted(field.alias or name for name, field in model.model_fields.items())
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
            return f"unknown key ({hint})"
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "model_type":  # pydantic names the model class: the file knows only sections
        return "Input should be a valid dictionary"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _error(file: Path, root: yaml.Node | None, loc: Loc, message: str) -> JobFileError:
    line, shown = _locate(root, loc)
    return JobFileError(f"{file}:{line}: {_show(shown or loc)}: {message}")


def _first_error(file: Path, root: yaml.Node, exc: ValidationError) -> JobFileError:
    """The error nearest the top of the file, and how many more there are (still one line)."""
    located = []
    for error in exc.errors():
        line, shown = _locate(root, error["loc"])
        located.append((line, shown, _message(error)))
    line, shown, message = min(located, key=lambda entry: entry[0])
    more = len({(entry[0], entry[1]) for entry in located}) - 1
    suffix = f" (and {more} more)" if more > 0 else ""
    return JobFileError(f"{file}:{line}: {_show(shown)}: {message}{suffix}")
