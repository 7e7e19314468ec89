//! Linking commits to the users who wrote them, by author e-mail. Ingestion links a new commit
//! when it records the author (`ingest`); this links the commits already there when a user's
//! addresses become known (at sign-in), as the original's `UpdateCommitsAuthorJob` did.

use sqlx::PgPool;

/// Makes `user_id` the user of every commit whose author e-mail is one of that user's; returns
/// how many commits changed. An address belongs to one user only (`user_emails.email` is
/// unique), so this never takes a commit from its rightful author.
pub async fn link_to_user(pool: &PgPool, user_id: i64) -> Result<u64, sqlx::Error> {
    let linked = sqlx::query(
        "UPDATE commits SET user_id = $1 \
         WHERE author_email IN (SELECT email FROM user_emails WHERE user_id = $1) \
         AND user_id IS DISTINCT FROM $1",
    )
    .bind(user_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(linked)
}
