//! `cocov admin create-user` and its sign-in methods: a password (typed at a prompt, piped on
//! standard input or read from a file, never on the command line where `ps` and shell history
//! would keep it), a one-time sign-in link, or, without either, a personal access token.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::Failure;
use crate::audit::AuditActor;
use crate::auth::{password, sessions, sign_in_links, user_admin, users};
use crate::config::Config;

/// Where a password comes from; at most one.
#[derive(Args, Debug, Default)]
pub struct PasswordArgs {
    /// Ask for the user's password at a prompt (typed twice, not echoed).
    #[arg(long, group = "password_source")]
    pub password: bool,
    /// Read the password from standard input (one trailing newline is removed).
    #[arg(long, group = "password_source")]
    pub password_stdin: bool,
    /// Read the password from this file (one trailing newline is removed).
    #[arg(long, group = "password_source")]
    pub password_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CreateUserArgs {
    #[arg(long)]
    pub login: String,
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Print a one-time sign-in link for the user (valid accounts.sign_in_link_minutes).
    #[arg(long)]
    pub sign_in_link: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// List users with their roles.
    List,
    /// Make a user an administrator.
    Promote { login: String },
    /// Take a user's administrator rights (the last administrator keeps them).
    Demote { login: String },
    /// Sign a user out everywhere: revoke every session and personal token.
    Logout { login: String },
    /// Delete a user (what they authored stays).
    Delete { login: String },
    /// Set a user's local password (from a prompt, --password-stdin or --password-file).
    SetPassword {
        login: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Print a one-time sign-in link for a user.
    SignInLink { login: String },
}

pub async fn create_user(config: &Config, args: &CreateUserArgs) -> Result<(), Failure> {
    // The password is read and checked before anything is written.
    let phc = match read_password(&args.password)? {
        Some(clear) => Some(
            password::hash(&clear)
                .await
                .map_err(|e| Failure::new(format!("{}: {e}", password_source(&args.password))))?,
        ),
        None => None,
    };
    let pool = super::admin::migrated_pool(config).await?;
    let actor = AuditActor::cli();
    let user = users::create_with_password(&pool, &args.login, args.admin, phc.as_deref(), &actor)
        .await
        .map_err(Failure::new)?;
    println!(
        "created user {} (id {}, {})",
        user.login,
        user.id,
        if user.admin { "admin" } else { "user" }
    );
    if phc.is_some() {
        println!("the user signs in with the password given");
    }
    if args.sign_in_link {
        println!(
            "one-time sign-in link: {}",
            sign_in_link(config, user.id).await?
        );
    }
    if phc.is_none() && !args.sign_in_link {
        let token = users::create_personal_token(
            &pool,
            &user,
            "created by cocov admin create-user",
            &actor,
        )
        .await
        .map_err(Failure::new)?;
        println!("personal access token (shown once): {token}");
    }
    Ok(())
}

/// A new one-time link signing `user_id` in, under `server.ui_base_url`.
pub async fn sign_in_link(config: &Config, user_id: i64) -> Result<String, Failure> {
    let kv = crate::kv::Kv::connect(&config.redis).map_err(Failure::new)?;
    let lifetime = std::time::Duration::from_secs(config.accounts.sign_in_link_minutes * 60);
    let token = sign_in_links::create(&kv, user_id, lifetime)
        .await
        .map_err(|e| Failure::new(format!("Redis: {e}")))?;
    Ok(format!(
        "{}/auth/link/{token}",
        config.server.ui_base_url.trim_end_matches('/')
    ))
}

fn password_source(args: &PasswordArgs) -> String {
    match &args.password_file {
        Some(path) => format!("--password-file {}", path.display()),
        None if args.password_stdin => "--password-stdin".into(),
        None => "--password".into(),
    }
}

fn read_password(args: &PasswordArgs) -> Result<Option<String>, Failure> {
    if let Some(path) = &args.password_file {
        return read_password_file(path).map(Some);
    }
    if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::new(format!("--password-stdin: {e}")))?;
        return Ok(Some(strip_newline(text)));
    }
    if !args.password {
        return Ok(None);
    }
    let first = rpassword::prompt_password("Password: ")
        .map_err(|e| Failure::new(format!("--password: cannot read from the terminal: {e}")))?;
    let again = rpassword::prompt_password("Password (again): ")
        .map_err(|e| Failure::new(format!("--password: cannot read from the terminal: {e}")))?;
    if first != again {
        return Err(Failure::new("--password: the two passwords differ"));
    }
    Ok(Some(first))
}

pub fn read_password_file(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map(strip_newline)
        .map_err(|e| Failure::new(format!("--password-file {}: {e}", path.display())))
}

fn strip_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

pub async fn run(config: &Config, command: &UserCommand) -> Result<(), Failure> {
    let pool = super::admin::migrated_pool(config).await?;
    let actor = AuditActor::cli();
    let find = |login: &str| {
        let pool = pool.clone();
        let login = login.to_string();
        async move {
            users::find_by_login(&pool, &login)
                .await
                .map_err(Failure::new)
        }
    };
    match command {
        UserCommand::List => {
            println!(
                "{:>6}  {:<39}  {:<5}  {:<8}  sessions",
                "id", "login", "admin", "password"
            );
            for u in user_admin::list(&pool).await.map_err(Failure::new)? {
                println!(
                    "{:>6}  {:<39}  {:<5}  {:<8}  {}",
                    u.id,
                    u.login,
                    if u.admin { "yes" } else { "no" },
                    if u.local_password { "set" } else { "-" },
                    u.active_sessions
                );
            }
        }
        UserCommand::Promote { login } | UserCommand::Demote { login } => {
            let promote = matches!(command, UserCommand::Promote { .. });
            let user = find(login).await?;
            user_admin::set_admin(&pool, user.id, promote, &actor)
                .await
                .map_err(Failure::new)?;
            let role = if promote {
                "an administrator"
            } else {
                "a user"
            };
            println!("{} is now {role}", user.login);
        }
        UserCommand::Logout { login } => {
            let user = find(login).await?;
            let revoked = sessions::revoke_all(&pool, user.id, &actor)
                .await
                .map_err(Failure::new)?;
            println!("{}: {revoked} session(s) and token(s) revoked", user.login);
        }
        UserCommand::Delete { login } => {
            let user = find(login).await?;
            user_admin::delete(&pool, user.id, &actor)
                .await
                .map_err(Failure::new)?;
            println!("user {} deleted", user.login);
        }
        UserCommand::SetPassword { login, password } => {
            let user = find(login).await?;
            let source = password_source(password);
            let clear = read_password(password)?.ok_or_else(|| {
                Failure::new(
                    "give the password with --password, --password-stdin or --password-file",
                )
            })?;
            crate::auth::local::set_password(&pool, user.id, &clear, &actor)
                .await
                .map_err(|e| Failure::new(format!("{source}: {e}")))?;
            println!("password of {} set", user.login);
        }
        UserCommand::SignInLink { login } => {
            let user = find(login).await?;
            println!(
                "one-time sign-in link for {}: {}",
                user.login,
                sign_in_link(config, user.id).await?
            );
        }
    }
    Ok(())
}
