//! Plugins: which tool a manifest's `plugin:` names, how it runs, and how its report becomes
//! issues.
//!
//! A plugin is a definition (one TOML file: command, arguments, report format, limits) rather
//! than a container image. Built-in definitions ship inside the binary (from
//! `packaging/plugins.d/`); files in `worker.plugins_dir` add more or replace them by name.
//! Plugins written for the original Cocov keep working: their executable is the `command` and
//! their NUL-separated JSON output file is the `cocov` format.

mod catalog;
mod definition;
pub mod report;

pub use catalog::{Catalog, CatalogError, Origin, UnknownPlugin};
pub use definition::{DefinitionError, ImageRoot, OutputFormat, PluginDefinition, ReportSource};
