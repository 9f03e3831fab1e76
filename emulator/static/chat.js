// The sandbox web chat: one small script, no framework. The server renders message HTML (escaped, whitelisted
// tags); everything else is put in with textContent. Live updates come from Server-Sent Events (/api/events).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const S = { lang: "ru", strings: {}, personas: [], places: [], active: null, chat: null, maxText: 4096,
  maxUpload: 20 * 1024 * 1024, maxAlbum: 10, locationForButton: null, kbShown: false };

function t(key) { return S.strings[key] || key; }
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}
function q(path) { return path + (path.includes("?") ? "&" : "?") + "lang=" + encodeURIComponent(S.lang); }

async function api(path, body) {
  // What this person just did is shown: the chat goes to its newest message (a read mark is not an action).
  if (body !== undefined && !path.endsWith("/read")) S.sent = true;
  const options = body === undefined ? {} : body instanceof FormData
    ? { method: "POST", body } : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(q(path), options);
  const data = await response.json().catch(() => ({ ok: false, message: t("bad_request") }));
  if (!response.ok) { showError(data.message || t("bad_request")); throw new Error(data.error || response.status); }
  return data;
}

function showError(text) {
  const box = $("#composer-error");
  box.textContent = text;
  box.hidden = !text;
}

// ------------------------------------------------------------------ language, strings, panel

function pickLanguage(languages) {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  const stored = localStorage.getItem("tsur.lang");
  for (const lang of [fromUrl, stored, "ru"]) if (lang && languages.includes(lang)) return lang;
  return languages[0];
}

function applyStrings() {
  document.documentElement.lang = S.lang;
  document.title = t("title");
  $("#banner").textContent = t("banner");
  for (const node of document.querySelectorAll("[data-s]")) node.textContent = t(node.dataset.s);
  $("#composer textarea").placeholder = t("placeholder");
  $("#send").title = t("send");
  $("#attach").title = t("attach");
  $("#location-btn").title = t("location");
  $("#contact-btn").title = t("contact");
  $("#commands-btn").title = t("commands");
  $("#kb-toggle").title = t("keyboard");
  $("#drawer-toggle").title = t("menu");
  $("#lat").placeholder = t("latitude");
  $("#lon").placeholder = t("longitude");
}

async function bootstrap(lang) {
  const response = await fetch("/api/bootstrap?lang=" + encodeURIComponent(lang || "ru"));
  const data = await response.json();
  if (!lang) { S.lang = pickLanguage(data.languages); if (S.lang !== data.lang) return bootstrap(S.lang); }
  S.lang = data.lang;
  S.strings = data.strings;
  S.places = data.places;
  S.maxText = data.max_text; S.maxUpload = data.max_upload_bytes; S.maxAlbum = data.max_album;
  S.tz = data.timezone || undefined;
  const select = $("#lang select");
  select.replaceChildren(...data.languages.map((code) => el("option", { value: code, text: code })));
  select.value = S.lang;
  applyStrings();
  renderPlaces();
  renderPanel(data);
  const stored = Number(localStorage.getItem("tsur.persona"));
  const ids = data.personas.map((p) => p.user_id);
  await openChat(ids.includes(stored) ? stored : (S.active && ids.includes(S.active) ? S.active : ids[0]));
}

function renderPanel(panel) {
  $("#now").textContent = panel.now_text;
  S.personas = panel.personas;
  $("#personas").replaceChildren(...panel.personas.map((p) => {
    const badge = el("span", { class: "badge", text: String(p.unread) });
    badge.hidden = !p.unread || p.user_id === S.active;
    const item = el("li", { "data-user-id": String(p.user_id) },
      el("span", { class: "who" }, el("span", { class: "name", text: p.name }), el("span", { class: "role", text: p.role })), badge);
    item.classList.toggle("active", p.user_id === S.active);
    item.addEventListener("click", () => { document.body.classList.remove("drawer-open"); openChat(p.user_id); });
    return item;
  }));
  const scenarios = panel.scenarios.map((s) => {
    const item = el("li", { "data-key": s.key }, el("span", { class: "title", text: s.title }), el("span", { class: "desc", text: s.description }));
    item.classList.toggle("done", s.done);
    return item;
  });
  $("#scenarios").replaceChildren(...(scenarios.length ? scenarios : [el("li", { class: "none", text: t("no_scenarios") })]));
}

