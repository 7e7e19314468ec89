//! `cocov plugin pull|import|images|prune|login|logout`: the image store of this host, for
//! hosts with a registry and for air-gapped ones (`import` a `docker save` or OCI archive).

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;

use super::{Cli, Failure, load_config};
use crate::images::{Credentials, Images, Store, import};

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Pull an image plugin into the store now (re-resolving its tag).
    Pull {
        /// The image as a manifest names it (`cocov/rubocop:v0.1`, `host:5000/team/lint:v3`).
        reference: String,
    },
    /// Load an image from a `docker save` archive or an OCI image layout archive.
    Import {
        /// The archive (`docker save -o FILE`, `skopeo copy … oci-archive:FILE`).
        file: PathBuf,
        /// The name to store it under (else the name the archive records).
        #[arg(long)]
        tag: Option<String>,
    },
    /// The stored images: digest, names, size and last use.
    Images {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove images not used for `--unused-days` days, and leftovers of interrupted pulls.
    Prune {
        #[arg(long, default_value_t = 7)]
        unused_days: u32,
    },
    /// Store a registry's credentials, sealed with the secrets key (password read from stdin).
    Login {
        /// The registry host (`registry.example:5000`, `docker.io`).
        registry: String,
        #[arg(long)]
        username: String,
    },
    /// Forget a registry's credentials.
    Logout { registry: String },
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::new(e)
}

pub async fn run(cli: &Cli, command: &ImageCommand) -> Result<(), Failure> {
    let config = load_config(cli)?;
    let store = Store::new(&config.images.store_dir);
    let max_bytes = config.images.max_image_mb.saturating_mul(1024 * 1024);
    match command {
        ImageCommand::Pull { reference } => {
            let images = Images::new(&config.images, &config.security).map_err(failed)?;
            let image = images.pull(reference).await.map_err(failed)?;
            println!("{reference}: {}", image.digest);
        }
        ImageCommand::Import { file, tag } => {
            if !file.is_file() {
                return Err(Failure {
                    status: 2,
                    message: format!("{}: no such file", file.display()),
                });
            }
            let image = import(&store, file, tag.as_deref(), max_bytes)
                .map_err(|e| failed(format!("{}: {e}", file.display())))?;
            println!("{}: {}", image.references.join(", "), image.digest);
        }
        ImageCommand::Images { json } => {
            let images = store.list().map_err(failed)?;
            if !json {
                println!("{:<20} {:>10} {:<20} names", "digest", "size", "last used");
            }
            for image in images {
                if *json {
                    println!("{}", serde_json::to_string(&image).expect("json"));
                } else {
                    println!(
                        "{:<20} {:>10} {:<20} {}",
                        &image.digest[..image.digest.len().min(19)],
                        human_size(image.size_bytes),
                        when(image.last_used_at),
                        image.references.join(", ")
                    );
                }
            }
        }
        ImageCommand::Prune { unused_days } => {
            let cutoff = crate::images::store::now() - i64::from(*unused_days) * 86_400;
            let removed = store.collect_garbage(0, cutoff).map_err(failed)?;
            store.clear_scratch().map_err(failed)?;
            for image in &removed {
                println!("removed {} ({})", image.digest, image.references.join(", "));
            }
            eprintln!("{} image(s) removed", removed.len());
        }
        ImageCommand::Login { registry, username } => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| failed(format!("reading the password from stdin: {e}")))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(Failure {
                    status: 2,
                    message: "no password on stdin".into(),
                });
            }
            Credentials::save(&store, &config.security, registry, username, password)
                .map_err(failed)?;
            eprintln!("credentials for {registry} stored");
        }
        ImageCommand::Logout { registry } => {
            if !Credentials::remove(&store, registry).map_err(failed)? {
                return Err(failed(format!("no credentials stored for {registry}")));
            }
            eprintln!("credentials for {registry} removed");
        }
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    format!("{:.1} MiB", bytes as f64 / MIB)
}

fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}
