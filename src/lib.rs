//! cocov: a self-hosted code-quality appliance.
//!
//! A push enters at the edge (the API's announce route, a GitHub webhook, the CLI), becomes a
//! commit row and a queued job, and flows one way through the stages below: the commit is
//! fetched and archived, its checks run and its coverage is applied, its statuses are posted,
//! and its numbers reach the branches, badges and statistics. Every module uses only modules
//! listed before it in this map; `tests/architecture.rs` fails on any cycle.
//!
//! Foundations (no domain knowledge):
//!
//! - [`config`]: the TOML file and `COCOV_*` overrides, validated, with the value parsers
//!   other modules read (trusted proxies, git transports, the GitHub App key).
//! - [`metrics`], [`paging`], [`audit`]: Prometheus registry, page requests, the audit log.
//! - [`upload_budget`]: what coverage uploads share process-wide (decompression slots, bytes in
//!   flight).
//! - [`db`], [`kv`], [`storage`]: PostgreSQL, Redis, the blob store (filesystem or S3).
//! - [`outage`]: whether an error means a dependency is down (waited out) or a bug.
//! - [`queue`]: the job queue on Redis Streams with its typed job kinds ([`queue::JobKind`]).
//! - [`auth`], [`secrets`]: tokens, users and request actors, sign-in (local, OIDC); sealed
//!   secrets and grants.
//!
//! Sources (reading what a commit holds):
//!
//! - [`git`]: the git CLI under a transport policy: fetch one commit, read files, archive.
//! - [`archive`]: the one owner of commit archives in the blob store: names, writes, verifies
//!   (SHA-256, on every read) and reads them.
//! - [`manifest`]: `.cocov.yaml`, parsed and validated with the original's messages.
//! - [`github`]: the GitHub App client and webhook signatures.
//! - [`app`]: the handles above bundled for the daemon; [`http`]: the HTTP plumbing (server
//!   stack, JSON errors, input guards, outage answers) every listener shares.
//!
//! The pipeline, in data-flow order (the two outlets every stage reports to come right after
//! the commit that feeds them):
//!
//! - [`repositories`], [`permissions`], [`memberships`]: what is checked, and who may see it
//!   (members synced from GitHub; members granted on standalone repositories).
//! - [`commits`]: a push registers a commit and moves its branch; ingestion archives it and
//!   owns the commit's ingest state and the branch head numbers with their history.
//! - [`badges`], [`statuses`]: the outlets. The badge listener and its cache (invalidated
//!   when numbers change), and the `cocov` and `cocov/coverage` commit statuses with their one
//!   target URL rule, posted to GitHub by a job.
//! - [`issues`], [`plugins`], [`sandbox`], [`images`], [`checks`]: a commit's check set, run in
//!   the sandbox by plugins (definitions, or images pulled into the image store) whose reports
//!   become issues.
//! - [`cache`]: the cache service plugins reach from their sandbox: per-repository artifacts
//!   and shared tools, a quota with least-recently-used eviction, the running set's job id as
//!   the credential.
//! - [`coverage`]: reports parsed, mapped onto the commit's archive, stored, gated.
//! - [`branches`], [`stats`]: the read side of branches and their history.
//!
//! Wiring and edges:
//!
//! - [`webhooks`]: GitHub deliveries turned into rows and jobs, and new repositories' first
//!   commit.
//! - [`org_repos`]: the GitHub organisation's repositories to add (a cached copy of the list,
//!   refreshed by a job, searched and paged) and adding one (registered, members synced, first
//!   commit checked).
//! - [`github_sign_in`]: a GitHub OAuth code turned into a user (organisation membership,
//!   verified e-mails linking their commits, sealed token, permissions synced at once).
//! - [`jobs`]: every job kind with its handler, and the chaining of one stage to the next
//!   (after ingestion: statuses, checks, early coverage), so no stage calls up the pipeline.
//! - [`reconcile`]: PostgreSQL as the source of truth for work: what it says is pending and no
//!   queue holds is queued again (at start-up, periodically, when Redis lost its data).
//! - [`api`]: the JSON API routes, thin handlers mapping domain errors to HTTP.
//! - [`web`]: the server-rendered web UI on the API listener (pages, assets, charts), using
//!   the session cookie of [`api`] and reading through the domain modules.
//! - [`report`], [`backup`]: the CI reporter and whole-installation backups.
//! - [`daemon`], [`cli`]: the process (roles, signals, systemd) and the `cocov` command.
//!
//! `README.md` has the same map as a tree.

pub mod api;
pub mod app;
pub mod archive;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod badges;
pub mod branches;
pub mod cache;
pub mod checks;
pub mod cli;
pub mod commits;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod db;
pub mod git;
pub mod github;
pub mod github_sign_in;
pub mod http;
pub mod images;
pub mod issues;
pub mod jobs;
pub mod kv;
pub mod manifest;
pub mod memberships;
pub mod metrics;
pub mod org_repos;
pub mod outage;
pub mod paging;
pub mod permissions;
pub mod plugins;
pub mod queue;
pub mod reconcile;
pub mod report;
pub mod repositories;
pub mod sandbox;
pub mod secrets;
pub mod stats;
pub mod statuses;
pub mod storage;
pub mod upload_budget;
pub mod web;
pub mod webhooks;
