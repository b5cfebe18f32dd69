//! Build script: lets `tauri-build` read `tauri.conf.json` and `capabilities/`, so that
//! `tauri::generate_context!` can embed the config, the ACL and the `ui/` assets without the
//! Tauri CLI.
//!
//! The app's own commands are declared here so Tauri generates an `allow-<command>` permission
//! for each, and the window may call only those its capability lists (see
//! `capabilities/default.json`; a test in app-core checks the list matches the commands).

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(&[
        "app_info",
        "sign_in",
        "join_as_guest",
        "record_offline",
        "sign_out",
        "live_rooms",
        "enter_breakout_room",
        "refresh_room",
        "set_participants_may_record",
        "start_recording",
        "stop_recording",
        "leave_room",
        "recordings",
        "retry_upload",
        "upload_to_current_room",
        "open_folder",
        "quit",
    ]);
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest)) {
        panic!("tauri-build: {e:#}");
    }
}