async function refreshPanel() {
  const response = await fetch(q("/api/panel"));
  if (response.ok) renderPanel(await response.json());
}

function setBadge(userId, count) {
  const badge = $(`#personas [data-user-id="${userId}"] .badge`);
  if (!badge) return;
  badge.textContent = String(count);
  badge.hidden = !count || userId === S.active;
}

// ------------------------------------------------------------------ the chat

let loading = null, reloadAgain = false;
async function loadChat() {
  if (loading) { reloadAgain = true; return loading; }
  loading = (async () => {
    do {
      reloadAgain = false;
      const userId = S.active;
      const response = await fetch(q(`/api/chats/${userId}`));
      if (!response.ok || userId !== S.active) continue;
      renderChat(await response.json());
    } while (reloadAgain);
  })();
  try { await loading; } finally { loading = null; }
}

async function openChat(userId) {
  S.active = userId;
  S.kbShown = false;
  localStorage.setItem("tsur.persona", String(userId));
  for (const item of document.querySelectorAll("#personas [data-user-id]")) {
    const mine = Number(item.dataset.userId) === userId;
    item.classList.toggle("active", mine);
    if (mine) $(".badge", item).hidden = true;
  }
  closeMenus();
  showError("");
  $("#toast").hidden = true;  // a popup belongs to the chat whose button was pressed
  $("#messages").replaceChildren();
  await loadChat();
}

let stickToBottom = true;
function keepAtBottom() {
  const box = $("#messages");
  if (stickToBottom) box.scrollTop = box.scrollHeight;
}

