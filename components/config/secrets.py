"""Secrets in the stack config: which keys may hold them, and credentials refused in clear text.

The Pulumi CLI marks secrets per top-level key: one ``secure:`` value anywhere inside
``modelServices`` makes the program see the whole list as secret, with no way to tell which
leaf it was. A key can therefore hold secrets only if every value in it may flow into
resources as a Pulumi secret; such a field carries :data:`MAY_BE_SECRET` in its metadata
(``Annotated[..., MAY_BE_SECRET]``). The loader refuses a secret in any other key
(``components/stack.py``).

Credentials have their own place: a Kubernetes Secret, referenced by name and key
(``hfTokenSecret``, ``redis.passwordSecret``), so their value is in neither the stack file,
the Pulumi state nor a pod spec. A credential written in clear text into vLLM arguments is
refused with that fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel

from components.config.errors import rule_error


@dataclass(frozen=True)
class SecretCapable:
    """Field metadata: this top-level key may hold ``secure:`` values; the components pass
    them to resources as Pulumi secrets."""


MAY_BE_SECRET = SecretCapable()


def may_be_secret(model: type[BaseModel], alias: str) -> bool:
    """Whether the field written ``alias`` in the stack file may hold a secret."""
    return any(isinstance(m, SecretCapable)
               for name, f in model.model_fields.items() if (f.alias or name) == alias for m in f.metadata)


_HF_FIX = ("put the token in a Kubernetes Secret and set hfTokenSecret: {name: <secret>, key: <key>} "
           "(the model-cache init container reads it as HF_TOKEN)")
_API_KEY_FIX = ("an API key in vLLM's arguments is readable by anyone who can read the pod spec, and is kept in "
                "the Pulumi state in clear text; keep it in a Kubernetes Secret (vLLM reads VLLM_API_KEY from "
                "its environment) and set apiKeySecret: {name: <secret>, key: <key>} on the service (the platform "
                "passes it to vLLM as VLLM_API_KEY)")
# Flags of `vllm serve` whose value is a credential.
_CREDENTIAL_FLAGS = {"--api-key": _API_KEY_FIX, "--hf-token": _HF_FIX}
# Credential-looking values: Hugging Face user tokens, OpenAI-style keys, VAR=value of the usual variables.
_CREDENTIAL_VALUES = (
    (re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}"), "a Hugging Face token (hf_...)", _HF_FIX),
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}"), "an API key (sk-...)", _API_KEY_FIX),
    (re.compile(r"(?<![A-Za-z0-9_])(HF_TOKEN|HUGGING_FACE_HUB_TOKEN)=\S"), "HF_TOKEN=...", _HF_FIX),
    (re.compile(r"(?<![A-Za-z0-9_])(VLLM_API_KEY|OPENAI_API_KEY)=\S"), "an API key variable", _API_KEY_FIX),
)


def no_plain_credentials(args: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse credentials written into vLLM arguments (they would reach the pod spec in clear text)."""
    for i, arg in enumerate(args):
        flag = arg.split("=", 1)[0]
        if flag in _CREDENTIAL_FLAGS:
            raise rule_error((i,), f"{flag} takes a credential in clear text; {_CREDENTIAL_FLAGS[flag]}")
        for pattern, what, fix in _CREDENTIAL_VALUES:
            if pattern.search(arg):
                raise rule_error((i,), f"looks like {what} in clear text; {fix}")
    return args


VllmArgs = Annotated[tuple[str, ...], AfterValidator(no_plain_credentials)]
"""Arguments appended to ``vllm serve``: plain values only, no credentials."""
