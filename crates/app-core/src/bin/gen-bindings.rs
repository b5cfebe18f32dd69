//! Writes `ui/bindings.js` from the Rust types (`app_core::bindings`). Run after changing a
//! command or a type the UI sees: `cargo run -p app-core --bin gen-bindings`.

fn main() -> std::io::Result<()> {
    let path = app_core::bindings::default_path();
    std::fs::write(&path, app_core::bindings::render())?;
    println!("wrote {}", path.display());
    Ok(())
}
