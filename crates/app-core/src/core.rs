//! [`AppCore`]: the state behind the app's screens and the rules of the recording flow.
//!
//! Rules kept here rather than in the page, so no click can get around them:
//! - moderators may always record; participants only while the live room's permission is on
//!   (asked of the server at start when it answers, else the last known state);
//! - a participant's recording stops, and is saved, when the permission is withdrawn;
//! - leaving the room, signing out or quitting stops and saves a recording first;
//! - a saved recording is queued for its live room and breakout room at once (offline ones
//!   wait for the user to pick a classroom), and the local file is never deleted.
//!
//! Locks: `state` and `active` are std mutexes held for a few statements, never across an
//! `.await` or a blocking call, so commands, the permission watcher and the status pump never
//! wait on each other for long.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use capture::audio::AudioSpec;
use classroom_api::{LiveRoom, Role};
use recorder::{Recording, RecordingConfig, StopReason};
use upload::{Auth, Destination, EnqueueOptions, QueueFile, Runner, RunnerHandle};

use crate::client::{ApiClient, ApiError};
use crate::embedded::Embedded;
use crate::geometry::{StageInWindow, WindowPlacement};
use crate::library::{Entry, Library};
use crate::types::*;

/// Where the app keeps things, and whether it runs the built-in classroom.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Queue, recordings list, built-in classroom.
    pub data_dir: PathBuf,
    /// Where recordings are saved.
    pub recordings_dir: PathBuf,
    /// Run the built-in classroom server with the demo classroom.
    pub embedded_server: bool,
    /// X display to record (`None`: `$DISPLAY`).
    pub display: Option<String>,
    /// How often the room's permission is asked of the server.
    pub room_poll: Duration,
    /// Stop when free disk space falls below this many MiB.
    pub min_free_mib: u64,
}

impl CoreConfig {
    /// The per-user defaults (`directories`), with `BREAKOUT_RECORDER_DATA_DIR`,
    /// `BREAKOUT_RECORDER_RECORDINGS_DIR` and `BREAKOUT_RECORDER_EMBEDDED=0` to override.
    pub fn from_env() -> CoreConfig {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let data_dir = var("BREAKOUT_RECORDER_DATA_DIR").unwrap_or_else(|| {
            directories::ProjectDirs::from("app", "breakoutrecorder", "Breakout Recorder")
                .map_or_else(
                    || PathBuf::from(".breakout-recorder"),
                    |d| d.data_dir().to_path_buf(),
                )
        });
        CoreConfig {
            recordings_dir: var("BREAKOUT_RECORDER_RECORDINGS_DIR")
                .unwrap_or_else(recorder::naming::default_dir),
            embedded_server: std::env::var("BREAKOUT_RECORDER_EMBEDDED").map_or(true, |v| v != "0"),
            display: None,
            room_poll: Duration::from_secs(2),
            min_free_mib: 256,
            data_dir,
        }
    }
}

/// Something the page should hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Recording(RecordingEvent),
    Room(RoomView),
    Recordings(Vec<LocalRecording>),
    CloseRequested(CloseRequested),
}

impl Event {
    /// The event's name for the page (`bindings::EVENTS`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Recording(_) => "recording",
            Event::Room(_) => "room",
            Event::Recordings(_) => "recordings",
            Event::CloseRequested(_) => "close-requested",
        }
    }

    pub fn payload(&self) -> serde_json::Value {
        let v = match self {
            Event::Recording(e) => serde_json::to_value(e),
            Event::Room(e) => serde_json::to_value(e),
            Event::Recordings(e) => serde_json::to_value(e),
            Event::CloseRequested(e) => serde_json::to_value(e),
        };
        v.unwrap_or(serde_json::Value::Null)
    }
}

/// Delivers [`Event`]s (the shell emits them to the window; tests collect them).
pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: Event);
}

enum Session {
    Account { api: ApiClient, name: String },
    Guest { api: ApiClient, name: String },
    Offline,
}

impl Session {
    fn api(&self) -> Option<&ApiClient> {
        match self {
            Session::Account { api, .. } | Session::Guest { api, .. } => Some(api),
            Session::Offline => None,
        }
    }

    fn info(&self) -> SessionInfo {
        match self {
            Session::Account { api, name } => SessionInfo {
                kind: SessionKind::Account,
                display_name: name.clone(),
                server: Some(api.base().to_owned()),
            },
            Session::Guest { api, name } => SessionInfo {
                kind: SessionKind::Guest,
                display_name: name.clone(),
                server: Some(api.base().to_owned()),
            },
            Session::Offline => SessionInfo {
                kind: SessionKind::Offline,
                display_name: "Offline".into(),
                server: None,
            },
        }
    }
}

