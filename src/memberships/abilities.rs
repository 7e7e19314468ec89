//! What an actor may do with a repository's settings, from its level there: the one place the
//! settings route, the settings page and the routes that act agree on.

use serde::Serialize;

use super::Level;
use crate::auth::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SettingsPermissions {
    /// Regenerate the upload token: repository admins.
    pub can_regen_token: bool,
    /// The original's GitHub sync; repositories follow GitHub's webhooks here, so never.
    pub can_sync_github: bool,
    /// Delete the repository: site administrators.
    pub can_delete: bool,
    /// Repository secrets: maintainers.
    pub can_manage_secrets: bool,
    /// Members (standalone repositories): repository admins.
    pub can_manage_members: bool,
    /// Evict or purge the artifact cache: repository admins. Not in the settings route's JSON,
    /// which keeps the original's fields; the cache routes answer 403 on their own.
    #[serde(skip)]
    pub can_manage_cache: bool,
}

impl SettingsPermissions {
    /// From the actor and its level on the repository (`None`: not a member, or a service
    /// token, which is automation rather than a person with a role).
    pub fn of(actor: &Actor, level: Option<Level>) -> SettingsPermissions {
        let admin = actor.is_admin();
        let level = if actor.user_id().is_some() {
            level
        } else {
            None
        };
        let at_least = |wanted: Level| admin || level >= Some(wanted);
        SettingsPermissions {
            can_regen_token: at_least(Level::Admin),
            can_sync_github: false,
            can_delete: admin,
            can_manage_secrets: at_least(Level::Maintain),
            can_manage_members: at_least(Level::Admin),
            can_manage_cache: at_least(Level::Admin),
        }
    }
}
