//! The desktop app's behaviour, without Tauri: who is signed in, which breakout room they are
//! in, the recording flow's rules (who may record, when a recording stops by itself), the local
//! recordings and their uploads, and the built-in classroom server.
//!
//! The Tauri shell (`src-tauri`) only forwards commands here and forwards [`Event`]s to the
//! page, so everything below is testable without a window. The UI's values are in [`types`];
//! `ui/bindings.js` is generated from them by [`bindings`].

pub mod bindings;
pub mod client;
mod core;
pub mod embedded;
pub mod geometry;
pub mod library;
pub mod types;

pub use crate::core::{AppCore, CoreConfig, Event, EventSink};
pub use geometry::WindowPlacement;
