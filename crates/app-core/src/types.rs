//! The values that cross between the UI and Rust: command arguments, command results and event
//! payloads. `ui/bindings.js` is generated from these (see [`crate::bindings`]), so a change
//! here that the UI does not follow fails the bindings test instead of failing at runtime.
//!
//! Names are snake_case on the wire, as in the classroom API.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An error for a person: one line, plus a machine-readable kind the UI can branch on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UiError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input was wrong (empty field, bad address, wrong password).
    BadInput,
    /// The classroom server cannot be reached.
    Offline,
    /// The server or the core refused: not allowed for this role or permission.
    NotAllowed,
    /// Sign in again.
    SignIn,
    /// Recording could not start or ended badly.
    Recording,
    /// Anything else.
    Other,
}

/// What the start screen shows before anyone signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppInfo {
    pub version: String,
    /// The classroom server this app runs for the one-command setup, if it runs one.
    pub embedded_server: Option<String>,
    /// How to sign in to the embedded demo classroom.
    pub demo: Option<DemoAccounts>,
    /// Where recordings are saved.
    pub recordings_dir: String,
    /// The last server signed in to, to prefill the form.
    pub last_server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DemoAccounts {
    pub moderator: Credentials,
    pub participant: Credentials,
    pub guest_invite_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignInArgs {
    /// The classroom server's address, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GuestArgs {
    pub server: String,
    pub invite_code: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Account,
    Guest,
    /// No server: recordings stay on this computer until one is set.
    Offline,
}

/// Who is using the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    pub kind: SessionKind,
    pub display_name: String,
    pub server: Option<String>,
}

/// A live room the user may enter, with its breakout rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LiveRoomView {
    pub id: String,
    pub name: String,
    pub channel_name: String,
    pub role: RoomRole,
    pub breakout_rooms: Vec<BreakoutRoomView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BreakoutRoomView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomRole {
    Moderator,
    Participant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnterArgs {
    pub live_room_id: String,
    pub breakout_room_id: String,
}

/// The breakout room the user is in: what the top bar and the 3 Dots menu need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RoomView {
    pub live_room_id: String,
    pub live_room_name: String,
    pub breakout_room_id: String,
    pub breakout_room_name: String,
    pub role: RoomRole,
    pub participants_may_record: bool,
    /// Whether this user may record now (moderators always; participants when permitted).
    pub may_record: bool,
    pub offline: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PermissionArgs {
    pub participants_may_record: bool,
}

/// A rectangle of the page in CSS pixels, as `getBoundingClientRect()` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CssRect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartArgs {
    /// The stage element's rectangle in the page.
    pub stage: CssRect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordingStarted {
    pub path: String,
    /// The captured rectangle on the screen, in physical pixels: `WxH+X+Y`.
    pub region: String,
    /// Things the user should know (no microphone, ...): the recording works anyway.
    pub warnings: Vec<String>,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// The user stopped it (stop square, 3 Dots, leaving, closing).
    Stopped,
    /// A moderator turned the participants' permission off.
    PermissionWithdrawn,
    /// The disk is (nearly) full.
    DiskFull,
    /// Capture or encoding failed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecordingSaved {
    /// The local recording's id (see [`LocalRecording`]).
    pub id: String,
    pub path: String,
    pub duration_secs: f64,
    pub bytes: u64,
    pub frames: u64,
    pub dropped_frames: u64,
    pub cause: StopCause,
    /// One line for the user about the stop (why it stopped, what happens next).
    pub message: String,
}

/// Sent while recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordingEvent {
    /// The first frame was captured: "This session is being recorded."
    FirstFrame {
        after_ms: u64,
    },
    /// Twice a second while recording.
    Status {
        elapsed_ms: u64,
        frames: u64,
        dropped: u64,
        bytes: u64,
    },
    Warning {
        message: String,
    },
    /// The recording ended and the file is saved (whoever stopped it).
    Stopped {
        saved: RecordingSaved,
    },
}

/// Where a local recording stands on its way to the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UploadView {
    /// Recorded offline: it waits until the user picks a classroom for it.
    LocalOnly,
    /// Queued; waiting for its turn or for the server to answer.
    Waiting {
        message: Option<String>,
    },
    Uploading {
        sent: u64,
        total: u64,
        /// Bytes per second.
        rate: f64,
        eta_secs: Option<f64>,
    },
    Done {
        media_id: Option<String>,
    },
    SignInAgain {
        message: String,
    },
    Failed {
        reason: String,
    },
}

/// A recording on this computer, for the recordings panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocalRecording {
    pub id: String,
    pub title: String,
    pub path: String,
    pub started_at: String,
    pub duration_secs: f64,
    pub bytes: u64,
    /// "Live room › Breakout room", or empty when recorded offline.
    pub destination: String,
    pub upload: UploadView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordingArgs {
    /// A [`LocalRecording`]'s id.
    pub id: String,
}

/// Sent when the window is asked to close while recording: the UI asks the user first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CloseRequested {
    pub recording: bool,
}
