//! The audit log: who did what to which object, for every administrative action.

use serde_json::Value;
use sqlx::PgExecutor;

/// Who acted.
#[derive(Debug, Clone)]
pub struct AuditActor {
    kind: &'static str,
    user_id: Option<i64>,
    label: String,
}

impl AuditActor {
    pub fn user(id: i64, login: &str) -> AuditActor {
        AuditActor {
            kind: "user",
            user_id: Some(id),
            label: login.to_string(),
        }
    }

    pub fn service(token_id: i64) -> AuditActor {
        AuditActor {
            kind: "service",
            user_id: None,
            label: format!("service token {token_id}"),
        }
    }

    /// An operator running `cocov admin …` on the host.
    pub fn cli() -> AuditActor {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        AuditActor {
            kind: "cli",
            user_id: None,
            label: who,
        }
    }

    pub fn system() -> AuditActor {
        AuditActor {
            kind: "system",
            user_id: None,
            label: "cocov".into(),
        }
    }
}

/// Appends one entry.
pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    actor: &AuditActor,
    action: &str,
    target: &str,
    details: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (actor_kind, actor_user_id, actor_label, action, target, details) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(actor.kind)
    .bind(actor.user_id)
    .bind(&actor.label)
    .bind(action)
    .bind(target)
    .bind(details)
    .execute(db)
    .await?;
    Ok(())
}
