//! `vaultd` binary: parses flags, sets up logging, binds, and hands over to the library.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use vaultd::StartError;
use vaultd::config::{
    ServerConfig, Storage, limits_from_env, postgres_options_from_env, process_env,
};
use vaultd::state::Limits;

/// Man pages from the clap definition (shared with `vaultctl man`).
#[path = "../../tools/man_pages.rs"]
mod man_pages;

/// `--version`: the crate version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("VAULTCTL_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "vaultd", version = VERSION, about = "Secrets broker for CI/CD pipelines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server from a config file (production).
    Server {
        /// Path to vaultd.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overrides config and VAULTD_LISTEN.
        #[arg(long)]
        listen: Option<String>,
        /// Data directory, overrides config and VAULTD_DATA_DIR.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// PostgreSQL storage URL (no password in it), overrides config and VAULTD_STORAGE_URL.
        #[arg(long)]
        storage_url: Option<String>,
    },
    /// Operator tasks on a stopped server's store.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Write man pages (vaultd.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run a self-initialising, self-unsealing development server. Not for production.
    Dev {
        #[arg(long, default_value = "127.0.0.1:8200")]
        listen: SocketAddr,
        /// Keep data here (default: a new temp dir). Restarting on the same dir unseals again.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Use this root token instead of a random one (new data dir only).
        #[arg(long, env = "VAULTD_DEV_ROOT_TOKEN", hide_env_values = true)]
        root_token: Option<String>,
        /// Write an audit log here.
        #[arg(long)]
        audit_log: Option<PathBuf>,
        /// Policy documents (*.toml) to load at start [default: ./policies/examples if present]
        #[arg(long)]
        policies: Option<PathBuf>,
        /// Keep the store in this PostgreSQL database instead of the data dir (the dev unseal
        /// key and root token stay in the data dir). Password from VAULTD_STORAGE_PASSWORD.
        #[arg(long, env = "VAULTD_STORAGE_URL")]
        storage_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Copy every (encrypted) record from one store to another, empty one. Stop vaultd first.
    Migrate {
        /// Source: a sled data dir.
        #[arg(
            long,
            conflicts_with = "from_storage_url",
            required_unless_present = "from_storage_url"
        )]
        from_data_dir: Option<PathBuf>,
        /// Source: a PostgreSQL URL (password from VAULTD_STORAGE_PASSWORD).
        #[arg(long)]
        from_storage_url: Option<String>,
        /// Target: a sled data dir.
        #[arg(
            long,
            conflicts_with = "to_storage_url",
            required_unless_present = "to_storage_url"
        )]
        to_data_dir: Option<PathBuf>,
        /// Target: a PostgreSQL URL (password from VAULTD_STORAGE_PASSWORD).
        #[arg(long)]
        to_storage_url: Option<String>,
    },
}

