//! `cocov cache …`: what the cache holds per repository, and removing it (audited as the API's
//! purge and evict are).

use clap::Subcommand;

use super::{Cli, Failure, load_config};
use crate::audit::AuditActor;
use crate::cache::{CacheStore, Item, Zone};

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List a repository's artifacts (most recently used first) and its total, or with
    /// `--tools` the shared tools.
    List {
        /// The repository (omit with --tools).
        repository: Option<String>,
        #[arg(long)]
        tools: bool,
    },
    /// Remove every artifact of a repository, or with `--tools` every shared tool.
    Purge {
        repository: Option<String>,
        #[arg(long)]
        tools: bool,
    },
    /// Remove one item by the id `list` shows.
    Evict {
        repository: Option<String>,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        tools: bool,
    },
}

pub async fn run(cli: &Cli, command: &CacheCommand) -> Result<(), Failure> {
    let config = load_config(cli)?;
    crate::db::migrate(&config.database)
        .await
        .map_err(Failure::new)?;
    let pool = crate::db::connect(&config.database).map_err(Failure::new)?;
    let storage = crate::storage::open(&config.storage)
        .await
        .map_err(Failure::new)?;
    let store = CacheStore::new(pool.clone(), storage, config.storage.mode, &config.cache);
    let (repository, tools) = match command {
        CacheCommand::List { repository, tools }
        | CacheCommand::Purge { repository, tools }
        | CacheCommand::Evict {
            repository, tools, ..
        } => (repository, *tools),
    };
    let zone = match (repository, tools) {
        (None, true) => Zone::Tools,
        (Some(name), false) => Zone::Artifacts(super::repo::find(&pool, name).await?.id),
        (Some(_), true) => return Err(Failure::new("give a repository or --tools, not both")),
        (None, false) => return Err(Failure::new("give a repository name, or --tools")),
    };
    let actor = AuditActor::cli();
    match command {
        CacheCommand::List { .. } => {
            let items = store.list(zone).await.map_err(Failure::new)?;
            for item in &items {
                print_item(item);
            }
            let total: i64 = items.iter().map(|i| i.size).sum();
            let limit = match (zone, store.quota()) {
                (Zone::Artifacts(_), 0) => " (no quota)".to_string(),
                (Zone::Artifacts(_), quota) => format!(" of {quota} allowed"),
                (Zone::Tools, _) => String::new(),
            };
            println!("{} item(s), {total} bytes{limit}", items.len());
        }
        CacheCommand::Purge { .. } => {
            let removed = store
                .remove(zone, None, &actor, purge_action(zone))
                .await
                .map_err(Failure::new)?;
            println!("removed {} item(s)", removed.len());
        }
        CacheCommand::Evict { id, .. } => {
            let action = match zone {
                Zone::Artifacts(_) => "cache.evict",
                Zone::Tools => "cache.evict_tool",
            };
            store
                .remove(zone, Some(*id), &actor, action)
                .await
                .map_err(|e| Failure::new(format!("--id {id}: {e}")))?;
            println!("removed item {id}");
        }
    }
    Ok(())
}

fn purge_action(zone: Zone) -> &'static str {
    match zone {
        Zone::Artifacts(_) => "cache.purge",
        Zone::Tools => "cache.purge_tools",
    }
}

fn print_item(item: &Item) {
    let used = item
        .last_used_at
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "never".into());
    println!(
        "{:>8}  {:>12}  {:<40}  {:<24}  last used {used}",
        item.id, item.size, item.name, item.name_hash
    );
}
