//! The cache relay: how a plugin with no network reaches the cache service. The sandbox has its
//! own network namespace with only a loopback; the daemon's cache socket is bound in at
//! [`RELAY_SOCKET`], and the `cocov` binary itself (bound in with the libraries it was loaded
//! with, so it runs on an image's root filesystem too) is started by the sandbox's wrapper as
//! `cocov __cache-relay <port> -- <plugin> <args>`: it listens on `127.0.0.1:<port>`, starts the
//! plugin as its child with `COCOV_CACHE_SERVICE_URL` naming that address (same uid, limits and
//! seccomp filter: it is inside them already), forwards every connection to that one socket, and
//! exits with the plugin's status. The socket path is
//! fixed here, not an argument, so the relay can reach nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Bind;

/// Where the cache service's socket appears inside a sandbox.
pub const RELAY_SOCKET: &str = "/run/cocov-cache.sock";
/// Where the relay's binary and its libraries appear inside.
const RELAY_DIR: &str = "/run/cocov-relay";
/// What the plugin finds the service's address in (the original's name), set by the relay.
pub const CACHE_URL_VARIABLE: &str = "COCOV_CACHE_SERVICE_URL";
/// The hidden subcommand (see `cli`).
pub const RELAY_SUBCOMMAND: &str = "__cache-relay";

/// The relay a sandbox gets: the host socket to bind in, and the loopback port to serve on.
#[derive(Debug, Clone)]
pub struct Relay {
    pub socket: PathBuf,
    pub port: u16,
    /// The `cocov` binary to run as the relay; None: this process's own.
    pub binary: Option<PathBuf>,
}

/// The binds and the command prefix that start the plugin under the relay.
pub(super) struct RelayLaunch {
    pub binds: Vec<Bind>,
    pub prefix: Vec<String>,
}

impl Relay {
    /// `shared_network`: the sandbox is on the host's network, where a fixed port could be
    /// taken (by another check's relay): the relay then takes any free one.
    pub(super) fn launch(&self, shared_network: bool) -> std::io::Result<RelayLaunch> {
        let exe = match &self.binary {
            Some(binary) => binary.clone(),
            None => std::env::current_exe()?,
        };
        let exe = staged_beside(&exe, &self.socket)?;
        let loaded = loaded_libraries()?;
        let mut binds = vec![
            ro(&self.socket, RELAY_SOCKET.to_string()),
            ro(&exe, format!("{RELAY_DIR}/cocov")),
        ];
        let mut prefix = Vec::new();
        let dirs: BTreeSet<PathBuf> = loaded
            .iter()
            .filter_map(|l| l.parent().map(Path::to_path_buf))
            .collect();
        let inside: Vec<String> = (0..dirs.len())
            .map(|i| format!("{RELAY_DIR}/lib{i}"))
            .collect();
        for (dir, inside) in dirs.iter().zip(&inside) {
            binds.push(ro(dir, inside.clone()));
        }
        // A dynamically linked binary runs through the host's loader with the host's libraries
        // (the image's own may be another libc); a static one runs as it is.
        if let Some(loader) = loaded.iter().find(|l| is_loader(l)) {
            let dir = dirs
                .iter()
                .position(|d| Some(d.as_path()) == loader.parent());
            if let (Some(dir), Some(name)) = (dir, loader.file_name()) {
                prefix.push(format!("{}/{}", inside[dir], name.to_string_lossy()));
                prefix.extend(["--library-path".to_string(), inside.join(":")]);
            }
        }
        prefix.push(format!("{RELAY_DIR}/cocov"));
        prefix.extend([
            RELAY_SUBCOMMAND.to_string(),
            if shared_network { 0 } else { self.port }.to_string(),
            "--".to_string(),
        ]);
        Ok(RelayLaunch { binds, prefix })
    }
}

/// The relay binary, linked (or, across file systems, copied) into the socket's directory. The
/// sandbox's user must reach every bind's source, and the socket's directory is reachable by
/// construction, while the binary may sit under a directory only its owner can enter (a build
/// tree in a private temporary directory, a home directory). Done again only when the binary
/// changed.
fn staged_beside(exe: &Path, socket: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = socket.parent() else {
        return Ok(exe.to_path_buf());
    };
    let staged = dir.join("cocov-relay");
    let source = std::fs::metadata(exe)?;
    if let Ok(current) = std::fs::metadata(&staged) {
        let linked = current.dev() == source.dev() && current.ino() == source.ino();
        let copied = current.len() == source.len() && current.mtime() >= source.mtime();
        if linked || copied {
            return Ok(staged);
        }
    }
    // Staged under a temporary name and renamed, so a concurrent check never runs half a file.
    static STAGINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STAGINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!("cocov-relay.{}.{n}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    if std::fs::hard_link(exe, &temporary).is_err() {
        std::fs::copy(exe, &temporary)?;
    }
    std::fs::rename(&temporary, &staged)?;
    Ok(staged)
}

fn ro(host: &Path, inside: String) -> Bind {
    Bind {
        host: host.to_path_buf(),
        inside,
        writable: false,
    }
}

fn is_loader(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("ld-"))
}

/// The shared objects this process was loaded with, as the kernel names them.
fn loaded_libraries() -> std::io::Result<BTreeSet<PathBuf>> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    Ok(maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.starts_with('/') && path.contains(".so"))
        .map(PathBuf::from)
        .collect())
}

/// The relay's process: serve on loopback, run the plugin, exit with its status.
pub fn main(port: u16, command: &[String]) -> ExitCode {
    // One thread: the relay lives inside the plugin's process limit.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cocov cache relay: {e}");
            return ExitCode::from(125);
        }
    };
    match runtime.block_on(serve(port, command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cocov cache relay: {e}");
            ExitCode::from(125)
        }
    }
}

async fn serve(port: u16, command: &[String]) -> std::io::Result<u8> {
    let (program, args) = command.split_first().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command to run")
    })?;
    // Listening before the plugin starts, so its first request finds the port open.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env(CACHE_URL_VARIABLE, url)
        .spawn()?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(forward(stream));
                }
            }
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        // As a shell reports it, which is what the sandbox's caller reads.
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => 1,
    })
}

async fn forward(mut stream: tokio::net::TcpStream) {
    if let Ok(mut upstream) = tokio::net::UnixStream::connect(RELAY_SOCKET).await {
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    }
}
