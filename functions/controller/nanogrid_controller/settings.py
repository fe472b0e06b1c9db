"""Controller settings, read once from the environment into a frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_REDIS_URL = "NANOGRID_REDIS_URL"
ENV_QUEUE_URL = "NANOGRID_QUEUE_URL"
ENV_CODE_BUCKET = "NANOGRID_CODE_BUCKET"
ENV_API_KEY = "NANOGRID_API_KEY"
ENV_ALLOW_ANONYMOUS = "NANOGRID_ALLOW_ANONYMOUS"
ENV_RESULT_MARGIN_MS = "NANOGRID_RESULT_MARGIN_MS"
ENV_LAMBDA_SAFETY_MS = "NANOGRID_LAMBDA_SAFETY_MS"


class SettingsError(Exception):
    def __init__(self, key: str, value: str, reason: str):
        super().__init__(f"invalid setting {key}={value!r}: {reason}")


@dataclass(frozen=True)
class ControllerSettings:
    redis_url: str
    queue_url: str
    code_bucket: str
    # Key that callers send as "Authorization: Bearer KEY" or "x-api-key: KEY".
    api_key: str = ""
    # Serve requests without a key. Only for a controller that an authorizer already guards
    # (IAM or JWT on the HTTP API) or that listens on loopback for development.
    allow_anonymous: bool = False
    # Time on top of a function's timeout for queueing, container start and the hand-off.
    result_margin_ms: int = 3000
    # Time kept back from the Lambda's remaining time to write the response.
    lambda_safety_ms: int = 1000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ControllerSettings:
        env = dict(os.environ if env is None else env)
        values: dict = {}
        for key, name in ((ENV_REDIS_URL, "redis_url"), (ENV_QUEUE_URL, "queue_url"), (ENV_CODE_BUCKET, "code_bucket")):
            value = env.get(key, "").strip()
            if not value:
                raise SettingsError(key, value, "it is required")
            values[name] = value
        values["api_key"] = env.get(ENV_API_KEY, "")
        anonymous = env.get(ENV_ALLOW_ANONYMOUS, "").strip().lower()
        if anonymous not in ("", "0", "1", "true", "false"):
            raise SettingsError(ENV_ALLOW_ANONYMOUS, anonymous, "expected 1/true or 0/false")
        values["allow_anonymous"] = anonymous in ("1", "true")
        if not values["api_key"] and not values["allow_anonymous"]:
            raise SettingsError(
                ENV_API_KEY,
                "",
                f"set an API key, or set {ENV_ALLOW_ANONYMOUS}=1 when an authorizer guards the API "
                f"or it listens on loopback only",
            )
        for key, name in ((ENV_RESULT_MARGIN_MS, "result_margin_ms"), (ENV_LAMBDA_SAFETY_MS, "lambda_safety_ms")):
            if env.get(key):
                try:
                    values[name] = int(env[key])
                except ValueError:
                    raise SettingsError(key, env[key], "expected a whole number of milliseconds") from None
                if values[name] < 0:
                    raise SettingsError(key, env[key], "expected 0 or more")
        return cls(**values)
