"""How the agency index (bot/services/stats.py AgencyRating) reads: the ranking message of /rating and of the monthly
report to the leadership, one agency's breakdown, the bar chart and the rows of a spreadsheet.

Called inside the reader's locale (a handler's, or `i18n.use_locale` for the scheduler's reports): `_` is the
current gettext. Agency names come from the directory (admins may edit them) and are escaped before they go into
HTML. A rating held to one agency (a supervisor's, `AgencyRating.only`) is shown as that agency's place and
breakdown only, whatever `own_agency` says: it holds nothing of the others."""

from __future__ import annotations

from html import escape as html_escape

from aiogram.utils.i18n import gettext as _

from bot.charts import score_chart
from bot.config import IndexWeights
from bot.i18n import N_
from bot.services.directory import DirectoryService
from bot.services.stats import AgencyRating, IndexEntry
from bot.stats_view import duration, period_text


def escape(text: str) -> str:
    """HTML-escaped for a message's text (quotes stay as typed: they are safe outside attributes)."""
    return html_escape(text, quote=False)


# The index's parts in the order they are shown, with the name of the raw figure behind each.
PARTS = ("on_time", "answer_time", "rating", "reopened", "returned")
PART_NAMES = {
    "on_time": N_("Answered on time"),
    "answer_time": N_("Median time to the answer"),
    "rating": N_("Average rating"),
    "reopened": N_("Re-opened by residents"),
    "returned": N_("Answers returned by the ЦУР's check"),
}


def agency_name(directory: DirectoryService, agency_id: int, lang: str) -> str:
    """The plain (unescaped) short name of an agency."""
    agency = directory.agency(agency_id)
    return agency.name(lang) if agency else f"#{agency_id}"


def change_mark(entry: IndexEntry) -> str:
    """The change of place since the previous period: ▲2 (up two places), ▼1, = (the same), or "new" (not ranked
    then); empty for an agency not ranked now."""
    if entry.rank is None:
        return ""
    if entry.previous_rank is None:
        return _("new")
    moved = entry.previous_rank - entry.rank
    if moved > 0:
        return f"▲{moved}"
    if moved < 0:
        return f"▼{-moved}"
    return "="


def score_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _raw(entry: IndexEntry, part: str) -> str:
    """The raw figure behind a part, in its unit."""
    match part:
        case "on_time":
            return _share(entry.on_time_share)
        case "answer_time":
            return duration(entry.answer_median)
        case "rating":
            value = "—" if entry.rating_avg is None else f"{entry.rating_avg:.2f}"
            return _("{value} ({count} ratings)").format(value=value, count=entry.ratings)
        case "reopened":
            return _share(entry.reopened_share)
        case _:
            return _share(entry.returned_share)


def title_lines(rating: AgencyRating) -> list[str]:
    return [
        f"<b>🏆 {escape(_('Agency rating'))}</b>",
        _("Period: {period} (compared with {previous})").format(
            period=period_text(rating.period), previous=period_text(rating.period.previous())
        ),
    ]


def breakdown_text(
    entry: IndexEntry,
    lang: str,
    directory: DirectoryService,
    weights: IndexWeights,
    places: int | None = None,
) -> str:
    """One agency's index, part by part: the raw figure, its score (0–100) and its weight; then the index, the
    weighted mean of the parts that could be measured. `places`: how many agencies were ranked (for "place 3 of 12")."""
    lines = [f"<b>{escape(agency_name(directory, entry.agency_id, lang))}</b>"]
    if entry.rank is not None:
        index = score_text(entry.index)
        place = (
            _("Place {rank} of {places}, index {index}").format(rank=entry.rank, places=places, index=index)
            if places is not None
            else _("Place {rank}, index {index}").format(rank=entry.rank, index=index)
        )
        change = change_mark(entry)
        lines.append(f"<b>{escape(place)}</b>" + (f" {escape(change)}" if change else ""))
        if entry.previous_rank is not None:
            lines.append(
                _("Previous period: place {rank}, index {index}").format(
                    rank=entry.previous_rank, index=score_text(entry.previous_index)
                )
            )
    else:
        lines.append(_("Not ranked · index {index}").format(index=score_text(entry.index)))
    lines.append(_("Answered in the period: {count}").format(count=entry.answered))
    lines.append("")
    for part in PARTS:
        score = entry.parts.get(part)
        weight = getattr(weights, part)
        scored = _("not measured") if score is None else _("{score} of 100").format(score=f"{100 * score:.0f}")
        lines.append(
            escape(
                _("• {part}: {value} → {score}, weight {weight}").format(
                    part=_(PART_NAMES[part]), value=_raw(entry, part), score=scored, weight=f"{weight:g}"
                )
            )
        )
    lines.append("")
    lines.append(
        escape(
            _("Index: {index} (the weighted mean of the measured parts, 0–100)").format(index=score_text(entry.index))
        )
    )
    return "\n".join(lines)