/// The breakout room the user is in.
#[derive(Clone)]
struct Room {
    view: RoomView,
    /// Stops this room's permission watcher.
    watcher: Arc<AtomicBool>,
}

struct Active {
    recording: Recording,
    entry: Entry,
    /// Where the upload goes (`None` offline).
    destination: Option<(Destination, Auth)>,
    role: RoomRole,
    stage: StageInWindow,
    pump_stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct UiState {
    session: Option<Session>,
    room: Option<Room>,
    window: Option<WindowPlacement>,
    /// Guests see exactly the room they joined.
    guest_room: Option<LiveRoom>,
}

/// The app's core. Create it with [`AppCore::start`] inside a tokio runtime.
pub struct AppCore {
    config: CoreConfig,
    me: Weak<AppCore>,
    sink: Arc<dyn EventSink>,
    state: Mutex<UiState>,
    active: Mutex<Option<Active>>,
    library: Library,
    queue: QueueFile,
    runner: RunnerHandle,
    embedded: tokio::sync::Mutex<Option<Embedded>>,
    info: AppInfo,
}

impl std::fmt::Debug for AppCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCore")
            .field("data_dir", &self.config.data_dir)
            .finish()
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> UiError {
    UiError {
        kind,
        message: message.into(),
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        let kind = match e {
            ApiError::BadAddress(_) | ApiError::Rejected(_) => ErrorKind::BadInput,
            ApiError::Unreachable { .. } => ErrorKind::Offline,
            ApiError::SignIn(_) => ErrorKind::SignIn,
            ApiError::Refused(_) => ErrorKind::NotAllowed,
            ApiError::Server(_) => ErrorKind::Other,
        };
        err(kind, e.to_string())
    }
}

fn other(e: impl std::fmt::Display) -> UiError {
    err(ErrorKind::Other, e.to_string())
}

fn role_of(r: Role) -> RoomRole {
    match r {
        Role::Moderator => RoomRole::Moderator,
        Role::Participant => RoomRole::Participant,
    }
}

fn room_view(lr: &LiveRoom, breakout_id: &str) -> Option<RoomView> {
    let b = lr.breakout_rooms.iter().find(|b| b.id == breakout_id)?;
    Some(RoomView {
        live_room_id: lr.id.clone(),
        live_room_name: lr.name.clone(),
        breakout_room_id: b.id.clone(),
        breakout_room_name: b.name.clone(),
        role: role_of(lr.my_role),
        participants_may_record: lr.participants_may_record,
        may_record: lr.my_role == Role::Moderator || lr.i_may_record,
        offline: false,
    })
}

fn live_room_view(lr: &LiveRoom) -> LiveRoomView {
    LiveRoomView {
        id: lr.id.clone(),
        name: lr.name.clone(),
        channel_name: lr.channel_name.clone(),
        role: role_of(lr.my_role),
        breakout_rooms: lr
            .breakout_rooms
            .iter()
            .map(|b| BreakoutRoomView {
                id: b.id.clone(),
                name: b.name.clone(),
            })
            .collect(),
    }
}

/// Blocking work off the async runtime's threads; a panic there is an error, not a crash.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| other(format!("internal error: {e}")))?
}

