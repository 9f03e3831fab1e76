"""/start: language, then the personal-data consent (152-FZ), then the main menu; /language."""

from __future__ import annotations

from aiogram import Bot, F
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import DialogManager, ShowMode

from bot import keyboards as kb
from bot.callbacks import ConsentAction, ConsentCb, LangCb
from bot.command_menu import CommandMenus
from bot.config import LOCALES, Settings
from bot.keyboards import MenuButton
from bot.notifications import ROLES
from bot.services import Services
from bot.services.errors import InvalidInput, NotFound
from bot.services.users import Actor, guess_locale
from bot.states import Onboarding
from handlers import Handlers
from handlers.common.cancel import end_conversation

router = Handlers(__name__)


def consent_text(version: str) -> str:
    return _(
        "<b>Consent to the processing of personal data</b> (Federal Law 152-FZ), version {version}\n\n"
        "To register and answer your appeals, the Regional Management Center of the Chechen Republic "
        "processes the data you send: your Telegram id, the text, photos, videos and documents of your "
        "appeals, the place of the problem and, for an appeal under 59-FZ, your full name and contact.\n"
        "The data is passed only to the bodies responsible for your appeal. Appeals are kept for 5 years after "
        "they are closed, then anonymized: your name, contact, address, exact place and files are erased. You may "
        "withdraw the consent at any time (/privacy).\n\n"
        "Do you agree?"
    ).format(version=version)


async def ask_language(message: Message, state: FSMContext, preselected: str) -> None:
    await state.set_state(Onboarding.language)
    await message.answer("Выберите язык · Мотт харжа · Choose your language", reply_markup=kb.languages(preselected))


async def ask_consent(message: Message, state: FSMContext, settings: Settings) -> None:
    await state.set_state(Onboarding.consent)
    await message.answer(consent_text(settings.consent.version), reply_markup=kb.consent())


async def show_menu(message: Message, text: str) -> None:
    await message.answer(text, reply_markup=kb.main_menu())


@router.message(CommandStart(deep_link=True, magic=F.args.startswith("inv_")))
async def start_with_invite(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    actor: Actor,
    services: Services,
    bot: Bot,
    menus: CommandMenus,
) -> None:
    """An invite link (t.me/<bot>?start=inv_…) grants its role once, before it expires."""
    await state.clear()
    token = (command.args or "")[4:]
    try:
        user = message.from_user
        role = await services.access.redeem(
            actor, token, user.full_name if user else None, user.username if user else None
        )
    except NotFound:
        await message.answer(_("This invite link is not valid."))
        return
    except InvalidInput as error:
        if error.detail == "invite_used":
            await message.answer(_("This invite link has already been used."))
        else:
            await message.answer(_("This invite link has expired. Ask the administrator for a new one."))
        return
    if actor.locale is None:
        # Staff skip the resident's onboarding: keep the language their Telegram uses for notifications too.
        await services.users.set_locale(actor, actor.lang)
    await message.answer(
        _("Welcome to the team! Your role: {role}. Send /staff to see what you can do.").format(role=_(ROLES[role])),
        reply_markup=kb.main_menu(),
    )
    # The «/» menu gets the role's commands (read afresh: the role was granted within this update).
    await menus.sync(bot, await services.users.identify(actor.tg_id))


@router.message(CommandStart())
async def start(
    message: Message, state: FSMContext, dialog_manager: DialogManager, actor: Actor, settings: Settings
) -> None:
    await end_conversation(state, dialog_manager)  # /start begins anew: an open dialog would take the next text
    if actor.locale is None:
        user = message.from_user
        await ask_language(message, state, guess_locale(user.language_code if user else None))
    elif not actor.has_consent:
        await ask_consent(message, state, settings)
    else:
        await show_menu(message, _("Welcome back! Choose an action in the menu below."))


@router.message(Command("language"))
@router.message(MenuButton("language"))
async def language_command(message: Message, state: FSMContext, actor: Actor) -> None:
    await message.answer("Выберите язык · Мотт харжа · Choose your language", reply_markup=kb.languages(actor.lang))


@router.callback_query(LangCb.filter(F.code.in_(LOCALES)))
async def choose_language(
    callback: CallbackQuery,
    callback_data: LangCb,
    state: FSMContext,
    dialog_manager: DialogManager,
    actor: Actor,
    services: Services,
    settings: Settings,
    i18n: I18n,
    bot: Bot,
    menus: CommandMenus,
) -> None:
    actor = await services.users.set_locale(actor, callback_data.code)
    message = callback.message
    if not isinstance(message, Message):
        return
    with i18n.use_locale(callback_data.code):
        await message.edit_text(_("Language: {name}").format(name=kb.LANGUAGE_NAMES[callback_data.code]))
        if not actor.has_consent and not actor.consent_declined and not actor.is_staff:
            # A resident who has not answered the consent yet; staff came by invite and work without it.
            await ask_consent(message, state, settings)
        elif dialog_manager.has_context():
            # In the middle of filing (or a card open): the same step again, in the new language; nothing typed so
            # far is lost. Its getters read the person as they are now (QA: names stayed in the old language).
            dialog_manager.middleware_data["actor"] = actor
            await dialog_manager.show(ShowMode.SEND)
        else:
            await state.clear()
            await show_menu(message, _("Done. Choose an action in the menu below."))
    await menus.sync(bot, actor)  # the «/» menu in the chosen language too


@router.callback_query(ConsentCb.filter(F.action == ConsentAction.show))
async def show_consent(
    callback: CallbackQuery, callback_answer: CallbackAnswer, state: FSMContext, actor: Actor, settings: Settings
) -> None:
    if actor.has_consent:
        # An old «Read the consent» button of someone who has since agreed: nothing to ask again.
        callback_answer.text = _("Your consent is already recorded. /privacy shows it and how to withdraw it.")
        return
    if isinstance(callback.message, Message):
        await ask_consent(callback.message, state, settings)


@router.callback_query(Onboarding.consent, ConsentCb.filter())
async def answer_consent(
    callback: CallbackQuery, callback_data: ConsentCb, state: FSMContext, actor: Actor, services: Services
) -> None:
    accepted = callback_data.action == ConsentAction.accept
    # Stored before we say so.
    await services.users.answer_consent(actor, accepted)
    await state.clear()
    message = callback.message
    if not isinstance(message, Message):
        return
    await message.edit_reply_markup(reply_markup=None)
    if accepted:
        await show_menu(
            message, _("Thank you, your consent is recorded. Now you can file an appeal: press «📝 File an appeal».")
        )
    else:
        await show_menu(
            message,
            _(
                "Your choice is recorded. Without the consent the bot cannot accept appeals, but you can "
                "still read /help and /privacy. If you change your mind, press «📝 File an appeal» "
                "or send /start."
            ),
        )