fn storage_of(data_dir: Option<PathBuf>, url: Option<String>) -> Result<Storage, StartError> {
    match (data_dir, url) {
        (_, Some(url)) => Ok(Storage::Postgres(postgres_options_from_env(
            url,
            process_env,
        )?)),
        (Some(dir), None) => Ok(Storage::Sled(dir)),
        (None, None) => Err(StartError::Migrate(
            "name a data dir or a storage URL".into(),
        )),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VAULTD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // tokio-postgres logs every statement it runs at debug level, and the database engine's
    // statements carry the passwords it sets: never below info, whatever VAULTD_LOG asks.
    let filter = match "tokio_postgres=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

// The request path allocates many small short-lived buffers (JSON, encrypted records); mimalloc
// handles that pattern markedly better than the system allocator (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps key material out of core files and away from same-user debuggers.
fn harden_process() -> Result<(), StartError> {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|source| StartError::Harden {
        action: "disabling core dumps",
        source,
    })?;
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_dumpable(false).map_err(|source| StartError::Harden {
        action: "marking the process non-dumpable",
        source,
    })?;
    Ok(())
}

fn main() -> ExitCode {
    // Before any JWT is touched: jsonwebtoken panics without a provider.
    vaultd::oidc::jwt_crypto::install();
    if let Err(e) = harden_process() {
        eprintln!("vaultd: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    if let Command::Man { dir } = &cli.command {
        return write_man_pages(dir);
    }
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vaultd: {}", StartError::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vaultd: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write_man_pages(dir: &std::path::Path) -> ExitCode {
    use clap::CommandFactory;
    let mut written = Vec::new();
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        man_pages::write_pages(Cli::command(), "vaultd", "vaultd", dir, &mut written)
    });
    match result {
        Ok(()) => {
            for page in written {
                println!("{}", page.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vaultd: writing man pages to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), StartError> {
    match command {
        // Answered before the runtime started.
        Command::Man { .. } => Ok(()),
        Command::Operator {
            command:
                OperatorCommand::Migrate {
                    from_data_dir,
                    from_storage_url,
                    to_data_dir,
                    to_storage_url,
                },
        } => {
            let from = storage_of(from_data_dir, from_storage_url)?;
            let to = storage_of(to_data_dir, to_storage_url)?;
            let copied = vaultd::migrate(&from, &to).await?;
            println!("copied {copied} records");
            Ok(())
        }
        Command::Server {
            config,
            listen,
            data_dir,
            storage_url,
        } => {
            let config = ServerConfig::load(
                config.as_deref(),
                listen,
                data_dir,
                storage_url,
                process_env,
            )?;
            let unseal_key = match &config.unseal_key_file {
                Some(path) => Some(vaultd::read_unseal_key_file(path)?),
                None => None,
            };
            let app = vaultd::open_app(
                &config.storage,
                config.audit_log.as_deref(),
                config.limits.clone(),
                false,
            )
            .await?;
            if let Some(key) = unseal_key {
                vaultd::spawn_auto_unseal(app.clone(), key);
            }
            let tls = match &config.tls {
                Some((cert, key)) => Some(vaultd::server::tls_acceptor(cert, key)?),
                None => None,
            };
            let listener =
                tokio::net::TcpListener::bind(config.listen)
                    .await
                    .map_err(|source| StartError::Listen {
                        addr: config.listen,
                        source,
                        hint: "",
                    })?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            let addr = listener.local_addr().map_err(StartError::LocalAddr)?;
            let _ = app.api_addr.set(
                config
                    .api_addr
                    .clone()
                    .unwrap_or_else(|| format!("{scheme}://{addr}")),
            );
            println!("vaultd listening on {scheme}://{addr}");
            tracing::info!(%addr, scheme, sealed = app.store.is_sealed(), "vaultd listening");
            vaultd::spawn_sweeper(app.clone());
            vaultd::server::run(
                listener,
                tls,
                app,
                config.limits,
                vaultd::server::shutdown_signal(),
            )
            .await;
            Ok(())
        }
        Command::Dev {
            listen,
            data_dir,
            root_token,
            audit_log,
            policies,
            storage_url,
        } => {
            let data_dir = match data_dir {
                Some(dir) => dir,
                None => vaultd::dev::temp_data_dir()?,
            };
            vaultd::prepare_data_dir(&data_dir)?;
            let limits = limits_from_env(Limits::default(), process_env)?;
            let storage = match storage_url {
                Some(url) => Storage::Postgres(postgres_options_from_env(url, process_env)?),
                None => Storage::Sled(data_dir.clone()),
            };
            let app =
                vaultd::open_app(&storage, audit_log.as_deref(), limits.clone(), true).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: listen,
                    source,
                    hint: " (is another vaultd running? try --listen 127.0.0.1:0)",
                })?;
            let addr = listener.local_addr().map_err(StartError::LocalAddr)?;
            let token = vaultd::dev::bootstrap(&app, &data_dir, root_token).await?;
            let _ = app.api_addr.set(format!("http://{addr}"));
            let issuer_url = vaultd::dev::start_issuer(&app, &format!("http://{addr}"))?;
            let policies_dir = policies.or_else(|| {
                let default = PathBuf::from("policies/examples");
                default.is_dir().then_some(default)
            });
            let loaded =
                vaultd::dev::load_policies(&app, &issuer_url, policies_dir.as_deref()).await?;
            println!(
                "vaultd dev server: NOT FOR PRODUCTION (unsealed, unseal key stored beside the data)"
            );
            println!("data dir: {}", data_dir.display());
            println!("root token: {}", token.as_str());
            println!(
                "dev OIDC issuer: {issuer_url} (role \"dev\", audience \"{}\")",
                vaultd::oidc::dev_issuer::DEFAULT_AUDIENCE
            );
            println!("policy documents: {loaded}");
            println!();
            println!("export VAULTCTL_ADDR=http://{addr}");
            println!("export VAULTCTL_TOKEN={}", token.as_str());
            drop(token);
            vaultd::spawn_sweeper(app.clone());
            vaultd::server::run(
                listener,
                None,
                app,
                limits,
                vaultd::server::shutdown_signal(),
            )
            .await;
            Ok(())
        }
    }
}
