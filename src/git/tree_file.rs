//! One file of a fetched commit, read from git's objects only when it is an ordinary file of
//! bounded size. A symbolic link's blob is its target's text, so reading it as a file would
//! hand that text on as content; a link, a submodule or a directory is reported as such instead,
//! and nothing is ever read from the host through it.

use std::time::Duration;

use super::{GitError, Scratch};

/// What a path of the commit holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeFile {
    Absent,
    Regular(Vec<u8>),
    /// A regular file larger than the cap (its size in bytes).
    TooLarge(u64),
    /// Something other than a regular file: "a symbolic link", "a submodule", "a directory".
    NotRegular(&'static str),
}

impl Scratch {
    /// The file at `path` in `sha`, read only when it is a regular file of at most `max_bytes`.
    pub async fn read_tree_file(
        &self,
        sha: &str,
        path: &str,
        max_bytes: u64,
        timeout: Duration,
    ) -> Result<TreeFile, GitError> {
        let listing = self
            .git(
                &[
                    "ls-tree",
                    "-z",
                    "--long",
                    "--end-of-options",
                    sha,
                    "--",
                    path,
                ],
                &[],
                timeout,
            )
            .await?;
        let Some(entry) = parse_entry(&listing, path) else {
            return Ok(TreeFile::Absent);
        };
        match entry.mode {
            "100644" | "100755" | "100664" => {}
            "120000" => return Ok(TreeFile::NotRegular("a symbolic link")),
            "160000" => return Ok(TreeFile::NotRegular("a submodule")),
            "040000" => return Ok(TreeFile::NotRegular("a directory")),
            _ => return Ok(TreeFile::NotRegular("not a regular file")),
        }
        if entry.size > max_bytes {
            return Ok(TreeFile::TooLarge(entry.size));
        }
        let bytes = self
            .git(
                &["cat-file", "blob", "--end-of-options", entry.object],
                &[],
                timeout,
            )
            .await?;
        if bytes.len() as u64 > max_bytes {
            return Ok(TreeFile::TooLarge(bytes.len() as u64));
        }
        Ok(TreeFile::Regular(bytes))
    }
}

struct Entry<'a> {
    mode: &'a str,
    object: &'a str,
    size: u64,
}

/// `<mode> SP <type> SP <object> SP+ <size or -> TAB <path> NUL`, for exactly `path`.
fn parse_entry<'a>(listing: &'a [u8], path: &str) -> Option<Entry<'a>> {
    listing
        .split(|b| *b == 0)
        .filter_map(|record| std::str::from_utf8(record).ok())
        .find_map(|record| {
            let (meta, name) = record.split_once('\t')?;
            if name != path {
                return None;
            }
            let mut fields = meta.split_whitespace();
            let mode = fields.next()?;
            let _kind = fields.next()?;
            let object = fields.next()?;
            let size = fields.next()?.parse().unwrap_or(0);
            Some(Entry { mode, object, size })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_tree_records_are_read_for_the_exact_path() {
        let listing =
            b"100644 blob 3b18e512dba79e4c8300dd08aeb37f8e728b8dad      12\t.cocov.yaml\0";
        let e = parse_entry(listing, ".cocov.yaml").unwrap();
        assert_eq!((e.mode, e.size), ("100644", 12));
        assert_eq!(e.object, "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");
        assert!(parse_entry(listing, "other").is_none());
        let link = b"120000 blob 1111111111111111111111111111111111111111       9\t.cocov.yaml\0";
        assert_eq!(parse_entry(link, ".cocov.yaml").unwrap().mode, "120000");
        let tree = b"040000 tree 2222222222222222222222222222222222222222       -\t.cocov.yaml\0";
        assert_eq!(parse_entry(tree, ".cocov.yaml").unwrap().size, 0);
    }
}
