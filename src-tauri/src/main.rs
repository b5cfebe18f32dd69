//! Breakout Recorder desktop app: a thin Tauri 2 shell that opens the room view (`ui/`).
//!
//! The window, its title and size, the CSP and the assets all come from `tauri.conf.json`
//! (embedded at compile time); recording logic lives in the `crates/` and is only delegated to
//! from here.

fn main() -> anyhow::Result<()> {
    tauri::Builder::default()
        .run(tauri::generate_context!())
        .map_err(|e| anyhow::anyhow!("the Breakout Recorder window could not run: {e}"))
}
