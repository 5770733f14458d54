"""The one stack-config loader: the Pulumi program, synth, the simulator and the tests all
read stack config through it, so a bad file gets the same message everywhere.

Two sources, one path to a :class:`StackConfig`:

- :func:`load_config` reads the Pulumi runtime's config (``pulumi up``, or synth's engine);
- :func:`read_stack_file` reads ``Pulumi.<stack>.yaml`` strictly (UTF-8, no duplicate keys,
  string keys only) and :func:`load_stack` validates it.

Both go through :func:`stack_config`, which refuses a namespace that looks like a typo of
ours (``gpu-platfrom:modelServices`` would otherwise drop every service silently) and a
secret in a key that cannot keep it (``components/config/secrets.py``) before the models
validate the ``gpu-platform`` keys. A secret in a key that may hold one reaches resources as
a Pulumi secret: :func:`secret_if_marked`.
"""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

from components.config import NAMESPACE, ConfigError, Environment, StackConfig, examples, load_stack_config
from components.config.secrets import may_be_secret

# What a `secure:` value becomes when the file is read without its secrets provider.
SECRET_PLACEHOLDER = "[secret]"
# Namespaces of the providers and tools a platform stack file may configure besides ours.
KNOWN_NAMESPACES = frozenset({"aws", "eks", "kubernetes", "pulumi", "random", "tls"})


@dataclass(frozen=True)
class StackFile:
    """A stack file as written: full keys (``project:key``), values as YAML gives them."""

    path: Path
    project: str
    config: dict[str, Any]
    """Full key -> value; ``secure:`` values replaced by :data:`SECRET_PLACEHOLDER`."""
    secret_keys: tuple[str, ...]
    """Keys whose value is (or holds) a ``secure:`` value, as the Pulumi CLI marks them."""


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses duplicate keys (YAML keeps the last silently) and non-string keys.

    Timestamps stay strings, as the Pulumi CLI reads them (Go's yaml.v3 hands a timestamp-like
    scalar to an ``interface{}`` as a string): ``created: 2024-01-01`` is the tag value
    "2024-01-01", not a date.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
            what = f"key {key!r} is not a string; quote it" if isinstance(key_node, yaml.ScalarNode) \
                else f"a key is {kind}; keys are strings"
            raise ConfigError([f"line {line}: {what}"])
        if key in seen:
            raise ConfigError([f"line {line}: duplicate key {key!r} (first at line {seen[key]}); "
                               "YAML keeps only the last one, so merge them into one"])
        seen[key] = line
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def project_of(program: Path) -> tuple[str, Path]:
    """The project name and stack config directory from ``program/Pulumi.yaml``."""
    path = program / "Pulumi.yaml"
    if not path.is_file():
        raise ConfigError([f"{path}: no Pulumi.yaml in the program directory"])
    meta = _parse(path)
    if not isinstance(meta, Mapping):
        raise ConfigError([f"{path}: expected a mapping with 'name' and 'runtime'"])
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError([f"{path}: 'name' is missing"])
    config_dir = meta.get("stackConfigDir") or "."
    if not isinstance(config_dir, str):
        raise ConfigError([f"{path}: 'stackConfigDir' must be a path, got {config_dir!r}"])
    return name, program / config_dir


def stack_file_path(stack: str, program: Path) -> tuple[str, Path]:
    """The project name and the path of ``Pulumi.<stack>.yaml`` in the program's config dir."""
    project, config_dir = project_of(program)
    path = config_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in config_dir.glob("Pulumi.*.yaml"))
        raise ConfigError([f"{path}: no such stack file; stacks here: {', '.join(known) or 'none'}"])
    return project, path


