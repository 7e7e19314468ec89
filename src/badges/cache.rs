//! Rendered badges in memory, so that a hit answers without PostgreSQL, rendering or hashing.
//!
//! Entries are dropped when the numbers behind them change (see `invalidate.rs`), and expire
//! after a bounded TTL as a safety net for a missed invalidation. Unknown repositories are
//! cached too, briefly, so that a scanner guessing names cannot make every request a query.
//! The number of entries is bounded.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use sha2::{Digest, Sha256};

use super::svg::{Badge, Kind};

/// Where a badge is looked up. The repository and branch are kept exactly as requested: two
/// spellings that PostgreSQL's citext treats as equal get an entry each (both correct), and two
/// that it does not can never share one. Invalidation goes by repository id, which every
/// positive entry records, so it reaches every spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub repository: String,
    /// `None` for the repository's default branch.
    pub branch: Option<String>,
    pub kind: Kind,
}

/// A rendered badge and its strong validator, plus the same badge gzip-compressed once here:
/// the listener's compression middleware would otherwise gzip or zstd every hit again for
/// clients that accept it (browsers, image proxies), at a fifth of the throughput.
#[derive(Debug)]
pub struct Rendered {
    pub svg: Bytes,
    /// `"<first 128 bits of the SVG's SHA-256, hex>"`: equal bodies, equal tags, on every host.
    pub etag: HeaderValue,
    /// The gzip representation and its own tag (a strong tag names one encoding); `None` only
    /// if compression failed, and then every client gets the plain SVG.
    pub gzip: Option<(Bytes, HeaderValue)>,
}

impl Rendered {
    pub fn new(svg: String) -> Rendered {
        let digest = hex::encode(&Sha256::digest(svg.as_bytes())[..16]);
        // Quotes, hex digits and `-` are always a valid header value; the fallback is unreachable.
        let tag =
            |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("\"0\""));
        let gzip = match gzip(svg.as_bytes()) {
            Ok(bytes) => Some((Bytes::from(bytes), tag(format!("\"{digest}-gzip\"")))),
            Err(e) => {
                tracing::warn!(error = %e, "badge could not be gzip-compressed");
                None
            }
        };
        Rendered {
            etag: tag(format!("\"{digest}\"")),
            svg: Bytes::from(svg),
            gzip,
        }
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// What the cache answers for a key.
#[derive(Debug, Clone)]
pub enum Answer {
    Badge(Arc<Rendered>),
    UnknownRepository,
}

/// What a load from the database found: the repository, with the branch's numbers (each `None`
/// when the branch or the value is missing), or no repository of that name.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    UnknownRepository,
    Repository {
        id: i64,
        coverage: Option<f64>,
        issues: Option<i64>,
    },
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    /// `None` for an unknown repository.
    repository_id: Option<i64>,
    expires_at: Instant,
}

/// Sizes and lifetimes; see `mod.rs` for the values the daemon uses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub ttl: Duration,
    pub negative_ttl: Duration,
    pub max_entries: usize,
}

/// Concurrent loads are serialised per stripe: a burst of misses for one badge (just after an
/// invalidation of a popular badge) costs one query, and at most this many run at once.
const STRIPES: usize = 32;

pub struct BadgeCache {
    entries: RwLock<HashMap<CacheKey, Entry>>,
    /// Bumped (under the write lock) by every invalidation. A load that saw another epoch when
    /// it started may have read the old numbers, so its result is answered but not stored.
    epoch: AtomicU64,
    limits: Limits,
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: RandomState,
}