impl AppCore {
    /// Opens the data directory, starts the upload runner and (if configured) the built-in
    /// classroom server.
    pub async fn start(
        config: CoreConfig,
        sink: Arc<dyn EventSink>,
    ) -> Result<Arc<AppCore>, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
        let queue = QueueFile::new(config.data_dir.join("upload-queue.json"));
        let library = Library::new(config.data_dir.join("recordings.json"));
        let embedded = if config.embedded_server {
            let dir = Embedded::data_dir(&config.data_dir);
            Some(
                Embedded::start(&dir, &queue)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        let runner = Runner::new(queue.clone(), upload::RunnerConfig::default());
        let handle = runner.handle();
        let info = AppInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            embedded_server: embedded.as_ref().map(Embedded::base_url),
            demo: embedded.as_ref().map(Embedded::demo),
            recordings_dir: config.recordings_dir.display().to_string(),
            last_server: std::fs::read_to_string(config.data_dir.join("last-server"))
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        };
        let core = Arc::new_cyclic(|me| AppCore {
            config,
            me: me.clone(),
            sink,
            state: Mutex::new(UiState::default()),
            active: Mutex::new(None),
            library,
            queue,
            runner: handle,
            embedded: tokio::sync::Mutex::new(embedded),
            info,
        });
        tokio::spawn(async move {
            // A run ends only on an error: another process (a `recorder upload`) holds the
            // queue, or the queue file failed. Either may pass, and uploads must not stay
            // stopped for the rest of the session, so try again.
            loop {
                match runner.run(upload::RunMode::Forever).await {
                    Ok(_) => break, // stopped: the app is closing
                    Err(e @ upload::QueueError::RunnerElsewhere { .. }) => {
                        tracing::info!("{e}; the app uploads when it is done");
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    }
                    Err(e) => {
                        tracing::error!("uploads paused: {e}");
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    }
                }
            }
        });
        core.spawn_progress_pump();
        Ok(core)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, UiState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn active(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn app_info(&self) -> AppInfo {
        self.info.clone()
    }

    pub fn is_recording(&self) -> bool {
        self.active().is_some()
    }

    fn remember_server(&self, server: &str) {
        let _ = std::fs::write(self.config.data_dir.join("last-server"), server);
    }

    // ---- signing in -------------------------------------------------------------------

    pub async fn sign_in(&self, args: SignInArgs) -> Result<SessionInfo, UiError> {
        if args.username.trim().is_empty() || args.password.is_empty() {
            return Err(err(
                ErrorKind::BadInput,
                "enter your user name and password",
            ));
        }
        let api = ApiClient::new(&args.server, None)?;
        let s = api.sign_in(args.username.trim(), &args.password).await?;
        let api = api.with_token(s.token.clone());
        self.new_credentials(&api, &s.token);
        self.remember_server(api.base());
        let session = Session::Account {
            api,
            name: s.user.display_name,
        };
        let info = session.info();
        self.replace_session(session, None).await;
        Ok(info)
    }

    pub async fn join_as_guest(&self, args: GuestArgs) -> Result<SessionInfo, UiError> {
        if args.invite_code.trim().is_empty() || args.display_name.trim().is_empty() {
            return Err(err(
                ErrorKind::BadInput,
                "enter the invite code and the name others will see",
            ));
        }
        let api = ApiClient::new(&args.server, None)?;
        let j = api
            .join_as_guest(args.invite_code.trim(), args.display_name.trim())
            .await?;
        let api = api.with_token(j.session.token.clone());
        self.new_credentials(&api, &j.session.token);
        self.remember_server(api.base());
        let session = Session::Guest {
            api,
            name: j.session.user.display_name,
        };
        let info = session.info();
        self.replace_session(session, Some(j.live_room)).await;
        Ok(info)
    }

    pub async fn record_offline(&self) -> Result<SessionInfo, UiError> {
        let session = Session::Offline;
        let info = session.info();
        self.replace_session(session, None).await;
        Ok(info)
    }

    pub async fn sign_out(&self) -> Result<(), UiError> {
        self.leave_room().await?;
        let mut st = self.state();
        st.session = None;
        st.guest_room = None;
        Ok(())
    }

    /// Uploads waiting for this server (or for a sign-in) go with the new token.
    fn new_credentials(&self, api: &ApiClient, token: &str) {
        match upload::set_auth_for_server(&self.queue, api.base(), Auth::bearer(token)) {
            Ok(n) if n > 0 => self.runner.wake(),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot hand the new sign-in to queued uploads: {e}"),
        }
    }

    async fn replace_session(&self, session: Session, guest_room: Option<LiveRoom>) {
        // A recording in progress belongs to the old session's room: stop and save it first.
        if let Err(e) = self.leave_room().await {
            tracing::warn!("leaving the previous room: {}", e.message);
        }
        let mut st = self.state();
        st.session = Some(session);
        st.guest_room = guest_room;
    }

    fn api(&self) -> Result<Option<ApiClient>, UiError> {
        let st = self.state();
        match &st.session {
            None => Err(err(ErrorKind::SignIn, "sign in first")),
            Some(s) => Ok(s.api().cloned()),
        }
    }

    // ---- rooms --------------------------------------------------------------------------

    /// The live rooms this user may enter, with their breakout rooms.
    pub async fn live_rooms(&self) -> Result<Vec<LiveRoomView>, UiError> {
        let guest_room = self.state().guest_room.clone();
        let Some(api) = self.api()? else {
            return Ok(vec![offline_live_room()]);
        };
        if let Some(lr) = guest_room {
            let fresh = api.live_room(&lr.id).await.unwrap_or(lr);
            return Ok(vec![live_room_view(&fresh)]);
        }
        let me = api.me().await?;
        let mut rooms = Vec::new();
        for s in me.live_rooms {
            rooms.push(live_room_view(&api.live_room(&s.id).await?));
        }
        Ok(rooms)
    }

    pub async fn enter_breakout_room(&self, args: EnterArgs) -> Result<RoomView, UiError> {
        self.leave_room().await?;
        let view = match self.api()? {
            None => {
                let lr = offline_live_room();
                if args.live_room_id != lr.id || args.breakout_room_id != lr.breakout_rooms[0].id {
                    return Err(err(ErrorKind::BadInput, "no such room while offline"));
                }
                offline_room_view()
            }
            Some(api) => {
                let lr = api.live_room(&args.live_room_id).await?;
                room_view(&lr, &args.breakout_room_id).ok_or_else(|| {
                    err(
                        ErrorKind::BadInput,
                        "that breakout room is not in this live room",
                    )
                })?
            }
        };
        let watcher = Arc::new(AtomicBool::new(false));
        self.state().room = Some(Room {
            view: view.clone(),
            watcher: watcher.clone(),
        });
        if !view.offline {
            self.spawn_room_watcher(watcher);
        }
        Ok(view)
    }

    /// The room as the server sees it now (or as last known, when it does not answer).
    pub async fn refresh_room(&self) -> Result<RoomView, UiError> {
        let current = self
            .state()
            .room
            .as_ref()
            .map(|r| r.view.clone())
            .ok_or_else(|| err(ErrorKind::BadInput, "not in a breakout room"))?;
        let Some(api) = self.api()? else {
            return Ok(current);
        };
        match api.live_room(&current.live_room_id).await {
            Ok(lr) => Ok(self.apply_room(&lr).unwrap_or(current)),
            Err(ApiError::Unreachable { .. }) => Ok(current),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the server's view of the live room; tells the page when something changed, and
    /// stops a participant's recording when the permission was withdrawn.
    fn apply_room(&self, lr: &LiveRoom) -> Option<RoomView> {
        let (view, changed) = {
            let mut st = self.state();
            let room = st.room.as_mut()?;
            if room.view.live_room_id != lr.id {
                return None;
            }
            let view = room_view(lr, &room.view.breakout_room_id)?;
            let changed = view != room.view;
            room.view = view.clone();
            (view, changed)
        };
        if changed {
            self.sink.emit(Event::Room(view.clone()));
        }
        let withdrawn = {
            let a = self.active();
            a.as_ref()
                .is_some_and(|a| a.role == RoomRole::Participant && !view.may_record)
        };
        if withdrawn && let Some(me) = self.me.upgrade() {
            std::thread::spawn(move || {
                let _ = me.finish_recording(StopCause::PermissionWithdrawn);
            });
        }
        Some(view)
    }

    fn spawn_room_watcher(&self, stop: Arc<AtomicBool>) {
        let me = self.me.clone();
        let every = self.config.room_poll;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(core) = me.upgrade() else { return };
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let _ = core.refresh_room().await;
            }
        });
    }

    pub async fn set_participants_may_record(
        &self,
        args: PermissionArgs,
    ) -> Result<RoomView, UiError> {
        let room = self
            .state()
            .room
            .as_ref()
            .map(|r| r.view.clone())
            .ok_or_else(|| err(ErrorKind::BadInput, "not in a breakout room"))?;
        if room.role != RoomRole::Moderator {
            return Err(err(
                ErrorKind::NotAllowed,
                "only the live room's moderators change who may record",
            ));
        }
        let Some(api) = self.api()? else {
            return Err(err(
                ErrorKind::Offline,
                "offline: there are no participants",
            ));
        };
        let lr = api
            .set_permission(&room.live_room_id, args.participants_may_record)
            .await?;
        self.apply_room(&lr)
            .ok_or_else(|| err(ErrorKind::Other, "the room changed meanwhile"))
    }

    /// Leaves the breakout room; a recording in progress is stopped and saved first.
    pub async fn leave_room(&self) -> Result<Option<RecordingSaved>, UiError> {
        let saved = if self.is_recording() {
            let me = self.me.upgrade();
            match me {
                Some(me) => Some(blocking(move || me.finish_recording(StopCause::Stopped)).await?),
                None => None,
            }
        } else {
            None
        };
        if let Some(room) = self.state().room.take() {
            room.watcher.store(true, Ordering::Release);
        }
        Ok(saved)
    }

    // ---- recording ------------------------------------------------------------------------

    /// Where the window's content is on the screen; the shell tells at start and on every move.
    pub fn window_moved(&self, placement: WindowPlacement) {
        self.state().window = Some(placement);
        if let Some(a) = self.active().as_ref() {
            let r = a.stage.on_screen(placement);
            a.recording.move_stage(r.x, r.y);
        }
    }

    /// Starts recording the stage. Checks the role and permission (with the server when it
    /// answers), then returns as soon as capture runs; [`RecordingEvent::FirstFrame`] follows.
    pub async fn start_recording(
        &self,
        args: StartArgs,
        window: WindowPlacement,
    ) -> Result<RecordingStarted, UiError> {
        if self.is_recording() {
            return Err(err(ErrorKind::Recording, "already recording"));
        }
        let view = self.refresh_room().await?;
        if !view.may_record {
            return Err(err(
                ErrorKind::NotAllowed,
                "recording is not enabled for participants in this room",
            ));
        }
        let stage = StageInWindow::from_css(args.stage, window.scale)
            .map_err(|e| err(ErrorKind::Recording, e.to_string()))?;
        self.state().window = Some(window);
        let region = stage.on_screen(window);
        let (session_name, destination) = {
            let st = self.state();
            let name = st
                .session
                .as_ref()
                .map(|s| s.info().display_name)
                .unwrap_or_default();
            let dest = st.session.as_ref().and_then(|s| match s {
                Session::Account { api, .. } | Session::Guest { api, .. } => Some(api.clone()),
                Session::Offline => None,
            });
            (name, dest)
        };
        let now = chrono::Local::now();
        let path = unique_path(
            &self.config.recordings_dir,
            &recorder::naming::file_name(&view.breakout_room_name, now),
        );
        std::fs::create_dir_all(&self.config.recordings_dir).map_err(|e| {
            err(
                ErrorKind::Recording,
                format!(
                    "cannot create {}: {e}",
                    self.config.recordings_dir.display()
                ),
            )
        })?;
        let title = format!(
            "{} · {} · {}",
            view.breakout_room_name,
            session_name,
            now.format("%Y-%m-%d %H:%M")
        );
        let started_at = now
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let entry = Entry {
            id: upload::queue::new_id(),
            path: path.clone(),
            title: title.clone(),
            started_at: started_at.clone(),
            duration_secs: 0.0,
            bytes: 0,
            destination: if view.offline {
                String::new()
            } else {
                format!("{} › {}", view.live_room_name, view.breakout_room_name)
            },
            queue_item: None,
        };
        let destination = destination.map(|api| {
            let token = api_token(&api);
            (
                Destination {
                    server: api.base().to_owned(),
                    endpoint: format!("{}/files/", api.base()),
                    live_room: view.live_room_id.clone(),
                    breakout_room: view.breakout_room_id.clone(),
                    title,
                    started_at,
                    duration_ms: 0,
                    filename: path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "recording.mp4".into()),
                },
                Auth::bearer(token),
            )
        });

        let mut cfg = RecordingConfig::new(path.clone());
        cfg.display = self.config.display.clone();
        cfg.region = Some(region);
        cfg.audio = AudioSpec {
            mic: true,
            room: true,
            ..AudioSpec::default()
        };
        cfg.disk = recorder::disk::DiskPolicy::with_reserve_mib(self.config.min_free_mib);
        let (recording, mut warnings) = blocking(move || start_with_fallback(cfg)).await?;
        warnings.extend(recording.warnings().iter().cloned());
        let started = RecordingStarted {
            path: path.display().to_string(),
            region: region.to_string(),
            warnings,
        };
        let pump_stop = Arc::new(AtomicBool::new(false));
        let events = recording.events().clone();
        *self.active() = Some(Active {
            recording,
            entry,
            destination,
            role: view.role,
            stage,
            pump_stop: pump_stop.clone(),
        });
        self.spawn_recording_pump(events, pump_stop);
        Ok(started)
    }

