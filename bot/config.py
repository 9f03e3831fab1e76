"""Configuration: `config.toml` read by pydantic-settings, overridable by `TSUR_*` environment variables."""

from __future__ import annotations

import importlib.util
import os
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("ru", "ce", "en")


class BotSection(BaseModel):
    token: str = Field(min_length=1)
    api_base: str = ""
    admins: list[int] = []
    # Telegram allows one getUpdates consumer; the timeout is the long-polling wait in seconds.
    polling_timeout: int = Field(default=10, ge=0, le=50)
    # How updates arrive: long polling (one instance, the embedded default) or Telegram's webhook (see [webhook]).
    mode: Literal["polling", "webhook"] = "polling"

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        bot_id, _, secret = value.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError("must look like 123456:ABC-DEF (the token from @BotFather)")
        return value

    @field_validator("api_base")
    @classmethod
    def _api_base_shape(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL or empty")
        return value.rstrip("/")


class WebhookSection(BaseModel):
    """Webhook mode (bot.mode = "webhook"): Telegram POSTs each update to `url`; the bot answers 200 only after
    handling it, so an update in flight when an instance dies is delivered again."""

    # The public HTTPS address Telegram posts to (the reverse proxy's), path included.
    url: str = ""
    # Where this instance's aiohttp server listens, and the path of the update route.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    path: str = "/webhook"
    # Sent by Telegram in X-Telegram-Bot-Api-Secret-Token with every update; a request without it gets 401.
    secret: str = Field(default="", max_length=256, pattern=r"^[A-Za-z0-9_-]*$")
    # Updates Telegram keeps in flight to the webhook at once (1–100).
    max_connections: int = Field(default=40, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL or empty")
        return value

    @field_validator("path")
    @classmethod
    def _path_shape(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value


class DatabaseSection(BaseModel):
    url: str = "sqlite+aiosqlite:///tsur.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be an SQLAlchemy URL such as sqlite+aiosqlite:///tsur.db")
        return value


class FsmSection(BaseModel):
    """Where dialog state lives: the project's database (the default), or Redis shared by several instances."""

    storage: Literal["sql", "redis"] = "sql"
    redis_url: str = "redis://127.0.0.1:6379/0"

    @field_validator("redis_url")
    @classmethod
    def _redis_url_shape(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL such as redis://127.0.0.1:6379/0")
        return value


class RegionSection(BaseModel):
    timezone: str = "Europe/Moscow"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class IntakeSection(BaseModel):
    page_size: int = Field(default=5, ge=1, le=20)


class LimitsSection(BaseModel):
    """How much people may write and attach; filing and the staff's actions read the same keys."""

    # An appeal's description (filing), and the longest text anyone sends (answers, replies, interim answers).
    text_min: int = Field(default=10, ge=1, le=4000)
    text_max: int = Field(default=4000, ge=10, le=4000)  # a Telegram message holds 4096 characters
    # The shortest text staff may send (a question, an answer, a comment, a reason).
    note_min: int = Field(default=2, ge=1, le=100)
    # A coordinator's review comment and an agency's reason for a request.
    comment_max: int = Field(default=1000, ge=10, le=4000)
    # A question to the resident.
    question_max: int = Field(default=2000, ge=10, le=4000)
    # Files on one message: a Telegram album holds at most 10.
    attachments_max: int = Field(default=10, ge=0, le=10)
    # A typed address, and the applicant's full name and contact of an обращение (59-ФЗ).
    address_min: int = Field(default=5, ge=1)
    address_max: int = Field(default=500, ge=10, le=1000)
    name_max: int = Field(default=200, ge=10, le=500)
    contact_max: int = Field(default=200, ge=10, le=500)
    # An extension of the term, once per appeal (59-ФЗ art. 12 part 2: at most 30 days).
    extension_max_days: int = Field(default=30, ge=1, le=30)


class DeadlinesSection(BaseModel):
    message_days: int = Field(default=10, ge=1, le=60)
    appeal_days: int = Field(default=30, ge=1, le=60)
    # Per-category overrides: category code -> days (for both kinds).
    category_days: dict[str, int] = {}
    # Count in working days by the production calendar instead of calendar days.
    working_days: bool = False
    # A forwarded обращение must reach the competent body within 7 days of registration (59-ФЗ art. 8).
    redirect_days: int = Field(default=7, ge=1, le=30)

    @field_validator("category_days")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [code for code, days in value.items() if not 1 <= days <= 60]
        if bad:
            raise ValueError(f"days must be 1..60 for {', '.join(bad)}")
        return value


class SchedulerSection(BaseModel):
    # How often due reminders are claimed and sent.
    sweep_seconds: int = Field(default=60, ge=5, le=3600)
    # Pings are held during quiet hours (region time) until quiet_end.
    quiet_start: time = time(21, 0)
    quiet_end: time = time(9, 0)
    # The daily digest (region time) and the weekly summary's day.
    digest_time: time = time(9, 0)
    weekly_day: str = "mon"
    # Coordinators are reminded this many days after registration if an appeal is not yet forwarded
    # (it must be within deadlines.redirect_days).
    forward_remind_days: int = Field(default=5, ge=1, le=30)
    # Days the ids of handled updates are kept to skip a redelivery (Telegram keeps an update 24 hours at most).
    updates_keep_days: int = Field(default=3, ge=1, le=30)

    @field_validator("weekly_day")
    @classmethod
    def _day(cls, value: str) -> str:
        value = value.lower()[:3]
        if value not in {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}:
            raise ValueError("must be mon, tue, wed, thu, fri, sat or sun")
        return value


class RatingsSection(BaseModel):
    """The resident's judgement of an answer (issue 12)."""

    # A resident may send an answered appeal back within this many days of the answer, at most max_reopens times.
    reopen_days: int = Field(default=30, ge=1, le=365)
    max_reopens: int = Field(default=2, ge=0, le=10)
    # One reminder to rate this many days after the answer; unrated, the appeal closes after close_days.
    remind_days: int = Field(default=3, ge=1, le=30)
    close_days: int = Field(default=7, ge=1, le=60)
    # A score may be changed this many hours after it was given, never after.
    edit_hours: int = Field(default=24, ge=0, le=168)
    # "Is the problem actually fixed?" this many days after a physical problem closed with a rating of 3–5.
    followup_days: int = Field(default=14, ge=1, le=90)

    @model_validator(mode="after")
    def _order(self) -> RatingsSection:
        if self.close_days <= self.remind_days:
            raise ValueError("close_days must be greater than remind_days")
        return self


TELEGRAM_RATE = 30  # messages a second Telegram allows a bot overall


class BroadcastsSection(BaseModel):
    """Informing residents (issue 13): broadcasts go through the outbox sender's bulk lane."""

    # Messages a second the outbox sender sends overall (appeal notifications and broadcast items together).
    # Telegram allows a bot about 30; a little below leaves room for the replies to updates.
    rate: float = Field(default=25.0, gt=0, le=TELEGRAM_RATE)
    # A broadcast item that meets an error other than "blocked" or flood control is tried at most this many times.
    max_attempts: int = Field(default=3, ge=1, le=10)
    # How often the author's progress message is edited.
    progress_seconds: int = Field(default=5, ge=2, le=60)
    # Recipients materialized per transaction when a broadcast starts.
    batch: int = Field(default=1000, ge=10, le=10000)
    # Only one instance sends bulk items at a time (a lease in the database), so several instances together keep to
    # `rate`; a killed holder's lease passes to another instance after this many seconds.
    lease_seconds: int = Field(default=10, ge=3, le=120)

    @property
    def burst(self) -> int:
        """Calls the sender may make at once to catch up after a late one: at most 3, and never enough for `rate`
        plus the catch-up to pass Telegram's 30 in a second."""
        return max(1, min(3, int(TELEGRAM_RATE - self.rate)))


class IndexWeights(BaseModel):
    """The agency index's parts and their weights (bot/services/stats.py): each part is a score from 0 (worst) to 1
    (best); the index is their weighted mean × 100. A weight of 0 leaves a part out."""

    on_time: float = Field(default=0.35, ge=0)  # the share of answers given by the deadline
    answer_time: float = Field(default=0.15, ge=0)  # the median answer time: 1 at once, 0 at `answer_days_worst`
    rating: float = Field(default=0.25, ge=0)  # the average rating: 1 for 5 stars, 0 for 1 star
    reopened: float = Field(default=0.15, ge=0)  # 1 − the share of answered appeals the residents sent back
    returned: float = Field(default=0.10, ge=0)  # 1 − the share of answers the ЦУР's check returned for rework

    @model_validator(mode="after")
    def _some_weight(self) -> IndexWeights:
        if self.on_time + self.answer_time + self.rating + self.reopened + self.returned <= 0:
            raise ValueError("at least one weight must be above 0")
        return self


class StatsSection(BaseModel):
    """Statistics, reports and the agency rating (issue 14)."""

    # Rows a table in the chat shows; the rest are summed in one row (exports have every row).
    top_rows: int = Field(default=15, ge=5, le=50)
    # The longest period a slice may cover, in days.
    max_period_days: int = Field(default=1830, ge=31, le=3660)
    # Agencies with fewer answered appeals in the period are listed apart, not ranked.
    min_appeals: int = Field(default=10, ge=1)
    # The median answer time at which the index's "answer time" part reaches 0 (days).
    answer_days_worst: int = Field(default=30, ge=1, le=365)
    index: IndexWeights = IndexWeights()
    # A category × district whose appeals in the week exceed this many times their weekly average over the 4 weeks
    # before (and at least `problem_min` appeals) is flagged in the weekly report as a problem spot.
    problem_factor: float = Field(default=2.0, gt=1)
    problem_min: int = Field(default=5, ge=1)
    # Cells counting fewer appeals than this in a slice by district × category are shown as "<N" in exports and
    # reports (anything that leaves the bot), so that no resident can be singled out.
    small_cell: int = Field(default=3, ge=1)


class ConsentSection(BaseModel):
    # Bump it whenever the consent text changes: everyone is asked again.
    version: str = Field(default="2026-12-03", min_length=1)


class PrivacySection(BaseModel):
    """Personal data (152-ФЗ, issue 16)."""

    # Closed appeals are anonymized this many days after closing (bot/services/privacy.py, a daily job). The default
    # follows the archival rule for citizens' appeals: Перечень Росархива (приказ от 20.12.2019 № 236), ст. 154 —
    # обращения граждан, 5 лет ЭПК.
    retention_days: int = Field(default=1825, ge=1)
    # Appeals anonymized per transaction of the sweep.
    retention_batch: int = Field(default=500, ge=1, le=10000)
    # /mydata: exports a person may get in any 24 hours (counted in the database, so across instances).
    export_per_day: int = Field(default=3, ge=1, le=100)
    # Notifications sent (or given up) are deleted from the outbox this many days after they were queued, by the same
    # daily job: the outbox is a delivery queue, not an archive (the appeal's history keeps what happened), and its
    # rows carry words (a screen resent after flood control, the low ratings' comments). Broadcast items stay: their
    # broadcast's delivery report counts them.
    outbox_keep_days: int = Field(default=90, ge=1, le=3650)


class ThrottleSection(BaseModel):
    # Each update the throttle lets through is answered, and Telegram takes about one message a second in a chat
    # (short bursts tolerated): above that, replies meet 429. An album is charged once (bot/middlewares/throttling.py).
    rate: float = Field(default=1.0, gt=0, description="sustained updates per second per user")
    burst: int = Field(default=4, ge=1, description="updates a user may send at once")


class LoggingSection(BaseModel):
    level: str = "INFO"

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value


class OpsSection(BaseModel):
    """Health and metrics endpoints (bot/ops.py). In polling mode they get a server of their own on `port`
    (0 = off); the webhook server mounts them on its own port."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    # Seconds each readiness check (database, Bot API, Redis) may take before it counts as down.
    check_timeout: float = Field(default=2.0, gt=0, le=30)


class SandboxSection(BaseModel):
    """The sandbox (bot/sandbox/): the bot against the built-in emulator, with a web chat for demos and training.
    `make run` without a token starts it; `tsur-bot sandbox` always does."""

    # Loopback by default: anything else lets other machines play the demo people, and start-up says so.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The sandbox's own folder: its database (sandbox.db, never the production one), the uploaded files, its clock.
    dir: Path = Path("sandbox")
    # The largest file a trainee may upload from the page, as Telegram's bots may download.
    max_upload_mb: int = Field(default=20, ge=1, le=20)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TSUR_", env_nested_delimiter="__", extra="forbid", toml_file="config.toml"
    )
    toml_path: ClassVar[Path | None] = None

    bot: BotSection
    webhook: WebhookSection = WebhookSection()
    database: DatabaseSection = DatabaseSection()
    fsm: FsmSection = FsmSection()
    region: RegionSection = RegionSection()
    intake: IntakeSection = IntakeSection()
    limits: LimitsSection = LimitsSection()
    deadlines: DeadlinesSection = DeadlinesSection()
    scheduler: SchedulerSection = SchedulerSection()
    consent: ConsentSection = ConsentSection()
    privacy: PrivacySection = PrivacySection()
    ratings: RatingsSection = RatingsSection()
    broadcasts: BroadcastsSection = BroadcastsSection()
    stats: StatsSection = StatsSection()
    throttle: ThrottleSection = ThrottleSection()
    logging: LoggingSection = LoggingSection()
    ops: OpsSection = OpsSection()
    sandbox: SandboxSection = SandboxSection()
    locales_dir: Path = PROJECT_ROOT / "locales"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = cls.toml_path if cls.toml_path is not None else Path("config.toml")
        # Environment wins over the file so the token can stay out of it.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @model_validator(mode="after")
    def _webhook_complete(self) -> Settings:
        if self.bot.mode == "webhook":
            missing = [key for key in ("url", "secret") if not getattr(self.webhook, key)]
            if missing:
                raise ValueError(f'webhook.{missing[0]} must be set when bot.mode = "webhook"')
        return self

    @model_validator(mode="after")
    def _extras_installed(self) -> Settings:
        """The scale-out path's drivers are optional extras: name the missing one instead of failing on import."""
        needed = []
        if self.fsm.storage == "redis":
            needed.append(("redis", "redis", 'fsm.storage = "redis"'))
        if self.database.url.startswith("postgresql+asyncpg"):
            needed.append(("asyncpg", "postgres", "database.url = postgresql+asyncpg://…"))
        for module, extra, setting in needed:
            if importlib.util.find_spec(module) is None:
                raise ValueError(f'{setting} needs the "{extra}" extra: pip install -e ".[{extra}]"')
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.region.timezone)


class ConfigError(Exception):
    """A bad or missing configuration value; the message is one line naming the key."""


def real_bot_configured(path: Path | str | None = None) -> bool:
    """Whether the configuration asks for the real bot: a token given anywhere (valid or not, even an empty
    TSUR_BOT__TOKEN: a deployment that sets the variable and lost its value must fail, naming the key, not start a
    demo), or the webhook mode. Otherwise `run` starts the sandbox instead of failing, for a newcomer's first try."""
    if "TSUR_BOT__TOKEN" in os.environ or os.environ.get("TSUR_BOT__MODE", "").strip() == "webhook":
        return True
    chosen = Path(path or os.environ.get("TSUR_CONFIG", "config.toml"))
    try:
        with chosen.open("rb") as file:
            data = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        return False  # no file or an unreadable one: loading the settings names the problem
    bot = data.get("bot") if isinstance(data.get("bot"), dict) else {}
    return bool(str(bot.get("token", "")).strip()) or bot.get("mode") == "webhook"


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the config file (TSUR_CONFIG or ./config.toml) and the environment, or raise ConfigError."""
    chosen = Path(path or os.environ.get("TSUR_CONFIG", "config.toml"))
    Settings.toml_path = chosen
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        if not loc:  # a check across sections names its keys itself
            reason = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"config error: {reason} (set it in {chosen} or the TSUR_* environment)") from None
        section = Settings.model_fields.get(loc[0]) if len(loc) == 1 else None
        if first["type"] == "missing" and section is not None and isinstance(section.annotation, type):
            # A whole section is missing: name the key inside it that has no default.
            required = [name for name, f in section.annotation.model_fields.items() if f.is_required()]
            loc += required[:1]
        key = ".".join(loc) or "(root)"
        kind = "missing" if first["type"] == "missing" else first["msg"]
        hint = f" (set it in {chosen} or TSUR_{key.upper().replace('.', '__')})"
        raise ConfigError(f"config error: {key}: {kind}{hint}") from None
    finally:
        Settings.toml_path = None