def _parse(path: Path) -> Any:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                           "save the file as UTF-8"]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError([f"{path}: {m}" for m in exc.messages]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None


class _Recursive(Exception):
    pass


def _redact(value: Any, inside: frozenset[int] = frozenset()) -> tuple[Any, bool]:
    """Replace ``secure:`` values (anywhere in the value) by the placeholder."""
    if isinstance(value, (Mapping, list)):
        if id(value) in inside:  # an alias to one of its own ancestors: `a: &x [*x]`
            raise _Recursive
        inside = inside | {id(value)}
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        items = {k: _redact(v, inside) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        pairs = [_redact(v, inside) for v in value]
        return [v for v, _ in pairs], any(s for _, s in pairs)
    return value, False


def read_stack_file(path: Path, project: str) -> StackFile:
    """Read a stack file strictly; keys without a namespace belong to ``project``."""
    doc = _parse(path) or {}
    raw = doc.get("config") if isinstance(doc, Mapping) else None
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{path}: needs a top-level 'config' mapping"])
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full = key if ":" in key else f"{project}:{key}"
        try:
            plain, secret = _redact(value)
        except _Recursive:
            raise ConfigError([f"{path}: {full}: the value contains itself (a YAML alias to its own anchor); "
                               "write the value out"]) from None
        config[full] = plain
        if secret:
            secret_keys.append(full)
    return StackFile(path, project, config, tuple(sorted(secret_keys)))


def _decode(value: Any) -> Any:
    """The CLI hands objects and lists to programs as JSON strings."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _namespace_typos(keys: list[str]) -> list[str]:
    problems = []
    for key in keys:
        namespace, _, rest = key.partition(":")
        if namespace in KNOWN_NAMESPACES or namespace == NAMESPACE:
            continue
        if difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.75):
            problems.append(f"{key}: unknown config namespace {namespace!r}; did you mean {NAMESPACE}:{rest}?")
    return problems


def _misplaced_secrets(secret_keys: Iterable[str]) -> list[str]:
    prefix = f"{NAMESPACE}:"
    allowed = sorted(f"{prefix}{a}" for a in _field_aliases() if may_be_secret(StackConfig, a))
    problems = []
    for key in sorted(set(secret_keys)):
        if key == "aws:region" or (key.startswith(prefix) and key not in allowed):
            problems.append(
                f"{key}: holds a secret (a `secure:` value), but its values become resource names, settings and "
                "manifests in clear text, so Pulumi could not keep it secret. Write the value in plain text; keep "
                "credentials in a Kubernetes Secret and reference it (modelServices[].hfTokenSecret, "
                f"batchWorkers[].redis.passwordSecret). Keys that may hold secrets: {', '.join(allowed) or 'none'}")
    return problems


def _field_aliases() -> list[str]:
    return [f.alias or n for n, f in StackConfig.model_fields.items() if n not in StackConfig.HIDDEN_KEYS]


def stack_config(config: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> StackConfig:
    """Validate full-key config (``gpu-platform:*`` and ``aws:region``) into a StackConfig;
    ``secret_keys`` are the keys the Pulumi CLI marks secret."""
    problems = _namespace_typos(sorted(config)) + _misplaced_secrets(secret_keys)
    if problems:
        raise ConfigError(problems)
    prefix = f"{NAMESPACE}:"
    values = {k[len(prefix):]: _decode(v) for k, v in config.items() if k.startswith(prefix)}
    return load_stack_config(values, config.get("aws:region"))


def check_environment(stack: str, cfg: StackConfig) -> StackConfig:
    """The environment must be the one the stack's name says: ``environment: dev`` in the file of
    stack ``prod`` would turn every prod rule off without a word. Only the loader knows the name."""
    if cfg.allow_environment_mismatch:
        return cfg
    named = {stack, stack.split("-", 1)[0]}
    if cfg.environment in named:
        return cfg
    environments = typing.get_args(Environment)
    said = next((e for e in environments if e in named), None)
    expected = f"environment {said}" if said else f"a stack named {cfg.environment} or {cfg.environment}-<suffix>"
    raise ConfigError([
        f"environment: {cfg.environment!r} in the file of stack {stack!r}; the environment must be the stack name "
        f"or its first dash-separated part ({', '.join(environments)}), so expected {expected}; fix it, or set "
        "allowEnvironmentMismatch: true if the mismatch is deliberate"])


def load_stack(stack: str, program: Path) -> StackConfig:
    """The validated config of ``Pulumi.<stack>.yaml`` in ``program``'s stack config dir."""
    project, path = stack_file_path(stack, program)
    sf = read_stack_file(path, project)
    return check_environment(stack, stack_config(sf.config, sf.secret_keys))


def _runtime_secret_keys() -> set[str]:
    # The language host passes them with the config (set_all_config); PULUMI_CONFIG_SECRET_KEYS
    # is the environment's form, next to PULUMI_CONFIG.
    keys = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return set(runtime_config.get_config_secret_keys_env()) | {k for k in keys if runtime_config.is_config_secret(k)}


def is_offline() -> bool:
    """Whether the program runs on a mock monitor (synth's recording engine, unit tests) rather
    than under the Pulumi engine that creates real resources."""
    from pulumi.runtime import mocks, settings

    return isinstance(settings.SETTINGS.monitor, mocks.MockMonitor)


def require_real_values(cfg: StackConfig) -> None:
    """Refuse a real deploy while the config holds example values (``exampleValues``, or values
    that are placeholders by their content): nothing is created until each is set."""
    found = examples.placeholders(cfg)
    if found:
        raise ConfigError([f"{path}: an example value ({why}); set your real value"
                           + (" and remove the path from gpu-platform:exampleValues" if why.startswith("marked") else "")
                           + " before pulumi up" for path, why in found])


def load_config() -> StackConfig:
    """The Pulumi runtime's config (every key of every namespace) as a StackConfig."""
    # The CLI passes config through PULUMI_CONFIG; synth sets it in-process.
    cfg = stack_config({**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}, _runtime_secret_keys())
    cfg = check_environment(pulumi.get_stack(), cfg)
    if not is_offline():
        # Under the real engine: stop before any resource exists (synth lists them instead).
        require_real_values(cfg)
    return cfg


def secret_if_marked(key: str, values: Mapping[str, str]) -> Mapping[str, pulumi.Input[str]]:
    """``values`` of the top-level key ``key`` (e.g. ``"tags"``, one that may hold secrets), as
    resources must get them: each a Pulumi secret when the runtime config marks
    ``gpu-platform:<key>`` secret, so the engine stores them encrypted; as they are otherwise."""
    full = f"{NAMESPACE}:{key}"
    if full not in _runtime_secret_keys():
        return values
    return {k: pulumi.Output.secret(v) for k, v in values.items()}
