//! `classroom-server`: serve the classroom, or administer it (accounts, channels, live rooms,
//! the demo classroom). Settings come from flags or `CLASSROOM_*` environment variables.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use classroom_api::ChannelRole;
use classroom_server::{Classroom, Config};

#[derive(Parser)]
#[command(
    name = "classroom-server",
    version,
    about = "The Breakout Recorder classroom server"
)]
struct Cli {
    /// Data directory (database and media files). Default: the user's data directory.
    #[arg(long, global = true, env = "CLASSROOM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "CLASSROOM_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the bound address is printed).
    #[arg(long, env = "CLASSROOM_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Largest upload accepted, in bytes (Tus-Max-Size).
    #[arg(long, env = "CLASSROOM_MAX_UPLOAD_SIZE", default_value_t = 16 << 30)]
    max_upload_size: u64,
    /// Seconds an unfinished upload lives after its last progress.
    #[arg(long, env = "CLASSROOM_UPLOAD_EXPIRY_SECS", default_value_t = 24 * 3600)]
    upload_expiry_secs: u64,
    /// Seconds between sweeps that delete expired uploads.
    #[arg(long, env = "CLASSROOM_CLEANUP_INTERVAL_SECS", default_value_t = 600)]
    cleanup_interval_secs: u64,
    /// Seconds in-flight requests get to finish on shutdown (SIGINT/SIGTERM).
    #[arg(long, env = "CLASSROOM_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the JSON API, the tus endpoint and the web page.
    Serve(ServeArgs),
    /// Add an account. The password comes from CLASSROOM_PASSWORD or the first line of stdin.
    AddUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
    },
    /// Add a channel (prints its id), optionally with members.
    AddChannel {
        #[arg(long)]
        name: String,
        /// Usernames of managers (repeatable).
        #[arg(long = "manager")]
        managers: Vec<String>,
        /// Usernames of moderators (repeatable).
        #[arg(long = "moderator")]
        moderators: Vec<String>,
        /// Usernames of members (repeatable).
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Add an account to a channel with a role (manager, moderator or member).
    AddMember {
        #[arg(long)]
        channel: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
    },
    /// Launch a live room from a channel, with breakout rooms; prints its id and invite code.
    AddLiveRoom {
        #[arg(long)]
        channel: String,
        #[arg(long)]
        name: String,
        /// Username of the creator (a moderator of the room).
        #[arg(long)]
        creator: String,
        /// A breakout room's name (repeat for each, in order).
        #[arg(long = "breakout", required = true)]
        breakouts: Vec<String>,
        /// Let participants record from the start.
        #[arg(long)]
        participants_may_record: bool,
    },
    /// Seed the demo classroom (once), print how to sign in, and serve it.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// Only seed and print; do not serve.
        #[arg(long)]
        seed_only: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    // One line on stderr, whatever RUST_BACKTRACE says (returning the error from main would
    // print anyhow's Debug form, with a backtrace when that variable is set).
    if let Err(e) = start(cli) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn start(cli: Cli) -> Result<()> {
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None => Config::default_data_dir().context("no home directory; pass --data-dir")?,
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(run(cli.command, data_dir))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command, data_dir: PathBuf) -> Result<()> {
    match command {
        Command::Serve(args) => serve(args, data_dir, None).await,
        Command::Demo {
            serve: args,
            seed_only,
        } => {
            let classroom = Classroom::open(&data_dir).await?;
            let demo = classroom.seed_demo().await?;
            classroom.close().await;
            if seed_only {
                println!("{}", demo.instructions(&format!("http://{}", args.addr)));
                return Ok(());
            }
            serve(args, data_dir, Some(demo)).await
        }
        Command::AddUser {
            username,
            display_name,
        } => {
            let password = match std::env::var("CLASSROOM_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("password for {username} (one line on stdin):");
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("cannot read stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let c = Classroom::open(&data_dir).await?;
            let id = c.add_user(&username, &display_name, &password).await?;
            c.close().await;
            println!("{id}");
            Ok(())
        }
        Command::AddChannel {
            name,
            managers,
            moderators,
            members,
        } => {
            let c = Classroom::open(&data_dir).await?;
            let id = c.add_channel(&name).await?;
            for (users, role) in [
                (managers, ChannelRole::Manager),
                (moderators, ChannelRole::Moderator),
                (members, ChannelRole::Member),
            ] {
                for u in users {
                    c.add_channel_member(&id, &u, role).await?;
                }
            }
            c.close().await;
            println!("{id}");
            Ok(())
        }
        Command::AddMember {
            channel,
            username,
            role,
        } => {
            let Some(role) = ChannelRole::parse(&role) else {
                bail!("role must be manager, moderator or member");
            };
            let c = Classroom::open(&data_dir).await?;
            c.add_channel_member(&channel, &username, role).await?;
            c.close().await;
            Ok(())
        }
        Command::AddLiveRoom {
            channel,
            name,
            creator,
            breakouts,
            participants_may_record,
        } => {
            let c = Classroom::open(&data_dir).await?;
            let room = c
                .add_live_room(
                    &channel,
                    &name,
                    &creator,
                    &breakouts,
                    participants_may_record,
                )
                .await?;
            c.close().await;
            println!("live room {} invite code {}", room.id, room.invite_code);
            for b in &room.breakout_rooms {
                println!("breakout room {} {}", b.id, b.name);
            }
            Ok(())
        }
    }
}

async fn serve(
    args: ServeArgs,
    data_dir: PathBuf,
    demo: Option<classroom_server::DemoInfo>,
) -> Result<()> {
    let mut config = Config::new(data_dir);
    config.addr = args.addr;
    config.max_upload_size = args.max_upload_size;
    config.upload_expiry = Duration::from_secs(args.upload_expiry_secs);
    config.cleanup_interval = Duration::from_secs(args.cleanup_interval_secs.max(1));
    config.shutdown_grace = Duration::from_secs(args.shutdown_grace_secs);
    let data_dir = config.data_dir.clone();
    let server = classroom_server::serve(config).await?;
    // Scripts read this line to learn the port when they asked for port 0.
    println!("listening on {}", server.base_url());
    println!("data directory {}", data_dir.display());
    if let Some(demo) = demo {
        println!("{}", demo.instructions(&server.base_url()));
    }
    let stop = server.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        stop.cancel();
    });
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
