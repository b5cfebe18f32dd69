//! The classroom server: accounts and guests, channels, live rooms launched from a channel with
//! their breakout rooms, the "participants may record" permission, resumable uploads over tus
//! 1.0, and the media library (JSON API and a small server-rendered web page).
//!
//! Used two ways: the `classroom-server` binary, and embedded in the desktop app, which calls
//! [`serve`] on its own tokio runtime and [`Classroom::seed_demo`] for the one-command setup.
//!
//! ```no_run
//! # async fn demo() -> Result<(), classroom_server::Error> {
//! let mut config = classroom_server::Config::new("/tmp/classroom".into());
//! config.addr = "127.0.0.1:0".parse().expect("literal");
//! let server = classroom_server::serve(config).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

mod access;
mod admin;
mod api;
mod auth;
mod config;
mod db;
mod download;
mod error;
mod library;
mod running_hash;
mod server;
pub mod storage;
mod tus;
mod validate;
mod web;

pub use admin::{DemoInfo, LiveRoomCreated};
pub use config::Config;
pub use db::Classroom;
pub use error::Error;
pub use server::{RunningServer, serve};
