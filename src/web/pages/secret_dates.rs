//! How a secret's history reads wherever secrets are listed (repository settings,
//! `/admin/secrets`): never its value, only who added it and when it changed and was used.

use crate::secrets::SecretInfo;
use crate::web::format;

/// "Created 3 days ago by ada · changed 1 hour ago" and "Last used 5 minutes ago".
pub fn of(s: &SecretInfo) -> (String, String) {
    let by = s
        .created_by
        .as_ref()
        .map(|by| format!(" by {by}"))
        .unwrap_or_default();
    let changed = if s.updated_at > s.created_at {
        format!(" · changed {}", format::ago_now(s.updated_at))
    } else {
        String::new()
    };
    let created = format!("Created {}{by}{changed}", format::ago_now(s.created_at));
    let used = s.last_used_at.map_or_else(
        || "Never used".to_string(),
        |at| format!("Last used {}", format::ago_now(at)),
    );
    (created, used)
}
