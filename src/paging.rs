//! Pagination of lists: the requested page, validated, and a page of results with its totals.
//! The original answered a one-element array with URLs and silently replaced bad values; here
//! the totals are an object and a bad value is an error the caller can see.

use serde::Serialize;

pub const DEFAULT_PER_PAGE: u32 = 25;
pub const MAX_PER_PAGE: u32 = 100;
/// Far beyond any real list; keeps `offset` well inside PostgreSQL's bigint.
const MAX_PAGE: u32 = 1_000_000;

/// A 1-based page number and a page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u32,
    pub per_page: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("The parameter \"page\" must be a whole number from 1 to {MAX_PAGE}, got `{0}`")]
    InvalidPage(String),
    #[error(
        "The parameter \"per_page\" must be a whole number from 1 to {MAX_PER_PAGE}, got `{0}`"
    )]
    InvalidPerPage(String),
}

impl Default for Page {
    fn default() -> Self {
        Page {
            number: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl Page {
    /// From the raw `page` and `per_page` parameters; absent means the default.
    pub fn parse(page: Option<&str>, per_page: Option<&str>) -> Result<Page, PageError> {
        let number = match page {
            None => 1,
            Some(raw) => {
                in_range(raw, MAX_PAGE).ok_or_else(|| PageError::InvalidPage(raw.into()))?
            }
        };
        let per_page = match per_page {
            None => DEFAULT_PER_PAGE,
            Some(raw) => {
                in_range(raw, MAX_PER_PAGE).ok_or_else(|| PageError::InvalidPerPage(raw.into()))?
            }
        };
        Ok(Page { number, per_page })
    }

    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.number - 1) * i64::from(self.per_page)
    }
}

fn in_range(raw: &str, max: u32) -> Option<u32> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
}

/// Where a page sits in the whole list, as the API renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paging {
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
    pub total_pages: i64,
    pub prev_page: Option<u32>,
    pub next_page: Option<u32>,
}

impl Paging {
    pub fn new(page: Page, total: i64) -> Paging {
        let per_page = i64::from(page.per_page);
        let total_pages = (total + per_page - 1) / per_page;
        Paging {
            page: page.number,
            per_page: page.per_page,
            total,
            total_pages,
            // A page past the end still points back at the last real one.
            prev_page: (page.number > 1).then(|| (page.number - 1).min(total_pages.max(1) as u32)),
            next_page: (i64::from(page.number) < total_pages).then_some(page.number + 1),
        }
    }
}

/// One page of a list and the list's size.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub paging: Paging,
}

impl<T> Paged<T> {
    /// One page's `items` of a list of `total`.
    pub fn new(items: Vec<T>, page: Page, total: i64) -> Paged<T> {
        Paged {
            items,
            paging: Paging::new(page, total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated() {
        assert_eq!(Page::parse(None, None), Ok(Page::default()));
        assert_eq!(
            Page::parse(Some("3"), Some("100")),
            Ok(Page {
                number: 3,
                per_page: 100
            })
        );
        for bad in ["0", "-1", "x", "", "1.5", "1000001"] {
            assert!(
                matches!(Page::parse(Some(bad), None), Err(PageError::InvalidPage(_))),
                "{bad}"
            );
        }
        for bad in ["0", "101", "ten"] {
            assert!(
                matches!(
                    Page::parse(None, Some(bad)),
                    Err(PageError::InvalidPerPage(_))
                ),
                "{bad}"
            );
        }
        let page = Page::parse(Some("3"), Some("10")).unwrap();
        assert_eq!((page.offset(), page.limit()), (20, 10));
    }

    #[test]
    fn totals_and_neighbours() {
        let p = |number, per_page| Page { number, per_page };
        let first = Paging::new(p(1, 10), 25);
        assert_eq!(
            (first.total_pages, first.prev_page, first.next_page),
            (3, None, Some(2))
        );
        let last = Paging::new(p(3, 10), 25);
        assert_eq!((last.prev_page, last.next_page), (Some(2), None));
        let empty = Paging::new(p(1, 10), 0);
        assert_eq!(
            (empty.total_pages, empty.prev_page, empty.next_page),
            (0, None, None)
        );
        let beyond = Paging::new(p(9, 10), 25);
        assert_eq!((beyond.prev_page, beyond.next_page), (Some(3), None));
    }
}
