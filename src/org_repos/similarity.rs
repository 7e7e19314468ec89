//! The organisation list's search: trigram similarity of a search term and a repository name,
//! as the original computed it (a Ruby copy of pg_trgm): each word is padded with two spaces in
//! front and one behind, and the score is |A ∩ B| / |A ∪ B| over the two sets of trigrams.

use std::collections::HashSet;

/// Names scoring below this are not results.
pub const THRESHOLD: f64 = 0.3;

/// GitHub caps repository names at 100 characters; a longer search term is cut there, so what
/// a caller sends bounds neither the memory nor the time a search takes.
pub const MAX_TERM_CHARS: usize = 100;

/// A search term, its trigrams computed once for the whole list.
pub struct Term(HashSet<[char; 3]>);

impl Term {
    pub fn new(text: &str) -> Term {
        let end = text
            .char_indices()
            .nth(MAX_TERM_CHARS)
            .map_or(text.len(), |(i, _)| i);
        Term(trigrams(&text[..end]))
    }

    /// The similarity of this term and `name`, from 0 to 1.
    pub fn score(&self, name: &str) -> f64 {
        let name = trigrams(name);
        let union = self.0.union(&name).count();
        if union == 0 {
            return 0.0;
        }
        self.0.intersection(&name).count() as f64 / union as f64
    }
}

/// The similarity of `a` and `b`, from 0 to 1.
#[cfg(test)]
fn similarity(a: &str, b: &str) -> f64 {
    Term::new(a).score(b)
}

/// The trigrams of every word of `text`. Words are runs of letters and digits, lowercased, so
/// `repo_2`, `repo-2` and `Repo 2` are the same two words (the original split on `_` too).
fn trigrams(text: &str) -> HashSet<[char; 3]> {
    let mut set = HashSet::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let padded: Vec<char> = "  "
            .chars()
            .chain(word.chars().flat_map(char::to_lowercase))
            .chain(std::iter::once(' '))
            .collect();
        set.extend(padded.windows(3).map(|w| [w[0], w[1], w[2]]));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_the_originals_test_values() {
        assert!((similarity("word", "two words") - 4.0 / 11.0).abs() < 1e-9);
        assert!((similarity("word", "words") - 4.0 / 7.0).abs() < 1e-9);
        assert_eq!(similarity("", ""), 0.0);
        assert_eq!(similarity("Repo_2", "repo 2"), 1.0);
        // The original's example: "rep 2" finds repo_2 before repo_20 and repo_1.
        let term = "rep 2";
        assert!(similarity(term, "repo_2") > similarity(term, "repo_20"));
        assert!(similarity(term, "repo_2") > similarity(term, "repo_1"));
        assert!(similarity(term, "unrelated") < THRESHOLD);
    }

    #[test]
    fn a_long_term_is_cut_at_the_longest_name() {
        let long = "ab ".repeat(10_000);
        let term = Term::new(&long);
        assert_eq!(term.0, trigrams(&long[..MAX_TERM_CHARS]));
        assert!(Term::new(&"é".repeat(500)).0.len() <= MAX_TERM_CHARS + 2);
    }
}