def rating_text(rating: AgencyRating, lang: str, directory: DirectoryService, own_agency: int | None = None) -> str:
    """The ranking as one HTML message: place, agency, index and the change since the previous period, then the
    agencies listed apart with their counts. With `own_agency` (a supervisor), that agency's place of how many and
    its breakdown only."""
    own = rating.held_to if rating.held_to is not None else own_agency
    lines = title_lines(rating)
    if own is not None:
        lines.append("")
        entry = rating.entry(own)
        if entry is None:
            lines.append(_("Your agency answered no appeals in this period."))
            return "\n".join(lines)
        if entry.rank is None:
            lines.append(
                _("Your agency is not ranked: fewer than {count} appeals answered in the period.").format(
                    count=rating.min_appeals
                )
            )
        else:
            lines.append(_("Your agency's place: {rank} of {places}.").format(rank=entry.rank, places=rating.places))
        lines.append("")
        lines.append(breakdown_text(entry, lang, directory, rating.weights, rating.places))
        return "\n".join(lines)
    lines.append("")
    if rating.ranked:
        for entry in rating.ranked:
            change = change_mark(entry)
            name = escape(agency_name(directory, entry.agency_id, lang))
            lines.append(
                f"{entry.rank}. {name} — <b>{score_text(entry.index)}</b>" + (f" {escape(change)}" if change else "")
            )
    else:
        lines.append(_("No agency answered enough appeals in this period to be ranked."))
    if rating.apart:
        lines.append("")
        lines.append(_("Not ranked (fewer than {count} answered):").format(count=rating.min_appeals))
        for entry in rating.apart:
            name = escape(agency_name(directory, entry.agency_id, lang))
            lines.append(_("• {agency}: {count} answered").format(agency=name, count=entry.answered))
    return "\n".join(lines)


def rating_chart(rating: AgencyRating, lang: str, directory: DirectoryService) -> bytes | None:
    """A horizontal bar of the index per ranked agency, the best on top; None when no agency is ranked (or the rating
    is held to one agency: a chart of one bar says nothing the text does not)."""
    if not rating.ranked or rating.held_to is not None:
        return None
    bars = [(f"{e.rank}. {agency_name(directory, e.agency_id, lang)}", e.index or 0.0) for e in rating.ranked]
    title = _("Agency rating, {period}").format(period=period_text(rating.period))
    footer = (
        _("Index 0–100. Not ranked (fewer than {count} answered): {apart}").format(
            count=rating.min_appeals, apart=len(rating.apart)
        )
        if rating.apart
        else _("Index 0–100.")
    )
    return score_chart(title, bars, footer)


def rating_sheet(rating: AgencyRating, lang: str, directory: DirectoryService) -> list[list[object]]:
    """The ranking as spreadsheet rows (a header first, numbers as numbers: shares 0–1, the median in days, empty
    where not measured): the ranked agencies, then those listed apart (no place)."""
    header: list[object] = [
        _("Place"),
        _("Agency"),
        _("Index"),
        _("Place in the previous period"),
        _("Answered"),
        _(PART_NAMES["on_time"]),
        _("Median time to the answer, days"),
        _(PART_NAMES["rating"]),
        _("Ratings given"),
        _(PART_NAMES["reopened"]),
        _(PART_NAMES["returned"]),
    ]
    rows: list[list[object]] = [header]
    for entry in (*rating.ranked, *rating.apart):
        rows.append(
            [
                entry.rank if entry.rank is not None else "",
                agency_name(directory, entry.agency_id, lang),
                entry.index if entry.index is not None else "",
                entry.previous_rank if entry.previous_rank is not None else "",
                entry.answered,
                entry.on_time_share if entry.on_time_share is not None else "",
                round(entry.answer_median / 86400, 2) if entry.answer_median is not None else "",
                entry.rating_avg if entry.rating_avg is not None else "",
                entry.ratings,
                entry.reopened_share if entry.reopened_share is not None else "",
                entry.returned_share if entry.returned_share is not None else "",
            ]
        )
    return rows
