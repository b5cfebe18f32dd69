// Breakout Recorder's page: screens, the 3 Dots menu, the recording flow's dialogs and the
// indicator. It talks to Rust only through ./bindings.js (generated from the Rust types).
//
// The rules (who may record, when a recording stops by itself) are the core's: this page only
// shows what the core allows and says. A click the rules forbid is refused by the core too.

import * as api from "./bindings.js";

// The product's texts (DESIGN.md §3): keep them exact.
export const TEXT = {
  askStart: "Do you want to start recording?",
  startButton: "Start recording",
  starting: "Recording will start momentarily.",
  recorded: "This session is being recorded.",
  confirm: "Confirm",
  record: "Record",
  stop: "Stop recording",
  askClose: "A recording is in progress. Stop it, save it and close Breakout Recorder?",
  closeButton: "Stop and close",
  keepButton: "Keep recording",
};

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** What the page knows; every render reads from here. */
const ui = {
  /** @type {import("./bindings.js").AppInfo | null} */ info: null,
  /** @type {import("./bindings.js").SessionInfo | null} */ session: null,
  /** @type {import("./bindings.js").RoomView | null} */ room: null,
  /** "idle" | "starting" | "recording" | "stopping" */
  recording: "idle",
  startedAt: 0,
  /** @type {number | undefined} */ timer: undefined,
};

// ---- screens -------------------------------------------------------------------------------

function show(screen) {
  for (const s of ["start", "rooms", "room"]) $(`screen-${s}`).hidden = s !== screen;
  document.body.dataset.screen = screen;
}

function oneLine(e) {
  if (e && typeof e === "object" && "message" in e) return String(e.message);
  return String(e);
}

async function startScreen() {
  show("start");
  $("room-name").textContent = "";
  $("room-role").hidden = true;
  $("who").textContent = "";
  const info = ui.info;
  const server = info?.embedded_server ?? info?.last_server ?? "";
  for (const id of ["sign-in-server", "guest-server"]) {
    const input = /** @type {HTMLInputElement} */ ($(id));
    if (!input.value) input.value = server;
  }
  const hint = $("demo-hint");
  if (info?.demo) {
    const d = info.demo;
    hint.textContent =
      `Demo classroom on this computer: moderator ${d.moderator.username} / ${d.moderator.password}, ` +
      `participant ${d.participant.username} / ${d.participant.password}, guest invite code ${d.guest_invite_code}.`;
    hint.hidden = false;
  }
  $("sign-in-username").focus();
}

function signedIn(session) {
  ui.session = session;
  $("who").textContent = session.display_name;
  return roomsScreen();
}

async function roomsScreen() {
  show("rooms");
  $("rooms-error").textContent = "";
  $("rooms-notice").hidden = true;
  const list = $("rooms-list");
  list.replaceChildren();
  let rooms = [];
  try {
    rooms = await api.liveRooms();
  } catch (e) {
    $("rooms-error").textContent = oneLine(e);
    return;
  }
  if (rooms.length === 0) {
    $("rooms-error").textContent = "You are not in any live room yet.";
  }
  for (const lr of rooms) {
    const group = document.createElement("section");
    group.className = "card";
    const h = document.createElement("h3");
    h.textContent = lr.channel_name ? `${lr.name} · ${lr.channel_name}` : lr.name;
    group.append(h);
    for (const b of lr.breakout_rooms) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "rooms__enter";
      button.textContent = b.name;
      button.dataset.liveRoom = lr.id;
      button.dataset.breakoutRoom = b.id;
      button.addEventListener("click", () => enterRoom(lr.id, b.id));
      group.append(button);
    }
    list.append(group);
  }
  list.querySelector("button")?.focus();
}

async function enterRoom(liveRoomId, breakoutRoomId) {
  try {
    const room = await api.enterBreakoutRoom({ live_room_id: liveRoomId, breakout_room_id: breakoutRoomId });
    roomScreen(room);
  } catch (e) {
    $("rooms-error").textContent = oneLine(e);
  }
}