impl BadgeCache {
    pub fn new(limits: Limits) -> BadgeCache {
        BadgeCache {
            entries: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            limits,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    // A panic while holding the lock cannot leave the map half-updated in a way that matters
    // (each operation is a single insert/remove/retain), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<CacheKey, Entry>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<CacheKey, Entry>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh entry, if any: the hit path, memory only.
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<Answer> {
        self.read()
            .get(key)
            .filter(|e| e.expires_at > now)
            .map(|e| e.answer.clone())
    }

    /// The entry for `key`, loading (and caching) it on a miss. The load fills both kinds of
    /// badge for the repository and branch at once: READMEs usually show both.
    pub async fn get_or_load<F, Fut, E>(&self, key: CacheKey, load: F) -> Result<Answer, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded, E>>,
    {
        if let Some(answer) = self.get(&key, Instant::now()) {
            return Ok(answer);
        }
        let stripe = self.hasher.hash_one((&key.repository, &key.branch)) as usize % STRIPES;
        let _serialised = self.stripes[stripe].lock().await;
        // Whoever held the stripe before may have loaded this very key.
        if let Some(answer) = self.get(&key, Instant::now()) {
            return Ok(answer);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded = load().await?;
        Ok(self.store(key, &loaded, epoch, Instant::now()))
    }

    /// Renders what was loaded, stores it unless an invalidation happened since `epoch`, and
    /// returns the answer for `key`.
    fn store(&self, key: CacheKey, loaded: &Loaded, epoch: u64, now: Instant) -> Answer {
        let (answer, sibling) = match *loaded {
            Loaded::UnknownRepository => (Answer::UnknownRepository, None),
            Loaded::Repository {
                id,
                coverage,
                issues,
            } => {
                let render = |kind| {
                    let badge = match kind {
                        Kind::Coverage => Badge::coverage(coverage),
                        Kind::Issues => Badge::issues(issues),
                    };
                    Answer::Badge(Arc::new(Rendered::new(badge.render())))
                };
                let other = match key.kind {
                    Kind::Coverage => Kind::Issues,
                    Kind::Issues => Kind::Coverage,
                };
                (render(key.kind), Some((other, render(other), id)))
            }
        };
        let mut entries = self.write();
        // Checked under the write lock, which invalidations also take to bump the epoch and
        // drop entries: either the invalidation came first (skip) or it will drop what we add.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return answer;
        }
        if entries.len() + 2 > self.limits.max_entries {
            self.make_room(&mut entries, now);
        }
        let (repository_id, ttl) = match &sibling {
            Some((_, _, id)) => (Some(*id), self.limits.ttl),
            None => (None, self.limits.negative_ttl),
        };
        if let Some((other, other_answer, _)) = sibling {
            let other_key = CacheKey {
                kind: other,
                ..key.clone()
            };
            entries.insert(
                other_key,
                Entry {
                    answer: other_answer,
                    repository_id,
                    expires_at: now + ttl,
                },
            );
        }
        entries.insert(
            key,
            Entry {
                answer: answer.clone(),
                repository_id,
                expires_at: now + ttl,
            },
        );
        answer
    }

    /// Frees at least a quarter of the room: expired entries first, then unknown-repository
    /// entries (cheap to recompute and the likely flood), then arbitrary ones.
    fn make_room(&self, entries: &mut HashMap<CacheKey, Entry>, now: Instant) {
        let target = self.limits.max_entries - self.limits.max_entries / 4;
        entries.retain(|_, e| e.expires_at > now);
        if entries.len() > target {
            entries.retain(|_, e| e.repository_id.is_some());
        }
        if entries.len() > target {
            let excess = entries.len() - target;
            let victims: Vec<CacheKey> = entries.keys().take(excess).cloned().collect();
            for k in victims {
                entries.remove(&k);
            }
        }
    }

    /// Drops every badge of the repository (all branches, kinds and spellings) and any cached
    /// "unknown repository" for its name. A repository has few entries, and recomputing one is
    /// one indexed query, so this does not try to be narrower by branch.
    pub fn invalidate_repository(&self, repository_id: i64, repository_name: &str) {
        let name = repository_name.to_lowercase();
        let mut entries = self.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.retain(|key, e| match e.repository_id {
            Some(id) => id != repository_id,
            None => key.repository.to_lowercase() != name,
        });
    }

    /// Drops everything: after the invalidation channel was down, messages may have been missed.
    pub fn clear(&self) {
        let mut entries = self.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    fn limits() -> Limits {
        Limits {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_entries: 100,
        }
    }

    fn key(repo: &str, kind: Kind) -> CacheKey {
        CacheKey {
            repository: repo.into(),
            branch: None,
            kind,
        }
    }

    fn repo(id: i64, coverage: f64) -> Loaded {
        Loaded::Repository {
            id,
            coverage: Some(coverage),
            issues: Some(3),
        }
    }

    fn svg(answer: &Answer) -> String {
        match answer {
            Answer::Badge(r) => String::from_utf8(r.svg.to_vec()).expect("utf-8"),
            Answer::UnknownRepository => "unknown repository".into(),
        }
    }

    async fn load_counting(
        cache: &BadgeCache,
        k: CacheKey,
        value: Loaded,
        calls: &AtomicUsize,
    ) -> Answer {
        cache
            .get_or_load(k, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(value)
            })
            .await
            .unwrap_or_else(|e| match e {})
    }

    #[tokio::test]
    async fn a_miss_loads_once_and_fills_both_kinds() {
        let cache = BadgeCache::new(limits());
        let calls = AtomicUsize::new(0);
        let a = load_counting(&cache, key("r", Kind::Coverage), repo(1, 97.0), &calls).await;
        assert!(svg(&a).contains(">97%</text>"));
        let b = load_counting(&cache, key("r", Kind::Issues), repo(1, 0.0), &calls).await;
        assert!(
            svg(&b).contains(">3</text>"),
            "issues came with the coverage load"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidation_drops_every_entry_of_the_repository_and_only_those() {
        let cache = BadgeCache::new(limits());
        let calls = AtomicUsize::new(0);
        load_counting(&cache, key("Repo", Kind::Coverage), repo(1, 50.0), &calls).await;
        load_counting(&cache, key("repo", Kind::Coverage), repo(1, 50.0), &calls).await;
        load_counting(&cache, key("other", Kind::Coverage), repo(2, 50.0), &calls).await;
        assert_eq!(cache.len(), 6);
        cache.invalidate_repository(1, "repo");
        assert_eq!(cache.len(), 2);
        assert!(
            cache
                .get(&key("other", Kind::Issues), Instant::now())
                .is_some()
        );
    }

    #[tokio::test]
    async fn unknown_repositories_are_cached_briefly_and_dropped_by_name() {
        let cache = BadgeCache::new(limits());
        let calls = AtomicUsize::new(0);
        let k = key("NEW", Kind::Coverage);
        let a = load_counting(&cache, k.clone(), Loaded::UnknownRepository, &calls).await;
        assert!(matches!(a, Answer::UnknownRepository));
        let now = Instant::now();
        assert!(cache.get(&k, now).is_some());
        assert!(
            cache.get(&k, now + Duration::from_secs(6)).is_none(),
            "negative TTL"
        );
        // Creating the repository invalidates by its (case-insensitive) name.
        cache.invalidate_repository(7, "new");
        assert!(cache.get(&k, now).is_none());
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let cache = BadgeCache::new(limits());
        let calls = AtomicUsize::new(0);
        let k = key("r", Kind::Coverage);
        load_counting(&cache, k.clone(), repo(1, 97.0), &calls).await;
        assert!(
            cache
                .get(&k, Instant::now() + Duration::from_secs(59))
                .is_some()
        );
        assert!(
            cache
                .get(&k, Instant::now() + Duration::from_secs(61))
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_load_that_raced_an_invalidation_is_answered_but_not_stored() {
        let cache = BadgeCache::new(limits());
        let k = key("r", Kind::Coverage);
        let answer = cache
            .get_or_load(k.clone(), || async {
                // The numbers change (and are invalidated) while this load reads the old ones.
                cache.invalidate_repository(1, "r");
                Ok::<_, Infallible>(repo(1, 10.0))
            })
            .await
            .unwrap_or_else(|e| match e {});
        assert!(svg(&answer).contains(">10%</text>"));
        assert!(
            cache.get(&k, Instant::now()).is_none(),
            "stale result was stored"
        );
    }

    #[tokio::test]
    async fn the_size_stays_bounded() {
        let cache = BadgeCache::new(Limits {
            max_entries: 20,
            ..limits()
        });
        let calls = AtomicUsize::new(0);
        for i in 0..100 {
            let k = key(&format!("r{i}"), Kind::Coverage);
            load_counting(&cache, k, repo(i, 1.0), &calls).await;
            assert!(cache.len() <= 20, "{} entries", cache.len());
        }
        // The most recent load is always present.
        assert!(
            cache
                .get(&key("r99", Kind::Issues), Instant::now())
                .is_some()
        );
    }

    #[test]
    fn etags_are_strong_and_follow_the_body() {
        let a = Rendered::new("<svg>a</svg>".into());
        let b = Rendered::new("<svg>a</svg>".into());
        let c = Rendered::new("<svg>b</svg>".into());
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
        let tag = a.etag.to_str().expect("ascii");
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 34,
            "{tag}"
        );
    }

    #[test]
    fn the_gzip_representation_decodes_to_the_svg_and_has_its_own_tag() {
        use std::io::Read;
        let svg = Badge::coverage(Some(97.0)).render();
        let rendered = Rendered::new(svg.clone());
        let (gz, gz_tag) = rendered.gzip.as_ref().expect("gzip");
        assert!(gz.len() < rendered.svg.len());
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut decoded)
            .expect("gunzip");
        assert_eq!(decoded, svg);
        assert_ne!(gz_tag, &rendered.etag);
    }
}
