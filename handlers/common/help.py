from __future__ import annotations

from dataclasses import replace

from aiogram import Bot, F
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import DialogManager

from bot.callbacks import PrivacyAction, PrivacyCb
from bot.command_menu import CommandMenus
from bot.config import Settings
from bot.keyboards import MenuButton
from bot.services import Services
from bot.services.privacy import PrivacyRefused, Withdrawal
from bot.services.users import Actor
from handlers import Handlers
from handlers.common.cancel import end_conversation

router = Handlers(__name__)


@router.message(Command("help"))
@router.message(MenuButton("help"))
async def show_help(message: Message) -> None:
    await message.answer(
        _(
            "<b>How the ЦУР bot works</b>\n\n"
            "📝 <b>File an appeal</b>: choose a topic, describe the problem, attach photos, show the place. "
            "A <i>message</i> is answered within 10 days; an <i>appeal under 59-FZ</i> within 30 days "
            "and needs your full name and a contact.\n"
            "📋 <b>My appeals</b>: the status of each of your appeals and its history.\n\n"
            "Commands: /new a new appeal, /my your appeals, /language the language, "
            "/privacy how your data is handled, /cancel stop the current action."
        )
        + "\n\n"
        # A paragraph of its own (issue 13), so the text above keeps its translations.
        + _("📰 /subscriptions: the news of the ЦУР you get (topics, districts), or none at all.")
        + "\n"
        + _("📄 /mydata: a file with everything the bot stores about you.")
    )


@router.message(Command("privacy"))
async def show_privacy(message: Message, settings: Settings, actor: Actor) -> None:
    # Only a consent in force can be withdrawn (staff work without one); the service checks again at every press.
    markup = withdraw_button() if actor.has_consent and not actor.is_staff else None
    await message.answer(
        _(
            "<b>Your personal data</b> (Federal Law 152-FZ)\n\n"
            "<b>What is stored:</b> your Telegram id and chosen language; the text, photos, videos, documents, "
            "place and district of your appeals; for an appeal under 59-FZ your full name and contact.\n"
            "<b>Why:</b> to register your appeals, send them to the responsible body, control the answer "
            "and tell you about it.\n"
            "<b>Who sees it:</b> the staff of the regional management center and of the body that answers.\n"
            "<b>How long:</b> appeals are kept for 5 years after they are closed, as the archive rules require; "
            "then they are anonymized: your name, contact, address, exact place and files are erased.\n"
            "<b>Consent:</b> version {version}. You may withdraw it with the button below; appeals already filed "
            "are still answered."
        ).format(version=settings.consent.version)
        + "\n\n"
        # A paragraph of its own (issue 16), so the text above keeps most of its translation.
        + _(
            "<b>What we hold about you:</b> /mydata sends it as a readable page and a JSON file (Federal Law "
            "152-FZ, article 14)."
        )
        + (
            # No button to press (never given, declined or withdrawn): say where the person stands (QA).
            "\n\n" + _("<b>Your consent is not in force now.</b> To file appeals, send /start and give it.")
            if not actor.has_consent and not actor.is_staff
            else ""
        ),
        reply_markup=markup,
    )


# --- withdrawing the consent (issue 16) ----------------------------------------------------------------------


def _button(text: str, action: PrivacyAction) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=text, callback_data=PrivacyCb(action=action).pack())]


def withdraw_button() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[_button(_("Withdraw consent"), PrivacyAction.ask)])


def refusal(error: PrivacyRefused) -> str:
    if error.detail == "staff":
        return _("Staff work without a resident's consent: there is no consent to withdraw.")
    if error.detail == "already_withdrawn":
        return _("Your consent is already withdrawn. Send /start to use the bot again.")
    return _("You have no consent to the processing of personal data in force: there is nothing to withdraw.")


