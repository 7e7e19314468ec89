//! `cocov hook …`: announcing pushes from any git server. `install` writes a `post-receive` hook
//! into a bare repository; the hook runs `cocov hook post-receive`, which reads git's
//! `<old> <new> <ref>` lines and posts every updated branch head to the API.
//!
//! The token never appears on a command line (where `ps` shows it to every local user): install
//! reads it from a file or standard input, and writes it to a file that is `0600` from the moment
//! it exists; the hook passes only that file's path.

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::Failure;

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Write a post-receive hook into a bare repository that announces pushed branch heads.
    Install {
        /// The bare repository (the directory holding HEAD, objects/, hooks/).
        #[arg(long)]
        git_dir: PathBuf,
        /// The cocov API base URL, e.g. http://cocov.internal:3000
        #[arg(long)]
        url: String,
        /// The repository's name in cocov.
        #[arg(long)]
        repository: String,
        /// File holding the repository's upload token (crt_…) or a service token (cos_…); `-`
        /// reads it from standard input.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Refused: a token on the command line is visible to every local user.
        #[arg(long, hide = true)]
        token: Option<String>,
    },
    /// What the hook runs: reads `<old> <new> <ref>` lines on standard input.
    PostReceive {
        #[arg(long)]
        url: String,
        #[arg(long)]
        repository: String,
        /// File holding the token (kept out of the hook script and out of argv).
        #[arg(long)]
        token_file: PathBuf,
    },
}

const TOKEN_FILE: &str = "cocov-token";

pub async fn run(command: &HookCommand) -> Result<(), Failure> {
    match command {
        HookCommand::Install {
            git_dir,
            url,
            repository,
            token_file,
            token,
        } => {
            if token.is_some() {
                return Err(Failure::new(
                    "--token is not accepted: a token on the command line is visible to every \
                     local user; use --token-file PATH, or --token-file - and the token on \
                     standard input",
                ));
            }
            let Some(token_file) = token_file else {
                return Err(Failure::new(
                    "--token-file is required (a file holding the token, or - for standard input)",
                ));
            };
            install(git_dir, url, repository, &read_token(token_file)?)
        }
        HookCommand::PostReceive {
            url,
            repository,
            token_file,
        } => post_receive(url, repository, token_file).await,
    }
}

/// The token from `path`, or standard input for `-`.
fn read_token(path: &Path) -> Result<String, Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("--token-file {}: {e}", path.display()));
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map_err(fail)?;
    } else {
        text = std::fs::read_to_string(path).map_err(fail)?;
    }
    Ok(text.trim().to_string())
}

fn install(git_dir: &Path, url: &str, repository: &str, token: &str) -> Result<(), Failure> {
    if !git_dir.join("objects").is_dir() || !git_dir.join("HEAD").is_file() {
        return Err(Failure::new(format!(
            "--git-dir {}: not a git repository (no HEAD and objects/)",
            git_dir.display()
        )));
    }
    if !(token.starts_with("crt_") || token.starts_with("cos_"))
        || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Failure::new(
            "--token-file: expected a repository upload token (crt_…) or a service token (cos_…)",
        ));
    }
    url::Url::parse(url).map_err(|e| Failure::new(format!("--url {url}: {e}")))?;
    // git runs hooks from inside the repository, so a path relative to here would not resolve.
    let git_dir = &git_dir
        .canonicalize()
        .map_err(|e| Failure::new(format!("--git-dir {}: {e}", git_dir.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot locate the cocov binary: {e}")))?;
    let hooks = git_dir.join("hooks");
    std::fs::create_dir_all(&hooks)
        .map_err(|e| Failure::new(format!("{}: {e}", hooks.display())))?;
    let token_path = git_dir.join(TOKEN_FILE);
    write_file(&token_path, token, 0o600)?;
    let script = format!(
        "#!/bin/sh\n# Installed by `cocov hook install`: announces pushed branch heads to cocov.\nexec {} hook post-receive --url {} --repository {} --token-file {}\n",
        shell_quote(&exe.display().to_string()),
        shell_quote(url),
        shell_quote(repository),
        shell_quote(&token_path.display().to_string()),
    );
    let hook = hooks.join("post-receive");
    write_file(&hook, &script, 0o755)?;
    println!(
        "installed {} (token in {})",
        hook.display(),
        token_path.display()
    );
    Ok(())
}

/// Writes `content` to a temporary file beside `path` (created `0600` by tempfile), gives it
/// `mode`, then renames it over `path`: the file never exists with wider permissions or half
/// written, and an older, more readable file is replaced rather than reused.
fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("{}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".cocov-")
        .tempfile_in(dir)
        .map_err(fail)?;
    file.write_all(content.as_bytes()).map_err(fail)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The branch heads a push updated: `(sha, branch)`; deletions and tags are skipped.
pub fn pushed_heads(input: impl BufRead) -> Vec<(String, String)> {
    input
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (_old, new, refname) = (parts.next()?, parts.next()?, parts.next()?);
            let branch = refname.strip_prefix("refs/heads/")?;
            (!new.bytes().all(|b| b == b'0')).then(|| (new.to_string(), branch.to_string()))
        })
        .collect()
}

async fn post_receive(url: &str, repository: &str, token_file: &Path) -> Result<(), Failure> {
    let token = std::fs::read_to_string(token_file)
        .map_err(|e| Failure::new(format!("--token-file {}: {e}", token_file.display())))?;
    let token = token.trim();
    let header = if token.starts_with("crt_") {
        format!("token {token}")
    } else {
        format!("bearer {token}")
    };
    let endpoint = format!(
        "{}/v1/repositories/{}/commits",
        url.trim_end_matches('/'),
        repository
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(Failure::new)?;
    let mut failures = 0;
    for (sha, branch) in pushed_heads(std::io::stdin().lock()) {
        let result = client
            .post(&endpoint)
            .header("authorization", &header)
            .json(&serde_json::json!({"sha": sha, "branch": branch}))
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                println!("cocov: {branch} at {} announced", &sha[..sha.len().min(12)])
            }
            Ok(r) => {
                failures += 1;
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                eprintln!("cocov: announcing {branch} failed: HTTP {status}: {body}");
            }
            Err(e) => {
                failures += 1;
                eprintln!("cocov: announcing {branch} failed: {e}");
            }
        }
    }
    if failures > 0 {
        Err(Failure::new(format!(
            "{failures} branch head(s) could not be announced"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{pushed_heads, write_file};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_replaced_with_their_mode_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cocov-token");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(write_file(&path, "crt_new", 0o600).is_ok());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "crt_new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn parses_git_post_receive_input() {
        let zero = "0".repeat(40);
        let a = "a".repeat(40);
        let input = format!(
            "{zero} {a} refs/heads/main\n{a} {zero} refs/heads/gone\n{zero} {a} refs/tags/v1\n{a} {a} refs/heads/feat/x\n"
        );
        assert_eq!(
            pushed_heads(input.as_bytes()),
            vec![(a.clone(), "main".to_string()), (a, "feat/x".to_string())]
        );
    }
}
