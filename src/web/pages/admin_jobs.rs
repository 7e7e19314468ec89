//! `/admin/jobs`: the job queue's depth (shared by every host) and its dead letters, each with
//! a retry button (administrators only).

use askama::Template;
use warp::reply::Response;

use crate::queue::QueueError;
use crate::web::Req;
use crate::web::format;
use crate::web::page::{self, Chrome, PageError, see_other};

/// Dead letters shown, newest first.
const DEAD_SHOWN: usize = 50;

struct DeadRow {
    id: String,
    kind: String,
    attempts: u32,
    error: String,
    when: String,
    when_iso: String,
}

#[derive(Template)]
#[template(path = "admin/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    admin_tab: &'static str,
    depth: Vec<(&'static str, u64)>,
    outcomes: Vec<(String, u64)>,
    dead: Vec<DeadRow>,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
}

const NOTICES: &[(&str, &str)] = &[("retried", "The job is back in the queue.")];
const PROBLEMS: &[(&str, &str)] = &[("not_found", "That dead letter is gone (retried already?).")];

impl From<QueueError> for PageError {
    fn from(e: QueueError) -> PageError {
        PageError::Internal(e.into())
    }
}

pub async fn get(req: &Req) -> Result<Response, PageError> {
    let session = req.admin_session().await?;
    let queue = &req.app.queue;
    let stats = queue.stats().await?;
    let mut dead = queue.dead_letters(DEAD_SHOWN).await?;
    dead.reverse();
    let view = JobsPage {
        chrome: session.chrome("Jobs · Administration", "admin"),
        admin_tab: "jobs",
        depth: vec![
            ("Waiting", stats.waiting),
            ("Running", stats.in_progress),
            ("Waiting to retry", stats.delayed),
            ("Dead letters", stats.dead),
        ],
        outcomes: queue
            .outcome_counts()
            .iter()
            .map(|(name, n)| (name.replace('_', " "), *n))
            .collect(),
        dead: dead
            .into_iter()
            .map(|d| DeadRow {
                id: d.id.to_string(),
                kind: d.kind,
                attempts: d.attempts,
                error: d.last_error,
                when: format::ago_now(d.failed_at),
                when_iso: format::iso(d.failed_at),
            })
            .collect(),
        notice: req.message("notice", NOTICES),
        problem: req.message("problem", PROBLEMS),
    };
    page::render(&view)
}

/// Retries dead letter `job_id`.
pub async fn post(req: &Req) -> Result<Response, PageError> {
    let (_, form) = req.admin_form().await?;
    let id = form.get("job_id").unwrap_or("");
    match req.app.queue.retry_dead(id).await {
        Ok(true) => Ok(see_other("/admin/jobs?notice=retried")),
        Ok(false) => Ok(see_other("/admin/jobs?problem=not_found")),
        Err(QueueError::InvalidJobId(_)) => Err(PageError::BadRequest("That is not a job id")),
        Err(e) => Err(e.into()),
    }
}