@router.callback_query(PrivacyCb.filter(F.action == PrivacyAction.ask))
async def confirm_withdrawal(
    callback: CallbackQuery, callback_answer: CallbackAnswer, actor: Actor, services: Services
) -> None:
    try:
        preview = await services.privacy.preview(actor)
    except PrivacyRefused as error:
        callback_answer.text = refusal(error)
        callback_answer.show_alert = True
        return
    text = _(
        "<b>Withdraw your consent to the processing of personal data?</b>\n\n"
        "• You will not be able to file new appeals.\n"
        "• Your profile is erased: language, news subscriptions, poll invitations.\n"
        "• Your closed appeals are anonymized: your name, contact, address, exact place, files and the link to you "
        "are erased; the text, topic, district and dates stay for the statistics.\n"
        "• It cannot be undone. To use the bot again you will give the consent anew."
    )
    rows = []
    if preview.open_appeals:
        if preview.under_59fz:
            still = _(
                "You have open appeals: {count}. They are still answered as the law (59-FZ) requires, and anonymized "
                "once closed; or you can withdraw them too."
            )
        else:  # only сообщения (the ПОС track): no law obliges the answer, the ЦУР answers them all the same
            still = _(
                "You have open appeals: {count}. They are still answered, and anonymized once closed; or you can "
                "withdraw them too."
            )
        text += "\n\n" + still.format(count=preview.open_appeals)
        rows.append(_button(_("Withdraw, keep my open appeals answered"), PrivacyAction.keep))
        rows.append(_button(_("Withdraw and withdraw my open appeals too"), PrivacyAction.all))
    else:
        rows.append(_button(_("Withdraw my consent"), PrivacyAction.keep))
    rows.append(_button(_("Cancel"), PrivacyAction.cancel))
    if isinstance(callback.message, Message):
        await callback.message.answer(text, reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(PrivacyCb.filter(F.action == PrivacyAction.cancel))
async def cancel_withdrawal(
    callback: CallbackQuery, callback_answer: CallbackAnswer, actor: Actor, services: Services
) -> None:
    try:
        await services.privacy.preview(actor)  # the same check: a forged «Cancel» says nothing untrue either
    except PrivacyRefused as error:
        callback_answer.text = refusal(error)
        callback_answer.show_alert = True
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_text(_("Nothing has changed: your consent stays in force."))


@router.callback_query(PrivacyCb.filter(F.action.in_({PrivacyAction.keep, PrivacyAction.all})))
async def withdraw(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: PrivacyCb,
    state: FSMContext,
    dialog_manager: DialogManager,
    actor: Actor,
    services: Services,
    bot: Bot,
    menus: CommandMenus,
) -> None:
    try:
        done = await services.privacy.withdraw(actor, withdraw_open=callback_data.action == PrivacyAction.all)
    except PrivacyRefused as error:
        callback_answer.text = refusal(error)
        callback_answer.show_alert = True
        return
    # Whatever the person was in the middle of (a draft appeal) goes with the profile.
    await end_conversation(state, dialog_manager)
    message = callback.message
    if isinstance(message, Message):
        await message.edit_reply_markup(reply_markup=None)
        await message.answer(withdrawal_report(done), reply_markup=ReplyKeyboardRemove())
    # The language went with the profile: the «/» menu is the default one again, as for someone new (QA).
    await menus.sync(bot, replace(actor, locale=None))


def withdrawal_report(done: Withdrawal) -> str:
    lines = [
        _("Your consent to the processing of personal data is withdrawn, and your profile is erased."),
        _("Closed appeals anonymized: {count}.").format(count=done.anonymized),
    ]
    if done.withdrawn:
        lines.append(_("Open appeals withdrawn and anonymized: {count}.").format(count=done.withdrawn))
    if done.kept_open:
        lines.append(
            _(
                "Open appeals still being answered: {count}. The answers come here; each appeal is anonymized once "
                "it is closed."
            ).format(count=done.kept_open)
        )
    lines.append(_("To use the bot again, send /start."))
    return "\n".join(lines)
