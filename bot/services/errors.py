from __future__ import annotations


class ServiceError(Exception):
    """A refusal a user can be told about; `code` picks the localized text."""

    code = "error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail


class NotFound(ServiceError):
    """Missing, or not the actor's to see: the two look the same so nothing leaks."""

    code = "not_found"


class PresetNotFound(NotFound):
    """A statistics preset that is not there, or not the actor's (bot/services/presets.py): the two look the same."""

    code = "preset_not_found"


class Forbidden(ServiceError):
    code = "forbidden"


class AppealHidden(Forbidden):
    """Refused on an appeal: told as if it did not exist, so that its existence does not leak."""

    code = "appeal_hidden"


class NotYours(Forbidden):
    """Refused on an appeal the person may see, for another role's action (an official's reject, a coordinator's
    answer): told who may do it, since the appeal's existence is no secret to them. `detail` names the action."""

    code = "not_yours"


class InvalidInput(ServiceError):
    code = "invalid"


class Gone(InvalidInput):
    """A choice that was offered and no longer exists (a removed category, a stale or forged button)."""

    code = "gone"


class ConsentRequired(ServiceError):
    code = "consent_required"


class IllegalTransition(InvalidInput):
    """A move the state machine (bot.domain.TRANSITIONS) or the use case does not allow from this status."""

    code = "illegal_transition"