function roomScreen(room) {
  ui.room = room;
  // Notices belong to the visit they were shown in.
  $("notices").replaceChildren();
  show("room");
  renderRoom();
  resizeWhiteboard();
  refreshRecordings();
  $("more-options").focus();
}

function renderRoom() {
  const room = ui.room;
  if (!room) return;
  $("room-name").textContent = `${room.live_room_name} › ${room.breakout_room_name}`;
  const role = $("room-role");
  role.textContent = room.role === "moderator" ? "Moderator" : "Participant";
  role.hidden = false;
  renderMenu();
}

// ---- the 3 Dots menu -----------------------------------------------------------------------

function menuItems() {
  return /** @type {HTMLElement[]} */ ([...$("menu").querySelectorAll("button")]).filter((b) => !b.hidden);
}

function renderMenu() {
  const room = ui.room;
  const busy = ui.recording !== "idle";
  // No Record item at all for those who may not record: the core refuses them anyway.
  $("menu-record").hidden = !room?.may_record || busy;
  $("menu-stop").hidden = ui.recording !== "recording";
  const perm = $("menu-permission");
  perm.hidden = room?.role !== "moderator" || room.offline;
  perm.setAttribute("aria-checked", String(Boolean(room?.participants_may_record)));
}

function openMenu() {
  if (!$("dialog").hidden) return;
  renderMenu();
  const menu = $("menu");
  if (menuItems().length === 0) {
    notice("Nothing to do here: recording is not enabled for participants in this room.");
    return;
  }
  menu.hidden = false;
  $("more-options").setAttribute("aria-expanded", "true");
  menuItems()[0].focus();
}

function closeMenu(refocus = true) {
  $("menu").hidden = true;
  $("more-options").setAttribute("aria-expanded", "false");
  if (refocus) $("more-options").focus();
}

$("more-options").addEventListener("click", () => ($("menu").hidden ? openMenu() : closeMenu()));
$("more-options").addEventListener("keydown", (e) => {
  if (e.key === "ArrowUp" || e.key === "ArrowDown") {
    e.preventDefault();
    openMenu();
  }
});
$("menu").addEventListener("keydown", (e) => {
  const items = menuItems();
  const i = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
  const move = { ArrowDown: 1, ArrowUp: -1 }[e.key];
  if (move) {
    e.preventDefault();
    items[(i + move + items.length) % items.length].focus();
  } else if (e.key === "Home" || e.key === "End") {
    e.preventDefault();
    items[e.key === "Home" ? 0 : items.length - 1].focus();
  } else if (e.key === "Escape" || e.key === "Tab") {
    e.preventDefault();
    closeMenu();
  }
});
document.addEventListener("pointerdown", (e) => {
  const t = /** @type {Node} */ (e.target);
  if (!$("menu").hidden && !$("menu").contains(t) && !$("more-options").contains(t)) closeMenu(false);
});

$("menu-record").addEventListener("click", () => {
  closeMenu(false);
  askToStart();
});
$("menu-stop").addEventListener("click", () => {
  closeMenu();
  stopRecording();
});
$("menu-permission").addEventListener("click", async () => {
  const want = $("menu-permission").getAttribute("aria-checked") !== "true";
  closeMenu();
  try {
    ui.room = await api.setParticipantsMayRecord({ participants_may_record: want });
    renderRoom();
    notice(want ? "Participants may now record this live room." : "Participants may no longer record.");
  } catch (e) {
    notice(oneLine(e), "error");
  }
});

// ---- dialogs and notices (in the side column, never over the stage) --------------------------

/**
 * Shows the dialog; resolves with true (primary) or false (secondary, Escape).
 * @param {string} text @param {string} primary @param {string | null} secondary
 */
