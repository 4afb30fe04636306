//! Session settings: SET, SHOW and the values the session's transactions start with.

use std::collections::HashMap;

use sqlparser::ast;
use txn::{IsolationLevel, TxnOptions};

use crate::{Error, Result};

use super::SERVER_VERSION;

/// Session settings (SET/SHOW).
#[derive(Default)]
pub(crate) struct Settings(pub(super) HashMap<String, String>);

/// The level a requested isolation level runs at: SERIALIZABLE as itself; REPEATABLE READ (and
/// SNAPSHOT) as snapshot isolation; READ COMMITTED and READ UNCOMMITTED as snapshot isolation
/// too, which is stronger than what they promise.
pub(super) fn isolation_level(level: &ast::TransactionIsolationLevel) -> IsolationLevel {
    match level {
        ast::TransactionIsolationLevel::Serializable => IsolationLevel::Serializable,
        _ => IsolationLevel::Snapshot,
    }
}

/// Parses an isolation level name as SET accepts it.
pub(super) fn parse_isolation(name: &str) -> Result<IsolationLevel> {
    match name.trim().to_lowercase().as_str() {
        "serializable" => Ok(IsolationLevel::Serializable),
        "repeatable read" | "snapshot" | "read committed" | "read uncommitted" => {
            Ok(IsolationLevel::Snapshot)
        }
        other => Err(Error::InvalidParameter(format!(
            "invalid value for parameter \"transaction_isolation\": \"{other}\""
        ))),
    }
}

/// The transaction options of BEGIN / SET TRANSACTION modes, over the session's default.
pub(super) fn txn_options(
    modes: &[ast::TransactionMode],
    default: IsolationLevel,
) -> Result<TxnOptions> {
    let mut opts = TxnOptions {
        isolation: default,
        ..TxnOptions::default()
    };
    for mode in modes {
        match mode {
            ast::TransactionMode::IsolationLevel(level) => opts.isolation = isolation_level(level),
            ast::TransactionMode::AccessMode(ast::TransactionAccessMode::ReadOnly) => {
                opts.read_only = true
            }
            ast::TransactionMode::AccessMode(ast::TransactionAccessMode::ReadWrite) => {
                opts.read_only = false
            }
        }
    }
    Ok(opts)
}

pub(super) fn isolation_name(level: IsolationLevel) -> &'static str {
    match level {
        IsolationLevel::Snapshot => "repeatable read",
        IsolationLevel::Serializable => "serializable",
    }
}

/// Parses a `lock_timeout` value as PostgreSQL does: milliseconds, or a number with a unit
/// (`ms`, `s`, `min`, `h`, `d`); 0 disables the limit.
pub(super) fn parse_lock_timeout(value: &str) -> Result<std::time::Duration> {
    parse_duration("lock_timeout", value)
}

/// Parses a duration setting named `name` (milliseconds by default, or with a unit).
pub(super) fn parse_duration(name: &str, value: &str) -> Result<std::time::Duration> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let invalid = || {
        Error::InvalidParameter(format!(
            "invalid value for parameter \"{name}\": \"{value}\""
        ))
    };
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let ms = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    Ok(std::time::Duration::from_millis(
        n.checked_mul(ms).ok_or_else(invalid)?,
    ))
}

impl Settings {
    /// The session's `lock_timeout`, if it set one (else the node's default applies).
    pub(super) fn lock_timeout(&self) -> Option<std::time::Duration> {
        self.0
            .get("lock_timeout")
            .and_then(|v| parse_lock_timeout(v).ok())
    }

    /// The session's `statement_timeout` (None: no limit).
    pub(super) fn statement_timeout(&self) -> Option<std::time::Duration> {
        self.0
            .get("statement_timeout")
            .and_then(|v| parse_duration("statement_timeout", v).ok())
            .filter(|d| !d.is_zero())
    }

    /// The isolation level of transactions that do not ask for one.
    pub(super) fn default_isolation(&self) -> IsolationLevel {
        self.0
            .get("default_transaction_isolation")
            .and_then(|v| parse_isolation(v).ok())
            .unwrap_or_default()
    }

    /// The value of a variable for SHOW.
    pub(super) fn show(&self, name: &str) -> Result<String> {
        if let Some(v) = self.0.get(name) {
            return Ok(v.clone());
        }
        Ok(match name {
            "transaction_isolation" | "default_transaction_isolation" => {
                isolation_name(self.default_isolation()).into()
            }
            "server_version" => SERVER_VERSION.into(),
            "server_version_num" => "150000".into(),
            "server_encoding" | "client_encoding" => "UTF8".into(),
            "datestyle" => "ISO, MDY".into(),
            "intervalstyle" => "postgres".into(),
            "timezone" => "UTC".into(),
            "integer_datetimes" | "standard_conforming_strings" => "on".into(),
            "transaction_read_only" | "default_transaction_read_only" | "is_superuser" => {
                "off".into()
            }
            "search_path" => "\"$user\", public".into(),
            "application_name" => String::new(),
            "extra_float_digits" => "1".into(),
            "max_identifier_length" => "63".into(),
            // Lock waits are bounded by default, unlike PostgreSQL's 0 (no limit).
            "lock_timeout" => "10s".into(),
            "statement_timeout" => "0".into(),
            _ => {
                return Err(Error::InvalidParameter(format!(
                    "unrecognized configuration parameter \"{name}\""
                )));
            }
        })
    }

    /// Sets a variable from its text (a start-up parameter), checking the values it knows.
    pub(super) fn set_text(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.to_lowercase();
        match name.as_str() {
            "default_transaction_isolation" => {
                let level = parse_isolation(value)?;
                self.0.insert(name, isolation_name(level).into());
                return Ok(());
            }
            "lock_timeout" | "statement_timeout" => {
                parse_duration(&name, value)?;
            }
            _ => {}
        }
        self.0.insert(name, value.to_string());
        Ok(())
    }

    /// Applies a SET statement.
    pub(super) fn set(&mut self, set: &ast::Set) -> Result<()> {
        match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string().to_lowercase();
                let value = values.iter().map(set_value).collect::<Vec<_>>().join(", ");
                if name == "default_transaction_isolation" {
                    let level = parse_isolation(&value)?;
                    self.0.insert(name, isolation_name(level).into());
                    return Ok(());
                }
                if name == "lock_timeout" || name == "statement_timeout" {
                    parse_duration(&name, &value)?;
                }
                self.0.insert(name, value);
                Ok(())
            }
            ast::Set::SetTransaction { .. } => Ok(()),
            ast::Set::SetTimeZone { value, .. } => {
                self.0.insert("timezone".into(), set_value(value));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The text of a SET value: strings unquoted, identifiers as written.
pub(super) fn set_value(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        ast::Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// The variable a SHOW names (`SHOW TRANSACTION ISOLATION LEVEL` is `transaction_isolation`).
pub(super) fn show_name(variable: &[ast::Ident]) -> String {
    let words: Vec<String> = variable.iter().map(|i| i.value.to_lowercase()).collect();
    match words.join(" ").as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        other => other.replace(' ', "_"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_lock_timeout;

    #[test]
    pub(super) fn lock_timeouts_parse_like_postgres() {
        assert_eq!(parse_lock_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_lock_timeout("1500").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_lock_timeout("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_lock_timeout("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_lock_timeout("1min").unwrap(), Duration::from_secs(60));
        assert!(parse_lock_timeout("soon").is_err());
        assert!(parse_lock_timeout("-1").is_err());
        assert!(parse_lock_timeout("5 fortnights").is_err());
    }
}
