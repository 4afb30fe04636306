//! Prepared statements of a session, and the statements that manage them: `PREPARE`,
//! `EXECUTE`, `DEALLOCATE [PREPARE] name | ALL` and `DISCARD ALL | PLANS | SEQUENCES | TEMP`.
//!
//! SQL `PREPARE` and the extended protocol's Parse share one namespace, as in PostgreSQL, so a
//! driver's `DEALLOCATE ALL` also forgets what it prepared through the protocol. A statement is
//! described once, when it is prepared; each execution that has to plan it again (after a
//! schema change) checks that the result columns still have the described types and otherwise
//! fails with 0A000 "cached plan must not change result type", before anything runs.

use std::sync::Arc;

use sqlparser::ast;

use crate::{
    DataType, Description, Error, ExecResult, Prepared, Result, Session, Statement, Value,
};

fn command(tag: &str) -> ExecResult {
    ExecResult::Command {
        tag: tag.into(),
        rows: None,
    }
}

/// The 26000 error of a name that is not prepared.
fn undefined(name: &str) -> Error {
    Error::UndefinedPreparedStatement(format!("prepared statement \"{name}\" does not exist"))
}

/// A prepared statement's name as PostgreSQL compares it: unquoted names fold to lower case.
fn statement_name(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// Whether a statement is one of those handled here.
pub(crate) fn is_prepared_command(stmt: &ast::Statement) -> bool {
    matches!(
        stmt,
        ast::Statement::Prepare { .. }
            | ast::Statement::Execute { .. }
            | ast::Statement::Deallocate { .. }
            | ast::Statement::Discard { .. }
    )
}

/// The data types of a result, for the cached-plan check.
pub(crate) fn shape(columns: &[crate::Column]) -> Arc<[DataType]> {
    columns.iter().map(|c| c.data_type).collect()
}

/// The 0A000 error of a plan whose result no longer matches its statement's description.
pub(crate) fn changed_result_type() -> Error {
    Error::NotSupported("cached plan must not change result type".into())
}

impl Session {
    /// Parses, describes and keeps a prepared statement under `name`: "" is the unnamed
    /// statement, which each Parse replaces; any other name must be free (42P05). `sql` holds
    /// at most one statement (none: an empty query). `declared` holds the parameter types the
    /// client declared (None where it left one to inference) and `declared_oids` their OIDs
    /// (0 where unspecified), kept for the wire layer.
    pub async fn prepare(
        &mut self,
        name: &str,
        sql: &str,
        declared: &[Option<DataType>],
        declared_oids: Vec<u32>,
    ) -> Result<Arc<Prepared>> {
        self.check_free(name)?;
        let mut stmts = self.parse(sql)?;
        if stmts.len() > 1 {
            return Err(Error::Syntax(
                "cannot insert multiple commands into a prepared statement".into(),
            ));
        }
        self.keep_prepared(name, stmts.pop(), declared, declared_oids)
            .await
    }

    fn check_free(&self, name: &str) -> Result<()> {
        if !name.is_empty() && self.prepared.contains_key(name) {
            return Err(Error::DuplicatePreparedStatement(format!(
                "prepared statement \"{name}\" already exists"
            )));
        }
        Ok(())
    }

    async fn keep_prepared(
        &mut self,
        name: &str,
        stmt: Option<Statement>,
        declared: &[Option<DataType>],
        declared_oids: Vec<u32>,
    ) -> Result<Arc<Prepared>> {
        let (statement, description) = match stmt {
            Some(stmt) => {
                let description = self.describe(&stmt, declared).await?;
                let mut stmt = stmt;
                stmt.shape = Some(shape(&description.columns));
                (Some(stmt), description)
            }
            None => {
                let params = declared.iter().map(|d| d.unwrap_or(DataType::Text));
                let description = Description {
                    params: params.collect(),
                    columns: vec![],
                };
                (None, description)
            }
        };
        let prepared = Arc::new(Prepared {
            statement,
            description,
            declared_oids,
        });
        self.prepared.insert(name.to_string(), prepared.clone());
        Ok(prepared)
    }

    /// The prepared statement called `name` ("" for the unnamed one), or 26000.
    pub fn prepared(&self, name: &str) -> Result<Arc<Prepared>> {
        self.prepared.get(name).cloned().ok_or_else(|| {
            if name.is_empty() {
                Error::UndefinedPreparedStatement(
                    "unnamed prepared statement does not exist".into(),
                )
            } else {
                undefined(name)
            }
        })
    }

    /// Forgets the prepared statement called `name`; whether there was one.
    pub fn deallocate(&mut self, name: &str) -> bool {
        self.prepared.remove(name).is_some()
    }

    /// Runs PREPARE, EXECUTE, DEALLOCATE or DISCARD.
    pub(crate) async fn prepared_command(
        &mut self,
        stmt: &ast::Statement,
        params: &[Value],
    ) -> Result<ExecResult> {
        match stmt {
            ast::Statement::Prepare {
                name,
                data_types,
                statement,
            } => {
                let name = statement_name(name);
                self.check_free(&name)?;
                let declared = data_types
                    .iter()
                    .map(|t| DataType::from_ast(t).map(Some))
                    .collect::<Result<Vec<_>>>()?;
                let oids = vec![0; declared.len()];
                let stmt = Statement::new((**statement).clone(), None, None);
                self.keep_prepared(&name, Some(stmt), &declared, oids)
                    .await?;
                Ok(command("PREPARE"))
            }
            ast::Statement::Execute {
                name: Some(name),
                parameters,
                immediate: false,
                into,
                using,
                ..
            } if into.is_empty() && using.is_empty() => {
                let name = match name.0.as_slice() {
                    [part] => part
                        .as_ident()
                        .map(statement_name)
                        .unwrap_or_else(|| name.to_string()),
                    _ => name.to_string(),
                };
                let prepared = self.prepared(&name)?;
                let values = self.argument_values(parameters, params).await?;
                match &prepared.statement {
                    Some(stmt) => Box::pin(self.execute(stmt, &values)).await,
                    None => Ok(ExecResult::Empty),
                }
            }
            ast::Statement::Deallocate { name, .. } => {
                if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
                    self.prepared.clear();
                    return Ok(command("DEALLOCATE ALL"));
                }
                let name = statement_name(name);
                if !self.deallocate(&name) {
                    return Err(undefined(&name));
                }
                Ok(command("DEALLOCATE"))
            }
            ast::Statement::Discard { object_type } => self.discard(object_type),
            other => Err(Error::NotSupported(format!(
                "statement not supported: {other}"
            ))),
        }
    }

    /// The values of EXECUTE's arguments: each is evaluated as `SELECT arg, ...` would.
    async fn argument_values(
        &mut self,
        args: &[ast::Expr],
        params: &[Value],
    ) -> Result<Vec<Value>> {
        if args.is_empty() {
            return Ok(vec![]);
        }
        let list = args
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let select = crate::parser::parse(&format!("SELECT {list}"))?;
        let [select] = <[ast::Statement; 1]>::try_from(select)
            .map_err(|_| Error::Syntax("invalid EXECUTE arguments".into()))?;
        let stmt = Statement::new(select, None, None);
        match Box::pin(self.execute(&stmt, params)).await? {
            ExecResult::Rows { mut rows, .. } if rows.len() == 1 => Ok(rows.remove(0)),
            _ => Err(Error::Internal("EXECUTE arguments gave no row".into())),
        }
    }

    /// DISCARD: ALL resets the session (outside a transaction block only, 25001); PLANS drops
    /// cached plans; SEQUENCES and TEMP have nothing to drop (no sequences or temporary tables).
    fn discard(&mut self, what: &ast::DiscardObject) -> Result<ExecResult> {
        match what {
            ast::DiscardObject::ALL => {
                if self.txn_status() != crate::TxnStatus::Idle {
                    return Err(Error::ActiveTransaction(
                        "DISCARD ALL cannot run inside a transaction block".into(),
                    ));
                }
                self.prepared.clear();
                self.parsed = Default::default();
                self.settings = Default::default();
                Ok(command("DISCARD ALL"))
            }
            ast::DiscardObject::PLANS => {
                self.parsed = Default::default();
                for prepared in self.prepared.values() {
                    if let Some(stmt) = &prepared.statement {
                        stmt.plan.clear();
                    }
                }
                Ok(command("DISCARD PLANS"))
            }
            ast::DiscardObject::SEQUENCES => Ok(command("DISCARD SEQUENCES")),
            ast::DiscardObject::TEMP => Ok(command("DISCARD TEMP")),
        }
    }

    /// The description of PREPARE, EXECUTE, DEALLOCATE and DISCARD: EXECUTE returns what its
    /// statement returns; the others return no rows.
    pub(crate) fn describe_prepared_command(
        &self,
        stmt: &ast::Statement,
        declared: &[Option<DataType>],
    ) -> Result<Description> {
        let params = declared
            .iter()
            .map(|d| d.unwrap_or(DataType::Text))
            .collect();
        let columns = match stmt {
            ast::Statement::Execute {
                name: Some(name), ..
            } => {
                let name = match name.0.as_slice() {
                    [part] => part
                        .as_ident()
                        .map(statement_name)
                        .unwrap_or_else(|| name.to_string()),
                    _ => name.to_string(),
                };
                self.prepared(&name)?.description.columns.clone()
            }
            _ => vec![],
        };
        Ok(Description { params, columns })
    }
}