function dialog(text, primary, secondary = "Cancel") {
  const d = $("dialog");
  $("dialog-text").textContent = text;
  const p = $("dialog-primary");
  const s = $("dialog-secondary");
  p.textContent = primary;
  s.textContent = secondary ?? "";
  s.hidden = secondary === null;
  d.hidden = false;
  p.focus();
  return new Promise((resolve) => {
    const done = (answer) => {
      d.hidden = true;
      p.onclick = s.onclick = d.onkeydown = null;
      resolve(answer);
    };
    p.onclick = () => done(true);
    s.onclick = () => done(false);
    d.onkeydown = (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        done(secondary === null);
      } else if (e.key === "Tab") {
        // Keep focus inside the dialog while it is open.
        const buttons = [p, s].filter((b) => !b.hidden);
        const i = buttons.indexOf(/** @type {HTMLElement} */ (document.activeElement));
        e.preventDefault();
        buttons[(i + (e.shiftKey ? -1 : 1) + buttons.length) % buttons.length].focus();
      }
    };
  });
}

/** A message in the side column; errors stay until dismissed, others fade after a while. */
function notice(text, kind = "info", id = undefined) {
  const box = document.createElement("p");
  box.className = `notice notice--${kind}`;
  box.textContent = text;
  if (id) {
    document.getElementById(id)?.remove();
    box.id = id;
  }
  if (kind === "error") box.setAttribute("role", "alert");
  $("notices").prepend(box);
  if (kind !== "error" && kind !== "sticky") setTimeout(() => box.remove(), 12000);
  return box;
}

// ---- recording ------------------------------------------------------------------------------

async function askToStart() {
  if (ui.recording !== "idle") return;
  const yes = await dialog(TEXT.askStart, TEXT.startButton, "Cancel");
  if (!yes) {
    $("more-options").focus();
    return;
  }
  ui.recording = "starting";
  renderMenu();
  const starting = notice(TEXT.starting, "sticky", "notice-starting");
  const r = $("stage").getBoundingClientRect();
  try {
    const started = await api.startRecording({
      stage: { x: r.x, y: r.y, width: r.width, height: r.height },
    });
    for (const w of started.warnings) notice(w, "warning");
  } catch (e) {
    starting.remove();
    ui.recording = "idle";
    renderMenu();
    notice(oneLine(e), "error");
    $("more-options").focus();
  }
}

function firstFrame() {
  if (ui.recording !== "starting") return;
  ui.recording = "recording";
  ui.startedAt = performance.now();
  document.getElementById("notice-starting")?.remove();
  showIndicator();
  renderMenu();
  dialog(TEXT.recorded, TEXT.confirm, null).then(() => $("more-options").focus());
}

function showIndicator() {
  const moderator = ui.room?.role === "moderator";
  const ind = $("indicator");
  // Participants see the red circle and REC only.
  $("indicator-time").hidden = !moderator;
  $("indicator-stop").hidden = !moderator;
  ind.classList.toggle("indicator--moderator", moderator);
  ind.hidden = false;
  tick();
  clearTimeout(ui.timer);
  scheduleTick();
}

/** Redraws the timer once a second, just after each whole second: no repaint in between. */
function scheduleTick() {
  const ms = performance.now() - ui.startedAt;
  ui.timer = setTimeout(() => {
    tick();
    scheduleTick();
  }, 1000 - (ms % 1000) + 5);
}

