//! Putting it together: the shared state, the router (JSON API, tus endpoint, web pages), the
//! listener, the expired-upload sweeper, and a handle to stop it all gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::db::Classroom;
use crate::error::{ApiError, Error};
use crate::{api, tus, web};

/// JSON and form bodies are small; anything bigger is refused before it is read (413). Upload
/// bytes go through the tus routes, which stream instead.
const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub classroom: Classroom,
    pub config: Arc<Config>,
    pub uploads: Arc<tus::Uploads>,
    /// argon2 takes ~19 MiB and tens of milliseconds per hash: a few at a time keeps memory
    /// flat when many people sign in at once.
    pub hashing: Arc<Semaphore>,
}

/// The whole application as a router (exposed to the crate's tests through [`serve`]).
pub(crate) fn router(state: AppState) -> Router {
    let small = Router::new()
        .merge(api::routes())
        .merge(web::routes())
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT));
    Router::new()
        .merge(small)
        .merge(tus::routes().layer(DefaultBodyLimit::disable()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    resp
}

/// A server started by [`serve`]: where it listens, and how to stop it.
pub struct RunningServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    classroom: Classroom,
}

impl RunningServer {
    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port`, for clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The classroom it serves (for admin calls while running, e.g. seeding the demo).
    pub fn classroom(&self) -> &Classroom {
        &self.classroom
    }

    /// Stops accepting connections, lets in-flight requests (uploads) finish within the
    /// configured grace period, and closes the database.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the server stops (after [`RunningServer::stopper`] was cancelled).
    pub async fn wait(self) -> Result<(), Error> {
        let res = self.task.await?;
        self.classroom.close().await;
        res
    }

    /// A token that stops the server when cancelled (e.g. from a signal handler).
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// Opens the classroom in `config.data_dir`, binds `config.addr` and serves until stopped.
/// Returns as soon as the socket is bound.
pub async fn serve(config: Config) -> Result<RunningServer, Error> {
    let classroom = Classroom::open(&config.data_dir).await?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {}", config.addr), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the bound address", e))?;
    let config = Arc::new(config);
    let state = AppState {
        classroom: classroom.clone(),
        config: config.clone(),
        uploads: Arc::new(tus::Uploads::default()),
        hashing: Arc::new(Semaphore::new(2)),
    };
    let stop = CancellationToken::new();
    tokio::spawn(tus::sweep_expired(state.clone(), stop.clone()));
    let app = router(state);
    let grace = config.shutdown_grace;
    let task_stop = stop.clone();
    let task = tokio::spawn(async move {
        tracing::info!(%addr, "classroom server listening");
        let graceful = task_stop.clone();
        let server = axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move { graceful.cancelled().await })
            .into_future();
        tokio::pin!(server);
        tokio::select! {
            res = &mut server => res.map_err(|e| Error::io("server", e)),
            // Graceful shutdown waits for every open connection; a client that keeps one open
            // forever must not keep the process alive, hence the grace period.
            () = async {
                task_stop.cancelled().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("requests still running after the grace period were cut");
                Ok(())
            }
        }
    });
    Ok(RunningServer {
        addr,
        stop,
        task,
        classroom,
    })
}
