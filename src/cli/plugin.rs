//! `cocov plugin list` and `cocov plugin run` (image commands: `plugin_images`): the plugin catalog as this host sees it, and one
//! plugin run over a local directory in the same sandbox as a real check, for plugin authors and
//! for admins checking a new definition.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Subcommand;

use super::{Cli, Failure, load_config};
use crate::checks::{CheckResult, run_locally};
use crate::plugins::Catalog;

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// The known plugins: built-in definitions and the files of `worker.plugins_dir`.
    List,
    /// Run one plugin over a local directory in the sandbox and print the issues it reports.
    Run {
        /// The plugin as a manifest names it (`cocov/shellcheck:v0.1`, `shellcheck`, …).
        name: String,
        /// The directory to check (copied first; the original is never changed).
        #[arg(long)]
        dir: PathBuf,
        /// An environment variable for the plugin, as the manifest's `envs` would give it.
        #[arg(long = "env", value_name = "NAME=VALUE")]
        envs: Vec<String>,
        /// Print the issues as JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Image(super::plugin_images::ImageCommand),
}

fn catalog(cli: &Cli) -> Result<(crate::config::Config, Catalog), Failure> {
    let config = load_config(cli)?;
    let catalog = Catalog::load(&config.worker.plugins_dir).map_err(|e| Failure {
        status: 2,
        message: format!("plugin definitions: {e}"),
    })?;
    Ok((config, catalog))
}

pub async fn run(cli: &Cli, command: &PluginCommand) -> Result<(), Failure> {
    match command {
        PluginCommand::List => {
            let (_, catalog) = catalog(cli)?;
            println!("{:<24} {:<11} {:<10} from", "name", "format", "network");
            for (def, origin) in catalog.iter() {
                println!(
                    "{:<24} {:<11} {:<10} {origin}",
                    def.name,
                    def.format.as_str(),
                    if def.network { "yes" } else { "no" },
                );
            }
            Ok(())
        }
        PluginCommand::Run {
            name,
            dir,
            envs,
            json,
        } => {
            let (config, catalog) = catalog(cli)?;
            // A name no definition has is an image reference, as in a manifest.
            let image_definition;
            let definition = match catalog.resolve(name) {
                Ok(definition) => definition,
                Err(unknown) => {
                    image_definition = image_plugin(&config, name)
                        .await
                        .map_err(|e| Failure::new(format!("{unknown}; as an image: {e}")))?;
                    &image_definition
                }
            };
            if !dir.is_dir() {
                return Err(Failure::new(format!(
                    "--dir {}: not a directory",
                    dir.display()
                )));
            }
            let envs = parse_envs(envs)?;
            let result = run_locally(&config.worker, definition, dir, envs)
                .await
                .map_err(|e| Failure::new(format!("preparing the sandbox: {e}")))?;
            match result {
                CheckResult::Completed(issues) => {
                    for issue in &issues {
                        if *json {
                            println!(
                                "{}",
                                serde_json::json!({
                                    "kind": issue.kind,
                                    "file": issue.file,
                                    "line_start": issue.line_start,
                                    "line_end": issue.line_end,
                                    "message": issue.message,
                                    "uid": issue.uid(),
                                })
                            );
                        } else {
                            println!(
                                "{}:{}: {}: {}",
                                issue.file, issue.line_start, issue.kind, issue.message
                            );
                        }
                    }
                    eprintln!("{}: {} issue(s)", definition.name, issues.len());
                    Ok(())
                }
                CheckResult::Errored(output) => Err(Failure::new(format!(
                    "{} errored:\n{output}",
                    definition.name
                ))),
                CheckResult::Canceled => Err(Failure::new("canceled")),
            }
        }
        PluginCommand::Image(command) => super::plugin_images::run(cli, command).await,
    }
}

async fn image_plugin(
    config: &crate::config::Config,
    name: &str,
) -> Result<crate::plugins::PluginDefinition, crate::images::ImageError> {
    let images = crate::images::Images::new(&config.images, &config.security)?;
    let image = images.obtain(name, None).await?;
    images.definition(name, &image)
}

fn parse_envs(envs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    envs.iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Failure {
                status: 2,
                message: format!("--env {e}: expected NAME=VALUE"),
            }),
        })
        .collect()
}
