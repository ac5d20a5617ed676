//! Who a connection is, and the runtime group role: the service runs as a login that
//! owns nothing and cannot become the owner; `migrate` runs as the owner and grants the
//! runtime privileges to a NOLOGIN group role the runtime logins are members of.

use sqlx::PgConnection;

use super::{quote_ident, APP_ROLE};

/// What the login of a connection can do to the ledger, as far as a runtime check
/// cares (read from the catalogs, which every login may read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The login (`session_user`).
    pub name: String,
    pub superuser: bool,
    /// Owner of `scan_events`; `None` when the ledger's tables do not exist yet.
    pub ledger_owner: Option<String>,
    /// The login is the ledger's owner or a member of it (may `SET ROLE` to it).
    pub can_become_ledger_owner: bool,
    pub database_owner: String,
    /// The login is the database's owner or a member of it (could give itself back
    /// `TEMP` and `CREATE`, or create schemas).
    pub can_become_database_owner: bool,
    /// The group role named by `--app-role` exists.
    pub app_role_exists: bool,
    /// The login has the privileges of that group role.
    pub in_app_role: bool,
}

impl Login {
    /// Why this login must not run the service, if it must not.
    pub fn owner_reason(&self) -> Option<String> {
        if self.superuser {
            return Some(format!("login {:?} is a superuser", self.name));
        }
        if self.can_become_ledger_owner {
            let owner = self.ledger_owner.as_deref().unwrap_or_default();
            return Some(if owner == self.name {
                format!("login {:?} owns the ledger (scan_events)", self.name)
            } else {
                format!(
                    "login {:?} is a member of {owner:?}, the owner of the ledger (scan_events), \
                     and can SET ROLE to it",
                    self.name
                )
            });
        }
        if self.can_become_database_owner {
            return Some(format!(
                "login {:?} owns (or is a member of {:?}, the owner of) the database",
                self.name, self.database_owner
            ));
        }
        None
    }
}

/// The login of `conn`, with `app_role` as the runtime group role.
pub async fn inspect(conn: &mut PgConnection, app_role: &str) -> Result<Login, sqlx::Error> {
    let row: (String, bool, Option<String>, bool, String, bool, bool, bool) = sqlx::query_as(
        "SELECT session_user::text,
                r.rolsuper,
                pg_get_userbyid(c.relowner)::text,
                coalesce(pg_has_role(session_user, c.relowner, 'MEMBER'), false),
                pg_get_userbyid(d.datdba)::text,
                pg_has_role(session_user, d.datdba, 'MEMBER'),
                a.oid IS NOT NULL,
                coalesce(pg_has_role(session_user, a.oid, 'USAGE'), false)
           FROM pg_roles r
           JOIN pg_database d ON d.datname = current_database()
           LEFT JOIN pg_class c ON c.oid = to_regclass('scan_events')
           LEFT JOIN pg_roles a ON a.rolname = $1
          WHERE r.rolname = session_user",
    )
    .bind(app_role)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Login {
        name: row.0,
        superuser: row.1,
        ledger_owner: row.2,
        can_become_ledger_owner: row.3,
        database_owner: row.4,
        can_become_database_owner: row.5,
        app_role_exists: row.6,
        in_app_role: row.7,
    })
}

/// The message a runtime command refuses an owner login with.
pub fn owner_login_refusal(reason: &str, app_role: &str) -> String {
    format!(
        "{reason}: the service must not run as the owner of the ledger (a session could \
         disable its triggers). Create a runtime login that owns nothing, e.g. \
         `CREATE ROLE scanledger_svc LOGIN PASSWORD '…' IN ROLE {role}`, put it in \
         DATABASE_URL, and run migrations as the owner with \
         `scanledger migrate --owner-url <owner's URL>` (or SCANLEDGER_OWNER_URL). \
         For a throwaway database only, --allow-owner-login (SCANLEDGER_ALLOW_OWNER_LOGIN) \
         starts anyway and migrates",
        role = sql_name(app_role)
    )
}

/// The message a runtime command refuses a login outside the runtime group role with.
pub fn not_in_app_role_refusal(login: &Login, app_role: &str) -> String {
    if !login.app_role_exists {
        format!(
            "the runtime group role {app_role:?} does not exist: run \
             `scanledger migrate --owner-url <owner's URL> --app-role {app_role}` first \
             (it creates the role and grants it the runtime privileges)"
        )
    } else {
        format!(
            "login {:?} is not a member of the runtime group role {app_role:?}: \
             `GRANT {} TO {}` (or pass the --app-role it is a member of)",
            login.name,
            sql_name(app_role),
            sql_name(&login.name)
        )
    }
}

/// `name` as an SQL identifier, quoted only when it must be (for messages).
fn sql_name(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// Give the runtime group role `app_role` the runtime privileges, as the owner, after
/// the migrations.
///
/// The migrations (and the projections' DDL) grant to the role [`APP_ROLE`] by name,
/// and a shipped migration is never edited. Another `--app-role` is therefore created
/// (`NOLOGIN`) when missing and made a member of [`APP_ROLE`]: its members get exactly
/// the runtime privileges, whatever migrations and projection rebuilds run later. The
/// name is the operator's handle for grants, not an isolation boundary: roles are
/// cluster-wide, so two ledgers in one cluster share [`APP_ROLE`]'s privileges (run them
/// in separate clusters, or servers, to keep their runtime logins apart).
///
/// Creating a role, or granting membership in one, needs `CREATEROLE` (or the admin
/// option); an owner without it gets PostgreSQL's error, and the role can be prepared
/// by an administrator instead (see docs/operations.md). Also lets the runtime role read
/// `schema_migrations`, so a runtime login can check that the schema is current.
pub async fn grant_app_role(conn: &mut PgConnection, app_role: &str) -> Result<(), sqlx::Error> {
    if app_role != APP_ROLE {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(app_role)
                .fetch_one(&mut *conn)
                .await?;
        if !exists {
            sqlx::raw_sql(&format!("CREATE ROLE {} NOLOGIN", quote_ident(app_role)))
                .execute(&mut *conn)
                .await?;
            tracing::info!(role = app_role, "created the runtime group role");
        }
        let member: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_auth_members m
                             WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $2)
                               AND m.member = (SELECT oid FROM pg_roles WHERE rolname = $1))",
        )
        .bind(app_role)
        .bind(APP_ROLE)
        .fetch_one(&mut *conn)
        .await?;
        if !member {
            sqlx::raw_sql(&format!(
                "GRANT {} TO {}",
                quote_ident(APP_ROLE),
                quote_ident(app_role)
            ))
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::raw_sql(&format!(
        "GRANT SELECT ON schema_migrations TO {}",
        quote_ident(APP_ROLE)
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
