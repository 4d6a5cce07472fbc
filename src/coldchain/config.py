"""Settings, built once at an entry point. An explicit argument beats the environment.

Environment variable names live here and nowhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from coldchain.core.errors import ConfigurationError

# A profile's rules load pydantic, which Settings (every command's start) does not need: the
# functions that read a profile import it.
if TYPE_CHECKING:
    from coldchain.core.alarm_profile import AlarmProfile

ENV_HOME: Final = "COLDCHAIN_HOME"
ENV_DB: Final = "COLDCHAIN_DB"
# The operator commands' store: dynamodb://PREFIX or sqlite:///PATH (--store wins, then --db).
ENV_STORE: Final = "COLDCHAIN_STORE"
ENV_MQTT_HOST: Final = "COLDCHAIN_MQTT_HOST"
ENV_MQTT_PORT: Final = "COLDCHAIN_MQTT_PORT"
ENV_LOG_LEVEL: Final = "COLDCHAIN_LOG_LEVEL"

# The AWS deployment (Lambda environment, set by terraform/lambda.tf).
ENV_TELEMETRY_TABLE: Final = "COLDCHAIN_TELEMETRY_TABLE"
ENV_DEVICES_TABLE: Final = "COLDCHAIN_DEVICES_TABLE"
ENV_EVENTS_TABLE: Final = "COLDCHAIN_EVENTS_TABLE"
ENV_DLQ_URL: Final = "COLDCHAIN_DLQ_URL"
ENV_TTL_DAYS: Final = "COLDCHAIN_TTL_DAYS"
ENV_ALARMS_TABLE: Final = "COLDCHAIN_ALARMS_TABLE"
ENV_ALARM_TOPIC_ARN: Final = "COLDCHAIN_ALARM_TOPIC_ARN"
ENV_ALARM_PROFILE: Final = "COLDCHAIN_ALARM_PROFILE"

# The original simulator's variables (the seed's device, and its README), still honoured by
# `coldchain simulate`; a command-line option wins over each.
ENV_SIMULATOR: Final = {
    "endpoint": "IOT_ENDPOINT",
    "cert": "CERT_PATH",
    "key": "KEY_PATH",
    "ca": "CA_PATH",
    "device_id": "DEVICE_ID",
    "fleet_id": "FLEET_ID",
    "firmware_version": "FIRMWARE_VERSION",
    "interval": "PUBLISH_INTERVAL_S",
}

DEFAULT_HOME: Final = ".coldchain"
DEFAULT_MQTT_HOST: Final = "127.0.0.1"
DEFAULT_MQTT_PORT: Final = 8883


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the local stack keeps its files and where the broker listens."""

    home: Path = field(default_factory=lambda: Path(DEFAULT_HOME))
    db_path: Path | None = None
    mqtt_host: str = DEFAULT_MQTT_HOST
    mqtt_port: int = DEFAULT_MQTT_PORT
    log_level: str = "INFO"
    store_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``COLDCHAIN_*`` variables, defaults for the rest.

        Raises:
            ConfigurationError: a variable holds a value that cannot be used.
        """
        env = os.environ if environ is None else environ
        port_text = env.get(ENV_MQTT_PORT, str(DEFAULT_MQTT_PORT))
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigurationError(
                f"{ENV_MQTT_PORT}={port_text!r} is not a port number"
            ) from None
        db = env.get(ENV_DB)
        return cls(
            home=Path(env.get(ENV_HOME, DEFAULT_HOME)),
            db_path=Path(db) if db else None,
            mqtt_host=env.get(ENV_MQTT_HOST, DEFAULT_MQTT_HOST),
            mqtt_port=port,
            log_level=env.get(ENV_LOG_LEVEL, "INFO").upper(),
            store_url=env.get(ENV_STORE) or None,
        )

    def override(self, **changes: object) -> Settings:
        """A copy with the given fields replaced, skipping those passed as None."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else self.home / "coldchain.db"


def _default_profile() -> AlarmProfile:
    from coldchain.core.alarm_profile import default_profile  # noqa: PLC0415 - pydantic, see the top

    return default_profile()


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """What the Lambda handlers need: table names, the dead-letter queue, the TTL."""

    telemetry_table: str
    devices_table: str
    events_table: str
    dlq_url: str
    alarms_table: str
    alarm_topic_arn: str
    ttl_days: int = 90
    alarm_profile: AlarmProfile = field(default_factory=_default_profile)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AwsSettings:
        """Settings from the Lambda environment.

        Raises:
            ConfigurationError: a variable is missing or not usable.
        """
        env = os.environ if environ is None else environ
        names = (
            ENV_TELEMETRY_TABLE,
            ENV_DEVICES_TABLE,
            ENV_EVENTS_TABLE,
            ENV_DLQ_URL,
            ENV_ALARMS_TABLE,
            ENV_ALARM_TOPIC_ARN,
        )
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        ttl_text = env.get(ENV_TTL_DAYS, "90")
        if not ttl_text.isdigit() or int(ttl_text) < 1:
            raise ConfigurationError(f"{ENV_TTL_DAYS}={ttl_text!r} is not a number of days")
        return cls(
            telemetry_table=env[ENV_TELEMETRY_TABLE],
            devices_table=env[ENV_DEVICES_TABLE],
            events_table=env[ENV_EVENTS_TABLE],
            dlq_url=env[ENV_DLQ_URL],
            alarms_table=env[ENV_ALARMS_TABLE],
            alarm_topic_arn=env[ENV_ALARM_TOPIC_ARN],
            ttl_days=int(ttl_text),
            alarm_profile=profile_from_text(env[ENV_ALARM_PROFILE], ENV_ALARM_PROFILE)
            if env.get(ENV_ALARM_PROFILE)
            else _default_profile(),
        )


def profile_from_text(text: str, source: str) -> AlarmProfile:
    """A profile from TOML, or from the JSON that `coldchain profile show --format json`
    prints (what Terraform hands the Lambda, see terraform/alarm-profile.json).

    Raises:
        ConfigurationError: not valid, naming the rule and field that is wrong.
    """
    from coldchain.core.alarm_profile import (  # noqa: PLC0415 - pydantic, see the top
        parse_profile,
        profile_from_mapping,
    )

    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{source}: not valid JSON: {exc}") from None
        document.pop("band", None)  # derived from the rules, printed for readers
        return profile_from_mapping(document, source)
    return parse_profile(text, source)


def load_profile_file(path: Path) -> AlarmProfile:
    """An alarm profile from a TOML file.

    Raises:
        ConfigurationError: the file cannot be read, or a rule or field is wrong.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read profile {path}: {exc.strerror}") from None
    return profile_from_text(text, str(path))


def simulator_environment(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The original simulator's variables by our option names (None when unset)."""
    env = os.environ if environ is None else environ
    return {option: env.get(variable) or None for option, variable in ENV_SIMULATOR.items()}