    /// Forwards the recording's events and a status twice a second; stops the recording when
    /// it stopped by itself (disk full, failure).
    fn spawn_recording_pump(
        &self,
        events: crossbeam_channel::Receiver<recorder::Event>,
        stop: Arc<AtomicBool>,
    ) {
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name("recording-events".into())
            .spawn(move || {
                let mut last_status = std::time::Instant::now();
                while !stop.load(Ordering::Acquire) {
                    let Some(core) = me.upgrade() else { return };
                    match events.recv_timeout(Duration::from_millis(100)) {
                        Ok(recorder::Event::FirstFrame) => {
                            let after = core
                                .active()
                                .as_ref()
                                .and_then(|a| a.recording.status().first_frame_after)
                                .unwrap_or_default();
                            core.sink.emit(Event::Recording(RecordingEvent::FirstFrame {
                                after_ms: after.as_millis() as u64,
                            }));
                        }
                        Ok(recorder::Event::Warning(message)) => {
                            core.sink
                                .emit(Event::Recording(RecordingEvent::Warning { message }));
                        }
                        Ok(recorder::Event::AutoStop(reason)) => {
                            let cause = match reason {
                                StopReason::DiskLow | StopReason::DiskFull => StopCause::DiskFull,
                                StopReason::Requested | StopReason::Duration => StopCause::Stopped,
                                _ => StopCause::Failed,
                            };
                            let _ = core.finish_recording(cause);
                            return;
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                    }
                    if last_status.elapsed() >= Duration::from_millis(500) {
                        last_status = std::time::Instant::now();
                        let status = core.active().as_ref().map(|a| a.recording.status());
                        if let Some(s) = status {
                            core.sink.emit(Event::Recording(RecordingEvent::Status {
                                elapsed_ms: s.elapsed.as_millis() as u64,
                                frames: s.frames,
                                dropped: s.dropped,
                                bytes: s.bytes,
                            }));
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the recording's event thread: {e}");
        }
    }

    pub async fn stop_recording(&self) -> Result<RecordingSaved, UiError> {
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| other("the app is shutting down"))?;
        blocking(move || me.finish_recording(StopCause::Stopped)).await
    }

    /// Stops the recording, waits for the file to be finished, lists it and queues its upload.
    /// Blocking. Whoever calls first does the work; a second caller gets "not recording".
    fn finish_recording(&self, cause: StopCause) -> Result<RecordingSaved, UiError> {
        let Some(active) = self.active().take() else {
            return Err(err(ErrorKind::Recording, "not recording"));
        };
        active.pump_stop.store(true, Ordering::Release);
        let Active {
            recording,
            mut entry,
            destination,
            ..
        } = active;
        let summary = recording
            .stop()
            .map_err(|e| err(ErrorKind::Recording, e.to_string()))?;
        entry.duration_secs = summary.duration_secs;
        entry.bytes = summary.bytes;
        let cause = match (cause, summary.reason) {
            (StopCause::Stopped, StopReason::DiskLow | StopReason::DiskFull) => StopCause::DiskFull,
            (StopCause::Stopped, StopReason::EncoderFailed | StopReason::CaptureFailed) => {
                StopCause::Failed
            }
            (c, _) => c,
        };
        let mut queued = None;
        // Withdrawn permission: the classroom refuses participants' uploads until a moderator
        // turns recording back on, so the file stays here, listed, ready for "Upload here".
        let destination = destination.filter(|_| cause != StopCause::PermissionWithdrawn);
        if summary.frames_encoded > 0 {
            if let Some((mut dest, auth)) = destination {
                dest.duration_ms = (summary.duration_secs * 1000.0).round() as u64;
                match upload::enqueue(
                    &self.queue,
                    &summary.path,
                    dest,
                    auth,
                    EnqueueOptions::default(),
                ) {
                    Ok(queued_item) => {
                        queued = Some(queued_item.item.id);
                        self.runner.wake();
                    }
                    Err(e) => tracing::error!("cannot queue {}: {e}", summary.path.display()),
                }
            }
            entry.queue_item = queued.clone();
            let e2 = entry.clone();
            if let Err(e) = self.library.update(move |l| l.insert(0, e2)) {
                tracing::error!("cannot list {}: {e}", entry.path.display());
            }
        }
        let where_to = if queued.is_some() {
            "It will be uploaded to the classroom's library."
        } else if summary.frames_encoded == 0 {
            "Nothing was captured."
        } else if cause == StopCause::PermissionWithdrawn {
            "It stays on this computer: the classroom takes participants' recordings only while recording is allowed. Once a moderator allows it again, choose Upload here in Recordings."
        } else {
            "It stays on this computer until you upload it to a classroom."
        };
        let why = match cause {
            StopCause::Stopped => "Recording stopped.".to_owned(),
            StopCause::PermissionWithdrawn => {
                "A moderator turned off recording for participants, so your recording stopped."
                    .to_owned()
            }
            StopCause::DiskFull => format!(
                "Recording stopped: the disk is almost full. {}",
                summary.error.clone().unwrap_or_default()
            ),
            StopCause::Failed => format!(
                "Recording stopped because of an error: {}",
                summary.error.clone().unwrap_or_default()
            ),
        };
        let saved = RecordingSaved {
            id: entry.id.clone(),
            path: summary.path.display().to_string(),
            duration_secs: summary.duration_secs,
            bytes: summary.bytes,
            frames: summary.frames_encoded,
            dropped_frames: summary.frames_dropped,
            cause,
            message: format!(
                "{} Saved to {}. {where_to}",
                why.trim(),
                summary.path.display()
            ),
        };
        self.sink.emit(Event::Recording(RecordingEvent::Stopped {
            saved: saved.clone(),
        }));
        self.emit_recordings();
        Ok(saved)
    }

    // ---- recordings and uploads ---------------------------------------------------------

    /// The recordings panel: every local recording with its upload state.
    pub fn recordings(&self) -> Result<Vec<LocalRecording>, UiError> {
        let progress = self.runner.progress().borrow().clone();
        let list = self.library.load().map_err(other)?;
        let queue = self.queue.load().map_err(other)?;
        Ok(list
            .into_iter()
            .map(|e| {
                let item = e.queue_item.as_deref().and_then(|id| queue.get(id));
                let upload = match item {
                    None if e.queue_item.is_some() => UploadView::Failed {
                        reason: "no longer in the upload queue".into(),
                    },
                    None => UploadView::LocalOnly,
                    Some(it) => upload_view(it, &progress.activity),
                };
                LocalRecording {
                    id: e.id,
                    title: e.title,
                    path: e.path.display().to_string(),
                    started_at: e.started_at,
                    duration_secs: e.duration_secs,
                    bytes: e.bytes,
                    destination: e.destination,
                    upload,
                }
            })
            .collect())
    }

    fn emit_recordings(&self) {
        match self.recordings() {
            Ok(list) => self.sink.emit(Event::Recordings(list)),
            Err(e) => tracing::warn!("recordings list: {}", e.message),
        }
    }

    fn spawn_progress_pump(&self) {
        let me = self.me.clone();
        let mut rx = self.runner.progress();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let Some(core) = me.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || core.emit_recordings()).await;
                // At most four updates a second: the panel needs no more.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    fn entry(&self, id: &str) -> Result<Entry, UiError> {
        self.library
            .load()
            .map_err(other)?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| err(ErrorKind::BadInput, "no such recording"))
    }

    /// Tries a failed or stopped upload again (with the current sign-in for its server).
    pub async fn retry_upload(&self, args: RecordingArgs) -> Result<Vec<LocalRecording>, UiError> {
        let entry = self.entry(&args.id)?;
        let Some(item) = entry.queue_item else {
            return Err(err(
                ErrorKind::BadInput,
                "this recording is not queued; upload it to a classroom first",
            ));
        };
        let auth = self
            .api()?
            .map(|a| (a.base().to_owned(), Auth::bearer(api_token(&a))));
        let queue = self.queue.clone();
        blocking(move || {
            let current = queue.load().map_err(other)?;
            let same_server = current
                .get(&item)
                .zip(auth.as_ref())
                .filter(|(it, (server, _))| &it.destination.server == server)
                .map(|(_, (_, a))| a.clone());
            upload::retry(&queue, &item, same_server)
                .map_err(|e| err(ErrorKind::BadInput, e.to_string()))
        })
        .await?;
        self.runner.wake();
        self.recordings()
    }

    /// Queues an offline recording for the breakout room the user is in now.
    pub async fn upload_to_current_room(
        &self,
        args: RecordingArgs,
    ) -> Result<Vec<LocalRecording>, UiError> {
        let entry = self.entry(&args.id)?;
        if entry.queue_item.is_some() {
            return Err(err(ErrorKind::BadInput, "this recording is already queued"));
        }
        let room = self
            .state()
            .room
            .as_ref()
            .map(|r| r.view.clone())
            .filter(|v| !v.offline)
            .ok_or_else(|| {
                err(
                    ErrorKind::BadInput,
                    "enter a classroom's breakout room first",
                )
            })?;
        let api = self
            .api()?
            .ok_or_else(|| err(ErrorKind::Offline, "sign in to a classroom first"))?;
        let dest = Destination {
            server: api.base().to_owned(),
            endpoint: format!("{}/files/", api.base()),
            live_room: room.live_room_id.clone(),
            breakout_room: room.breakout_room_id.clone(),
            title: entry.title.clone(),
            started_at: entry.started_at.clone(),
            duration_ms: (entry.duration_secs * 1000.0).round() as u64,
            filename: entry
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "recording.mp4".into()),
        };
        let auth = Auth::bearer(api_token(&api));
        let (queue, library, id) = (self.queue.clone(), self.library.clone(), entry.id.clone());
        let label = format!("{} › {}", room.live_room_name, room.breakout_room_name);
        blocking(move || {
            let item = upload::enqueue(&queue, &entry.path, dest, auth, EnqueueOptions::default())
                .map_err(|e| err(ErrorKind::BadInput, e.to_string()))?
                .item;
            library
                .update(|l| {
                    if let Some(e) = l.iter_mut().find(|e| e.id == id) {
                        e.queue_item = Some(item.id.clone());
                        e.destination = label;
                    }
                })
                .map_err(other)
        })
        .await?;
        self.runner.wake();
        self.recordings()
    }

    /// Opens the folder holding a recording in the desktop's file manager.
    pub fn open_folder(&self, args: RecordingArgs) -> Result<(), UiError> {
        let entry = self.entry(&args.id)?;
        let dir = entry
            .path
            .parent()
            .map_or_else(|| self.config.recordings_dir.clone(), Path::to_path_buf);
        std::process::Command::new("xdg-open")
            .arg(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| {
                err(
                    ErrorKind::Other,
                    format!("cannot open {} ({e}); the file is there", dir.display()),
                )
            })
    }

    /// The window wants to close: returns true when it may (nothing is recording); otherwise
    /// tells the page to ask the user first.
    pub fn close_requested(&self) -> bool {
        if self.is_recording() {
            self.sink
                .emit(Event::CloseRequested(CloseRequested { recording: true }));
            false
        } else {
            true
        }
    }

    /// Stops and saves a recording in progress, stops uploads (they resume next time) and the
    /// built-in server. Call before the process exits.
    pub async fn shutdown(&self) {
        if let Err(e) = self.leave_room().await {
            tracing::warn!("stopping the recording on exit: {}", e.message);
        }
        self.runner.stop();
        if let Some(e) = self.embedded.lock().await.take() {
            e.shutdown().await;
        }
    }
}

/// The room used when recording offline.
fn offline_live_room() -> LiveRoomView {
    LiveRoomView {
        id: "offline".into(),
        name: "Offline".into(),
        channel_name: String::new(),
        role: RoomRole::Moderator,
        breakout_rooms: vec![BreakoutRoomView {
            id: "offline".into(),
            name: "Offline recording".into(),
        }],
    }
}

fn offline_room_view() -> RoomView {
    RoomView {
        live_room_id: "offline".into(),
        live_room_name: "Offline".into(),
        breakout_room_id: "offline".into(),
        breakout_room_name: "Offline recording".into(),
        role: RoomRole::Moderator,
        participants_may_record: false,
        may_record: true,
        offline: true,
    }
}

fn api_token(api: &ApiClient) -> String {
    api.token().unwrap_or_default().to_owned()
}

/// `dir/name`, or `dir/name (2)` and so on when a file of that name exists (two recordings
/// started in the same second).
fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "mp4"));
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}).{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Starts recording with sound; without a sound server, records the picture alone and says so.
fn start_with_fallback(cfg: RecordingConfig) -> Result<(Recording, Vec<String>), UiError> {
    match Recording::start(cfg.clone()) {
        Ok(r) => Ok((r, Vec::new())),
        Err(recorder::RecordError::Capture(capture::CaptureError::Audio(a))) => {
            let mut silent = cfg;
            silent.audio = AudioSpec::default();
            let r =
                Recording::start(silent).map_err(|e| err(ErrorKind::Recording, e.to_string()))?;
            Ok((r, vec![format!("recording without sound: {a}")]))
        }
        Err(e) => Err(err(ErrorKind::Recording, e.to_string())),
    }
}

fn upload_view(it: &upload::Item, activity: &upload::Activity) -> UploadView {
    match &it.state {
        upload::State::Done { media_id } => UploadView::Done {
            media_id: media_id.clone(),
        },
        upload::State::NeedsSignIn { message } => UploadView::SignInAgain {
            message: message.clone(),
        },
        upload::State::Failed { reason } => UploadView::Failed {
            reason: reason.clone(),
        },
        upload::State::Waiting | upload::State::Uploading => match activity {
            upload::Activity::Uploading(p) if p.item == it.id => UploadView::Uploading {
                sent: p.sent,
                total: p.total,
                rate: p.rate,
                eta_secs: p.eta.map(|d| d.as_secs_f64()),
            },
            upload::Activity::Waiting { item, error, .. } if item == &it.id => {
                UploadView::Waiting {
                    message: Some(error.clone()),
                }
            }
            _ => UploadView::Waiting {
                message: it.last_error.clone(),
            },
        },
    }
}