function tick() {
  const s = Math.max(0, Math.floor((performance.now() - ui.startedAt) / 1000));
  const two = (n) => String(n).padStart(2, "0");
  const text = `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
  const el = $("indicator-time");
  if (el.textContent !== text) el.textContent = text;
}

function hideIndicator() {
  clearTimeout(ui.timer);
  $("indicator").hidden = true;
}

async function stopRecording() {
  if (ui.recording !== "recording" && ui.recording !== "starting") return;
  ui.recording = "stopping";
  renderMenu();
  try {
    await api.stopRecording();
  } catch (e) {
    notice(oneLine(e), "error");
  }
}

$("indicator-stop").addEventListener("click", stopRecording);

/** The core says the recording ended (whoever stopped it): show where the file is. */
function stopped(saved) {
  ui.recording = "idle";
  hideIndicator();
  document.getElementById("notice-starting")?.remove();
  const d = $("dialog");
  if (!d.hidden && $("dialog-text").textContent === TEXT.recorded) $("dialog-primary").click();
  renderMenu();
  notice(saved.message, saved.cause === "stopped" ? "sticky" : "error", "notice-saved");
  refreshRecordings();
  if (document.activeElement === document.body) $("more-options").focus();
}

api.onRecording((ev) => {
  if (ev.kind === "first_frame") firstFrame();
  else if (ev.kind === "stopped") stopped(ev.saved);
  else if (ev.kind === "warning") notice(ev.message, "warning");
});

api.onRoom((room) => {
  const wasAllowed = ui.room?.may_record;
  ui.room = room;
  renderRoom();
  if (room.role === "participant" && wasAllowed !== room.may_record) {
    notice(
      room.may_record
        ? "A moderator let participants record: Record is in the 3 Dots menu."
        : "A moderator turned off recording for participants.",
    );
  }
});

// ---- leaving and closing -----------------------------------------------------------------------

$("leave-button").addEventListener("click", async () => {
  let saved = null;
  try {
    saved = await api.leaveRoom();
  } catch (e) {
    notice(oneLine(e), "error");
    return;
  }
  ui.room = null;
  ui.recording = "idle";
  hideIndicator();
  await roomsScreen();
  // Leaving stopped a recording: say where it went, on the screen the user now sees.
  if (saved) {
    const n = $("rooms-notice");
    n.textContent = saved.message;
    n.hidden = false;
  }
});

$("sign-out-button").addEventListener("click", async () => {
  await api.signOut().catch(() => {});
  ui.session = null;
  startScreen();
});

api.onCloseRequested(async () => {
  const yes = await dialog(TEXT.askClose, TEXT.closeButton, TEXT.keepButton);
  if (yes) await api.quit();
});

// ---- the recordings panel -------------------------------------------------------------------------

function human(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  let n = bytes;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** One line for a recording's way to the library. */
export function uploadText(u) {
  switch (u.kind) {
    case "local_only":
      return "On this computer only";
    case "waiting":
      return u.message ? `Waiting to upload: ${u.message}` : "Waiting to upload";
    case "uploading": {
      const pct = u.total > 0 ? Math.floor((100 * u.sent) / u.total) : 0;
      const eta = u.eta_secs != null ? `, ${Math.ceil(u.eta_secs)} s left` : "";
      return `Uploading ${pct}% (${human(u.sent)} of ${human(u.total)}${eta})`;
    }
    case "done":
      return "Uploaded to the library";
    case "sign_in_again":
      return `Sign in again to upload: ${u.message}`;
    case "failed":
      return `Upload failed: ${u.reason}`;
    default:
      return "";
  }
}

function renderRecordings(list) {
  const ul = $("recordings-list");
  ul.replaceChildren();
  $("recordings-empty").hidden = list.length > 0;
  for (const r of list) {
    const li = document.createElement("li");
    li.className = `recording recording--${r.upload.kind}`;
    li.dataset.id = r.id;
    const title = document.createElement("p");
    title.className = "recording__title";
    title.textContent = r.title;
    const meta = document.createElement("p");
    meta.className = "recording__meta";
    meta.textContent = `${Math.round(r.duration_secs)} s · ${human(r.bytes)}${r.destination ? ` · ${r.destination}` : ""}`;
    const state = document.createElement("p");
    state.className = "recording__upload";
    state.textContent = uploadText(r.upload);
    li.append(title, meta, state);
    if (r.upload.kind === "uploading") {
      const bar = document.createElement("progress");
      bar.max = r.upload.total || 1;
      bar.value = r.upload.sent;
      bar.setAttribute("aria-label", `Upload of ${r.title}`);
      li.append(bar);
    }
    const actions = document.createElement("div");
    actions.className = "recording__actions";
    const add = (label, aria, f) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.setAttribute("aria-label", `${aria} ${r.title}`);
      b.addEventListener("click", async () => {
        try {
          const next = await f();
          if (Array.isArray(next)) renderRecordings(next);
        } catch (e) {
          notice(oneLine(e), "error");
        }
      });
      actions.append(b);
    };
    if (r.upload.kind === "failed" || r.upload.kind === "sign_in_again") {
      add("Retry", "Retry the upload of", () => api.retryUpload({ id: r.id }));
    }
    if (r.upload.kind === "local_only" && ui.room && !ui.room.offline) {
      add("Upload here", "Upload to this breakout room:", () => api.uploadToCurrentRoom({ id: r.id }));
    }
    add("Open folder", "Open the folder of", () => api.openFolder({ id: r.id }));
    li.append(actions);
    ul.append(li);
  }
}

async function refreshRecordings() {
  try {
    renderRecordings(await api.recordings());
  } catch (e) {
    notice(oneLine(e), "error");
  }
}

api.onRecordings(renderRecordings);

// ---- the stage: a whiteboard and a clock -----------------------------------------------------------

const board = /** @type {HTMLCanvasElement} */ ($("whiteboard"));
const pen = board.getContext("2d");

function resizeWhiteboard() {
  const r = board.getBoundingClientRect();
  if (r.width === 0) return;
  const keep = board.width > 0 && board.height > 0 ? pen?.getImageData(0, 0, board.width, board.height) : null;
  board.width = Math.round(r.width * devicePixelRatio);
  board.height = Math.round(r.height * devicePixelRatio);
  if (keep) pen?.putImageData(keep, 0, 0);
}
window.addEventListener("resize", resizeWhiteboard);

let drawing = false;
board.addEventListener("pointerdown", (e) => {
  drawing = true;
  board.setPointerCapture(e.pointerId);
  pen?.beginPath();
  pen?.moveTo(e.offsetX * devicePixelRatio, e.offsetY * devicePixelRatio);
});
board.addEventListener("pointermove", (e) => {
  if (!drawing || !pen) return;
  pen.lineWidth = 6 * devicePixelRatio;
  pen.lineCap = "round";
  pen.strokeStyle = "#1565c0";
  pen.lineTo(e.offsetX * devicePixelRatio, e.offsetY * devicePixelRatio);
  pen.stroke();
});
board.addEventListener("pointerup", () => (drawing = false));
board.addEventListener("pointercancel", () => (drawing = false));

setInterval(() => {
  $("stage-clock").textContent = new Date().toLocaleTimeString();
}, 1000);

// ---- start ---------------------------------------------------------------------------------------

async function submit(form, errorBox, f) {
  const data = Object.fromEntries(new FormData(form).entries());
  const button = form.querySelector("button[type=submit]");
  errorBox.textContent = "";
  button.disabled = true;
  try {
    await signedIn(await f(data));
  } catch (e) {
    errorBox.textContent = oneLine(e);
  } finally {
    button.disabled = false;
  }
}

$("sign-in-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submit(e.target, $("start-error"), (d) => api.signIn({ server: d.server, username: d.username, password: d.password }));
});
$("guest-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submit(e.target, $("start-error"), (d) =>
    api.joinAsGuest({ server: d.server, invite_code: d.invite_code, display_name: d.display_name }),
  );
});
$("offline-button").addEventListener("click", async () => {
  try {
    await signedIn(await api.recordOffline());
  } catch (e) {
    $("start-error").textContent = oneLine(e);
  }
});

// Escape closes the menu and returns to the 3 Dots button from anywhere in the room.
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && document.body.dataset.screen === "room" && $("dialog").hidden) closeMenu();
});

try {
  ui.info = await api.appInfo();
} catch (e) {
  $("start-error").textContent = oneLine(e);
}
startScreen();
