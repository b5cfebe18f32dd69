//! The benchmark's baseline: a plain HTTP upload sink. `PUT /sink` streams the body into a file
//! the way the tus endpoint does (hyper frames → bounded channel → a blocking thread → 1 MiB
//! buffered writes → fsync at the end), but with no protocol, no hashing, no database and no
//! auth. `scripts/bench-upload-server.sh` sends the same bytes here and to the tus endpoint.
//!
//! usage: bench_sink ADDR DIR   (prints "listening on http://ADDR")

use std::io::Write;
use std::path::PathBuf;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::put;
use futures_util::StreamExt;

async fn sink(State(dir): State<PathBuf>, body: Body) -> (StatusCode, String) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let path = dir.join("sink.bin");
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        let mut n = 0u64;
        while let Some(b) = rx.blocking_recv() {
            f.write_all(&b)?;
            n += b.len() as u64;
        }
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_data()?;
        Ok(n)
    });
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(b) => {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    drop(tx);
    match writer.await {
        Ok(Ok(n)) => (StatusCode::OK, format!("{n}\n")),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let app = Router::new()
        .route("/sink", put(sink))
        .layer(DefaultBodyLimit::disable())
        .with_state(dir);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
