//! The CI reporter (`cocov report prepare|submit`), compatible with the original
//! coverage-reporter's flags, environment and upload (`POST /v1/reports`, `Authorization: token
//! crt_…`, `{commit_sha, data: {path: base64 line map}}`, success is exactly 204).
//!
//! `prepare` (optional) records a hash of every file and the commit before the tests run;
//! `submit` then looks only at files that are new or changed since. Without `prepare`, `submit`
//! looks at every file of the checkout, and `--file` names reports directly. Reports are
//! recognised by their content (all five formats), parsed here, mapped onto the checkout's
//! files, and uploaded line-encoded (gzip-compressed when large, with progress).

mod commit;
mod upload;

pub use commit::commit_sha;
pub use upload::upload;

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::coverage::budget::Budget;
use crate::coverage::paths::GoModule;
use crate::coverage::{self, Format, Mode, Report, Totals, Upload, detect};

/// Directories never hashed or searched (any path component, not only at the root).
const SKIPPED_DIRS: [&str; 8] = [
    ".git",
    ".hg",
    ".bzr",
    ".svn",
    ".cargo",
    ".idea",
    ".nova",
    "node_modules",
];

/// What `prepare` leaves for `submit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    /// Relative path → SHA-256 hex at prepare time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    pub pwd: PathBuf,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha: String,
}

/// The state directory of a repository token. Named after a hash of the token, so the token
/// does not appear in `/tmp` paths (the original used the token itself).
pub fn state_dir(token: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    std::env::temp_dir().join(format!("cocov-{}", &digest[..16]))
}

/// The checkout root: git's top level when in a work tree, else the current directory.
pub fn checkout_root() -> Result<PathBuf, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let top = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(&cwd)
        .output();
    match top {
        Ok(out) if out.status.success() => {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok(if path.is_empty() {
                cwd
            } else {
                PathBuf::from(path)
            })
        }
        _ => Ok(cwd),
    }
}

/// Every regular file under `root`, relative with `/` separators, sorted; symlinks and
/// unreadable entries are skipped rather than aborting the run.
pub fn list_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let name = entry.file_name();
            if kind.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    walk(root, &path, out);
                }
            } else if kind.is_file()
                && let Ok(rel) = path.strip_prefix(root)
            {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn hash_file(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hex::encode(hasher.finalize()))
}

/// `prepare`: records the tree's hashes and the commit in the token's state directory.
pub fn prepare(token: &str, commitish: Option<&str>) -> Result<Meta, String> {
    let root = checkout_root()?;
    let sha = commit_sha(commitish, &root)?;
    let files = list_files(&root)
        .into_iter()
        .filter_map(|rel| hash_file(&root.join(&rel)).map(|h| (rel, h)))
        .collect();
    let meta = Meta {
        files,
        pwd: root,
        sha,
    };
    let dir = state_dir(token);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
    let path = dir.join("meta.json");
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(meta)
}

/// The metadata `prepare` left, if it ran.
pub fn load_meta(token: &str) -> Option<Meta> {
    let bytes = std::fs::read(state_dir(token).join("meta.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Files of the checkout that hold a coverage report, recognised by content: those new or
/// changed since `prepare` when it ran, else all. Sorted, so the choice is deterministic.
pub fn find_reports(root: &Path, meta: Option<&Meta>) -> Vec<PathBuf> {
    list_files(root)
        .into_iter()
        .filter(|rel| match meta {
            Some(m) => m.files.get(rel) != hash_file(&root.join(rel)).as_ref(),
            None => true,
        })
        .map(|rel| root.join(rel))
        .filter(|path| sniff(path).is_some())
        .collect()
}

fn sniff(path: &Path) -> Option<Format> {
    let file = std::fs::File::open(path).ok()?;
    let mut head = Vec::with_capacity(coverage::SNIFF_BYTES);
    file.take(coverage::SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .ok()?;
    detect::detect(&head)
}

/// One parsed report.
pub struct Parsed {
    pub path: PathBuf,
    pub report: Report,
}

pub fn parse_file(path: &Path, format: Option<Format>) -> Result<Parsed, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let report = coverage::parse(format, BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Parsed {
        path: path.to_path_buf(),
        report,
    })
}

/// "N files, L lines, C covered, P%" with two decimals, as the reporter prints it.
pub fn describe(files: usize, t: &Totals) -> String {
    format!(
        "{files} files, {} lines, {} covered, {}%",
        t.lines_total,
        t.lines_covered,
        coverage::gate::two_decimals(t.percent())
    )
}

/// What will be uploaded: `data` keyed by repository path where the report's path matched a
/// file of the checkout (the server maps the others itself), and the report paths that matched
/// nothing here.
pub struct Payload {
    pub data: serde_json::Map<String, serde_json::Value>,
    pub unmatched: Vec<String>,
    pub totals: Totals,
}

pub fn payload(reports: Vec<Parsed>, root: &Path) -> Payload {
    let files = list_files(root);
    let modules: Vec<GoModule> = files
        .iter()
        .filter(|f| *f == "go.mod" || f.ends_with("/go.mod"))
        .filter_map(|f| {
            let text = std::fs::read_to_string(root.join(f)).ok()?;
            GoModule::from_go_mod(f, &text)
        })
        .collect();
    let mut combined = coverage::merge::CommitCoverage::new();
    let mut unmatched = Vec::new();
    for parsed in reports {
        let upload = Upload::from_report(parsed.report, Mode::Merge);
        // The reporter maps on the CI machine, with all the time it needs.
        let mapping = upload
            .map(&files, &modules, &Budget::unlimited())
            .unwrap_or_default();
        coverage::merge::merge_into(&mut combined, &upload.remap(&mapping));
        for path in mapping.unmatched {
            if let Some(file) = upload.files.get(&path) {
                coverage::merge::merge_into(&mut combined, &[(path.clone(), file.clone())].into());
            }
            unmatched.push(path);
        }
    }
    let totals = coverage::merge::totals(&combined);
    let data = combined
        .into_iter()
        .map(|(path, file)| (path, serde_json::Value::from(file.encode_wire())))
        .collect();
    Payload {
        data,
        unmatched,
        totals,
    }
}
