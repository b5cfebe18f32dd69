//! Build script: lets `tauri-build` read `tauri.conf.json` and `capabilities/`, so that
//! `tauri::generate_context!` can embed the config, the ACL and the `ui/` assets without the
//! Tauri CLI.

fn main() {
    tauri_build::build();
}
