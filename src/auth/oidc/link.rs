//! From a verified identity to a user. Users are found by (issuer, subject) only: the login
//! follows the provider (a rename at the provider renames the user when the new login is free),
//! and a first sign-in never takes over an existing account whose login happens to match.

use serde_json::{Value, json};
use sqlx::PgPool;

use super::SignInError;
use crate::audit::{self, AuditActor};
use crate::auth::users::{self, User, UserError, valid_login};
use crate::config::OidcConfig;

/// Groups kept per user; a claim with more is cut (the rest grant nothing).
const MAX_GROUPS: usize = 1000;
const MAX_GROUP_LEN: usize = 255;

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub login: String,
    pub groups: Vec<String>,
}

/// A login made from a claim: the part before any `@`, with characters GitHub logins do not
/// allow turned into `-`; None when nothing valid remains.
pub fn login_from_claim(value: &str) -> Option<String> {
    let local = value.split('@').next().unwrap_or_default();
    let mapped: String = local
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed: String = mapped.trim_start_matches('-').chars().take(39).collect();
    valid_login(&trimmed).then_some(trimmed)
}

/// The groups claim: a list of strings (or one string); anything else is no groups.
pub(super) fn groups_from_claim(value: Option<&Value>) -> Vec<String> {
    let mut groups: Vec<String> = match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    groups.retain(|g| !g.is_empty() && g.len() <= MAX_GROUP_LEN);
    groups.sort();
    groups.dedup();
    groups.truncate(MAX_GROUPS);
    groups
}

/// The user for `identity`, created when new and sign-up is allowed; the admin flag (when
/// `admin_groups` is set) and the stored groups are refreshed.
pub(super) async fn sign_in(
    pool: &PgPool,
    config: &OidcConfig,
    identity: &Identity,
) -> Result<User, SignInError> {
    let linked: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, login::text FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2",
    )
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .fetch_optional(pool)
    .await?;
    let id = match linked {
        Some((id, login)) => {
            if !login.eq_ignore_ascii_case(&identity.login) {
                rename(pool, id, &login, &identity.login).await?;
            }
            id
        }
        None if !config.allow_signup => return Err(SignInError::SignupClosed),
        None => create(pool, identity).await?,
    };
    let mut tx = pool.begin().await?;
    if !config.admin_groups.is_empty() {
        let admin = identity
            .groups
            .iter()
            .any(|g| config.admin_groups.contains(g));
        let changed = sqlx::query("UPDATE users SET admin = $2 WHERE id = $1 AND admin <> $2")
            .bind(id)
            .bind(admin)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if changed {
            audit::record(
                &mut *tx,
                &AuditActor::system(),
                "user.admin_from_groups",
                &format!("user:{id}"),
                json!({"admin": admin}),
            )
            .await?;
        }
    }
    sqlx::query("DELETE FROM user_oidc_groups WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO user_oidc_groups (user_id, group_name) SELECT $1, unnest($2::text[])")
        .bind(id)
        .bind(&identity.groups)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(users::find(pool, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?)
}

async fn create(pool: &PgPool, identity: &Identity) -> Result<i64, SignInError> {
    let user = users::create(pool, &identity.login, false, &AuditActor::system())
        .await
        .map_err(|e| match e {
            UserError::LoginTaken(login) => SignInError::LoginTaken(login),
            UserError::Db(e) => SignInError::Db(e),
            other => SignInError::LoginMissing(other.to_string()),
        })?;
    sqlx::query("UPDATE users SET oidc_issuer = $2, oidc_subject = $3 WHERE id = $1")
        .bind(user.id)
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .execute(pool)
        .await?;
    Ok(user.id)
}

/// Follows a rename at the provider when the new login is free; otherwise keeps the old one
/// (the user still signs in, as the subject is what identifies them).
async fn rename(pool: &PgPool, id: i64, old: &str, new: &str) -> Result<(), SignInError> {
    let renamed = sqlx::query(
        "UPDATE users SET login = $2 WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM users WHERE login = $2::citext AND id <> $1)",
    )
    .bind(id)
    .bind(new)
    .execute(pool)
    .await;
    match renamed {
        Ok(done) if done.rows_affected() > 0 => {
            audit::record(
                pool,
                &AuditActor::system(),
                "user.rename_from_oidc",
                &format!("user:{id}"),
                json!({"from": old, "to": new}),
            )
            .await?;
            Ok(())
        }
        Ok(_) => Ok(()),
        // A concurrent rename took the login first: keep the old one.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_from_claims() {
        assert_eq!(login_from_claim("alice").as_deref(), Some("alice"));
        assert_eq!(
            login_from_claim("alice.smith@example.com").as_deref(),
            Some("alice-smith")
        );
        assert_eq!(login_from_claim("@x"), None);
        assert_eq!(login_from_claim("..."), None);
    }

    #[test]
    fn groups_from_claims() {
        assert_eq!(
            groups_from_claim(Some(&json!(["b", "a", "a", 3, ""]))),
            vec!["a", "b"]
        );
        assert_eq!(groups_from_claim(Some(&json!("devs"))), vec!["devs"]);
        assert!(groups_from_claim(Some(&json!({"x": 1}))).is_empty());
        assert!(groups_from_claim(None).is_empty());
    }
}
