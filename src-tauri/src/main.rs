//! Breakout Recorder desktop app: the Tauri 2 shell around `app-core`.
//!
//! Only this crate knows Tauri. Each command is a one-line delegation to [`AppCore`]; the shell
//! adds what only a window knows: where its content is on the screen (for the stage's screen
//! rectangle), when it moves, and when it is asked to close. The page reaches these commands
//! through the generated `ui/bindings.js`; the window's capability allows exactly them.

use std::sync::Arc;

use app_core::types::*;
use app_core::{AppCore, CoreConfig, Event, EventSink, WindowPlacement};
use tauri::{Emitter, Manager, State, WebviewWindow};

type Core<'a> = State<'a, Arc<AppCore>>;
type Res<T> = Result<T, UiError>;

/// Sends the core's events to the page.
struct WindowEvents(tauri::AppHandle);

impl EventSink for WindowEvents {
    fn emit(&self, event: Event) {
        if let Err(e) = self.0.emit(event.name(), event.payload()) {
            tracing::warn!("cannot send the {} event to the window: {e}", event.name());
        }
    }
}

/// Where the window's content area is on the screen, in physical pixels.
fn placement(w: &WebviewWindow) -> Res<WindowPlacement> {
    let fail = |e: tauri::Error| UiError {
        kind: ErrorKind::Recording,
        message: format!("cannot tell where the window is on the screen: {e}"),
    };
    let pos = w.inner_position().map_err(fail)?;
    Ok(WindowPlacement {
        inner_x: pos.x,
        inner_y: pos.y,
        scale: w.scale_factor().map_err(fail)?,
    })
}

#[tauri::command]
fn app_info(core: Core<'_>) -> AppInfo {
    core.app_info()
}

#[tauri::command]
async fn sign_in(core: Core<'_>, args: SignInArgs) -> Res<SessionInfo> {
    core.sign_in(args).await
}

#[tauri::command]
async fn join_as_guest(core: Core<'_>, args: GuestArgs) -> Res<SessionInfo> {
    core.join_as_guest(args).await
}

#[tauri::command]
async fn record_offline(core: Core<'_>) -> Res<SessionInfo> {
    core.record_offline().await
}

#[tauri::command]
async fn sign_out(core: Core<'_>) -> Res<()> {
    core.sign_out().await
}

#[tauri::command]
async fn live_rooms(core: Core<'_>) -> Res<Vec<LiveRoomView>> {
    core.live_rooms().await
}

#[tauri::command]
async fn enter_breakout_room(core: Core<'_>, args: EnterArgs) -> Res<RoomView> {
    core.enter_breakout_room(args).await
}

#[tauri::command]
async fn refresh_room(core: Core<'_>) -> Res<RoomView> {
    core.refresh_room().await
}

#[tauri::command]
async fn set_participants_may_record(core: Core<'_>, args: PermissionArgs) -> Res<RoomView> {
    core.set_participants_may_record(args).await
}

#[tauri::command]
async fn start_recording(
    core: Core<'_>,
    window: WebviewWindow,
    args: StartArgs,
) -> Res<RecordingStarted> {
    core.start_recording(args, placement(&window)?).await
}

#[tauri::command]
async fn stop_recording(core: Core<'_>) -> Res<RecordingSaved> {
    core.stop_recording().await
}

#[tauri::command]
async fn leave_room(core: Core<'_>) -> Res<Option<RecordingSaved>> {
    core.leave_room().await
}

#[tauri::command]
fn recordings(core: Core<'_>) -> Res<Vec<LocalRecording>> {
    core.recordings()
}

#[tauri::command]
async fn retry_upload(core: Core<'_>, args: RecordingArgs) -> Res<Vec<LocalRecording>> {
    core.retry_upload(args).await
}

#[tauri::command]
async fn upload_to_current_room(core: Core<'_>, args: RecordingArgs) -> Res<Vec<LocalRecording>> {
    core.upload_to_current_room(args).await
}

#[tauri::command]
fn open_folder(core: Core<'_>, args: RecordingArgs) -> Res<()> {
    core.open_folder(args)
}

/// Stops and saves a recording, then ends the app (the page asked the user first).
#[tauri::command]
async fn quit(core: Core<'_>, app: tauri::AppHandle) -> Res<()> {
    core.shutdown().await;
    app.exit(0);
    Ok(())
}

/// WebKitGTK's compositing mode renders every repaint of the whole window through OpenGL;
/// without a GPU (Xvfb, many school laptops' software GL) that is Mesa's llvmpipe on the CPU.
/// Measured with `scripts/bench-app.sh` (2300x1240 window, 1080p stage): 0.70 cores for a
/// window with nothing moving, against 0.00 without it, and a recording then cost the app
/// 50 % more CPU than the same recording by the CLI. This page needs no GPU effects, so the
/// recorder keeps the machine for recording. A value the user set wins.
fn prefer_cpu_rendering() {
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        // SAFETY: called first thing in main, before any thread exists that could read the
        // environment concurrently.
        unsafe { std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1") };
    }
}

fn main() -> anyhow::Result<()> {
    prefer_cpu_rendering();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let app = tauri::Builder::default()
        .setup(|app| {
            let sink = Arc::new(WindowEvents(app.handle().clone()));
            let core = tauri::async_runtime::block_on(AppCore::start(CoreConfig::from_env(), sink))
                .map_err(anyhow::Error::msg)?;
            if let Some(w) = app.get_webview_window("main") {
                tracing::info!(
                    "window ready; recordings go to {}",
                    core.app_info().recordings_dir
                );
                if let Ok(p) = placement(&w) {
                    core.window_moved(p);
                }
            }
            app.manage(core);
            Ok(())
        })
        .on_window_event(|window, event| {
            let Some(core) = window.try_state::<Arc<AppCore>>() else {
                return;
            };
            match event {
                tauri::WindowEvent::Moved(_) | tauri::WindowEvent::ScaleFactorChanged { .. } => {
                    if let Some(w) = window.get_webview_window(window.label())
                        && let Ok(p) = placement(&w)
                    {
                        core.window_moved(p);
                    }
                }
                // Closing while recording asks first (the page shows the question).
                tauri::WindowEvent::CloseRequested { api, .. } if !core.close_requested() => {
                    api.prevent_close();
                }
                _ => {}
            }
        })
        .invoke_handler(tauri::generate_handler![
            app_info,
            sign_in,
            join_as_guest,
            record_offline,
            sign_out,
            live_rooms,
            enter_breakout_room,
            refresh_room,
            set_participants_may_record,
            start_recording,
            stop_recording,
            leave_room,
            recordings,
            retry_upload,
            upload_to_current_room,
            open_folder,
            quit,
        ])
        .build(tauri::generate_context!())
        .map_err(|e| anyhow::anyhow!("the Breakout Recorder window could not start: {e}"))?;
    app.run(|app, event| {
        if let tauri::RunEvent::Exit = event
            && let Some(core) = app.try_state::<Arc<AppCore>>()
        {
            // A recording in progress is stopped and saved; uploads resume next time.
            tauri::async_runtime::block_on(core.shutdown());
        }
    });
    Ok(())
}
