//! The GitHub organisation's repositories, for adding them to this instance: the list to choose
//! from ([`list`]: a cached copy of `GET /orgs/{org}/repos`, refreshed by a job, searched by
//! trigram similarity and paged, each marked present or absent here) and adding one by name
//! ([`add_from_github`]). Above `repositories`, `permissions` and `webhooks`, whose work an
//! added repository starts.

mod add;
mod list;
mod refresh;
mod similarity;

pub use add::{AddFromGithubError, add_from_github};
pub use list::{
    Entry, FAILURE_TTL, OrgList, OrgRepository, PER_PAGE, Snapshot, UPDATING_TTL, page,
    request_refresh, snapshot,
};
pub use refresh::{REFRESH_JOB, RefreshJob, RefreshOrgList};