function renderChat(chat) {
  S.chat = chat;
  $("#chat-name").textContent = chat.persona.name;
  $("#chat-role").textContent = chat.persona.role;
  const box = $("#messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  // A line with the date wherever the day changes (time travel makes days pass in minutes).
  const nodes = [];
  let day = null;
  for (const m of chat.messages) {
    const date = m.date ? new Date(m.date * 1000).toLocaleDateString(S.lang, { day: "2-digit", month: "2-digit", year: "numeric", timeZone: S.tz }) : day;
    if (date !== day) { nodes.push(el("div", { class: "day", text: date })); day = date; }
    nodes.push(renderMessage(m));
  }
  box.replaceChildren(...(nodes.length ? nodes : [el("div", { class: "empty", text: t("empty_chat") })]));
  stickToBottom = atBottom || !box.dataset.seen || S.sent;
  S.sent = false;
  box.dataset.seen = "1";
  renderReplyKeyboard(chat.reply_keyboard);
  renderCommands(chat.commands);
  keepAtBottom();  // after the reply keyboard took its room from the messages
  const last = chat.messages.filter((m) => m.from_bot).map((m) => m.message_id).pop();
  if (last && last > chat.read) api(`/api/chats/${chat.persona.user_id}/read`, { message_id: last }).catch(() => {});
}

function renderMessage(m) {
  const node = el("div", { class: "msg " + (m.from_bot ? "bot" : "me"), "data-message-id": String(m.message_id) });
  if (m.media_group_id) node.dataset.mediaGroupId = m.media_group_id;
  if (m.media) node.append(renderMedia(m.media));
  if (m.html) {
    const text = el("div", { class: "text" });
    text.innerHTML = m.html; // rendered and escaped by the server (emulator/webchat_render.py)
    for (const spoiler of text.querySelectorAll(".spoiler")) spoiler.addEventListener("click", () => spoiler.classList.toggle("shown"));
    node.append(text);
  }
  if (m.inline_keyboard.length) {
    node.append(el("div", { class: "inline-kb" }, ...m.inline_keyboard.map((row) => el("div", { class: "row" }, ...row.map((b) => {
      const button = el("button", { type: "button", text: b.text });
      if (b.url) { button.dataset.url = b.url; button.addEventListener("click", () => window.open(b.url, "_blank", "noopener")); }
      else if (b.data !== undefined) button.addEventListener("click", () => api(`/api/chats/${S.active}/click`, { message_id: m.message_id, data: b.data }).catch(() => {}));
      return button;
    })))));
  }
  const time = m.date ? new Date(m.date * 1000).toLocaleTimeString(S.lang, { hour: "2-digit", minute: "2-digit", timeZone: S.tz }) : "";
  node.append(el("div", { class: "meta", text: (m.edited ? t("edited") + " " : "") + time }));
  if (m.edited) node.classList.add("edited");
  return node;
}

function formatSize(bytes) {
  if (bytes == null) return "";
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

function renderMedia(media) {
  switch (media.type) {
    case "photo": {
      // A picture gets its height only once loaded: keep a chat that was at its newest message there.
      const img = el("img", { class: "photo", src: media.url, alt: "" });
      img.addEventListener("load", keepAtBottom);
      return img;
    }
    case "video": case "video_note": return el("video", { src: media.url, controls: true, preload: "metadata" });
    case "audio": case "voice": return el("audio", { src: media.url, controls: true, preload: "none" });
    case "document": return el("div", { class: "card document" },
      el("a", { href: media.url, text: "📄 " + media.name, download: media.name }), el("div", { class: "size", text: formatSize(media.size) }));
    case "location": return el("div", { class: "card location" }, el("div", { text: "📍 " + (media.title || t("location")) }),
      el("div", { class: "coords", text: `${media.latitude.toFixed(5)}, ${media.longitude.toFixed(5)}` }));
    case "contact": return el("div", { class: "card contact" }, el("div", { text: "👤 " + media.name }), el("div", { text: media.phone }));
    case "sticker": return el("div", { class: "sticker", text: media.emoji });
    case "dice": return el("div", { class: "card dice", text: `${media.emoji} ${media.value}` });
    default: return null;
  }
}

function renderReplyKeyboard(kb) {
  const box = $("#reply-kb");
  const toggle = $("#kb-toggle");
  $("#composer textarea").placeholder = (kb && kb.placeholder) || t("placeholder");
  if (!kb) { box.hidden = true; toggle.hidden = true; box.replaceChildren(); return; }
  box.replaceChildren(...kb.rows.map((row) => el("div", { class: "row" }, ...row.map((b) => {
    const button = el("button", { type: "button", text: b.text });
    button.addEventListener("click", () => pressReplyButton(b, kb));
    return button;
  }))));
  box.hidden = kb.hidden && !S.kbShown;
  toggle.hidden = false;
}

async function pressReplyButton(button, kb) {
  if (button.request_location) { openLocationMenu(button.text); return; }
  S.kbShown = false;
  await api(`/api/chats/${S.active}/reply_button`, { text: button.text }).catch(() => {});
}

function renderCommands(commands) {
  const items = commands.map((c) => {
    const item = el("li", { "data-command": c.command }, el("span", { class: "cmd", text: "/" + c.command }), el("span", { text: c.description }));
    item.addEventListener("click", () => { closeMenus(); sendText("/" + c.command); });
    return item;
  });
  $("#commands-menu").replaceChildren(...(items.length ? items : [el("li", { class: "none", text: t("no_commands") })]));
}

// ------------------------------------------------------------------ composer

async function sendText(text) {
  if (!text.trim()) return;
  if (text.length > S.maxText) { showError(t("too_long")); return false; }
  showError("");
  await api(`/api/chats/${S.active}/text`, { text });
  return true;
}

async function sendComposer() {
  const area = $("#composer textarea");
  if (!area.value.trim()) return;
  try { if (await sendText(area.value)) area.value = ""; } catch { /* shown by api() */ }
}

async function upload(files) {
  if (!files.length) return;
  if (files.length > S.maxAlbum) { showError(t("too_many_files")); return; }
  if ([...files].some((f) => f.size > S.maxUpload)) { showError(t("upload_too_big")); return; }
  const area = $("#composer textarea");
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  if (area.value.trim()) form.append("caption", area.value);
  showError("");
  try { await api(`/api/chats/${S.active}/upload`, form); area.value = ""; } catch { /* shown by api() */ }
}

function closeMenus() {
  $("#location-menu").hidden = true;
  $("#commands-menu").hidden = true;
  S.locationForButton = null;
}

function renderPlaces() {
  $("#places").replaceChildren(...S.places.map((p) => {
    const item = el("li", { "data-lat": String(p.latitude), "data-lon": String(p.longitude), text: "📍 " + p.name });
    item.addEventListener("click", () => sendLocation(p.latitude, p.longitude));
    return item;
  }));
}

function openLocationMenu(buttonText) {
  const menu = $("#location-menu");
  const wasOpen = !menu.hidden;
  closeMenus();
  if (wasOpen && !buttonText) return;
  S.locationForButton = buttonText || null;
  $("#coords-error").hidden = true;
  menu.hidden = false;
}

async function sendLocation(latitude, longitude) {
  const button = S.locationForButton;
  closeMenus();
  const body = { latitude, longitude };
  if (button) { S.kbShown = false; await api(`/api/chats/${S.active}/reply_button`, { text: button, ...body }).catch(() => {}); }
  else await api(`/api/chats/${S.active}/location`, body).catch(() => {});
}

function parseCoordinate(text, limit) {
  const value = Number(String(text).trim().replace(",", "."));
  return text.trim() !== "" && Number.isFinite(value) && Math.abs(value) <= limit ? value : null;
}

// ------------------------------------------------------------------ toasts and events

let toastTimer = null;
function showToast(text, alert) {
  if (alert) { $("#alert-text").textContent = text; $("#alert").hidden = false; $("#alert-ok").focus(); return; }
  const toast = $("#toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 3000);
}

function listen() {
  const source = new EventSource("/api/events");
  let lost = false;
  source.onopen = () => {
    showError("");
    // Events sent while the stream was down are gone: re-read what they would have told.
    if (lost) { lost = false; loadChat(); refreshPanel(); }
  };
  source.onerror = () => { if (source.readyState !== EventSource.OPEN) { lost = true; showError(t("connection_lost")); } };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "chat") {
      if (event.user_id === S.active) loadChat();
      else setBadge(event.user_id, event.unread);
    } else if (event.type === "toast" && event.user_id === S.active) showToast(event.text, event.alert);
    else if (event.type === "panel") refreshPanel();
  };
}

function wire() {
  const box = $("#messages");
  box.addEventListener("scroll", () => { stickToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40; });
  const area = $("#composer textarea");
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendComposer(); }
  });
  $("#send").addEventListener("click", sendComposer);
  $("#attach input").addEventListener("change", async (e) => { const files = [...e.target.files]; e.target.value = ""; await upload(files); });
  $("#location-btn").addEventListener("click", () => openLocationMenu(null));
  $("#contact-btn").addEventListener("click", () => api(`/api/chats/${S.active}/contact`, {}).catch(() => {}));
  $("#commands-btn").addEventListener("click", () => { const menu = $("#commands-menu"); const open = menu.hidden; closeMenus(); menu.hidden = !open; });
  $("#kb-toggle").addEventListener("click", () => { S.kbShown = $("#reply-kb").hidden; $("#reply-kb").hidden = !S.kbShown; });
  $("#coords").addEventListener("submit", (e) => {
    e.preventDefault();
    const lat = parseCoordinate($("#lat").value, 90), lon = parseCoordinate($("#lon").value, 180);
    if (lat === null || lon === null) { $("#coords-error").textContent = t("bad_coordinates"); $("#coords-error").hidden = false; return; }
    sendLocation(lat, lon);
  });
  for (const button of document.querySelectorAll("#travel button[data-seconds]")) {
    button.addEventListener("click", async () => {
      const data = await api("/api/travel", { seconds: Number(button.dataset.seconds) }).catch(() => null);
      if (data) $("#now").textContent = data.now_text;
    });
  }
  $("#lang select").addEventListener("change", async (e) => {
    localStorage.setItem("tsur.lang", e.target.value);
    const url = new URL(location.href);
    if (url.searchParams.has("lang")) { url.searchParams.set("lang", e.target.value); history.replaceState(null, "", url); }
    await bootstrap(e.target.value);
  });
  $("#drawer-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("drawer-open");
    $("#drawer-toggle").setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("click", (e) => {
    // A tap outside the open drawer closes it (on a phone the drawer covers its own toggle).
    if (document.body.classList.contains("drawer-open") && !e.target.closest("#side, #drawer-toggle")) {
      document.body.classList.remove("drawer-open");
      $("#drawer-toggle").setAttribute("aria-expanded", "false");
    }
  });
  $("#alert-ok").addEventListener("click", () => { $("#alert").hidden = true; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") { closeMenus(); $("#alert").hidden = true; } });
}

wire();
bootstrap(null).then(listen);
