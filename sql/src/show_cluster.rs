//! `SHOW NODES` and `SHOW RANGES [FROM TABLE t]`: the cluster as the node serving the session
//! sees it (see `txn::cluster::show`). They read the node and range directories in their own
//! transactions, so they run the same inside or outside a transaction block.

use sqlparser::ast;
use txn::TxnOptions;

use crate::{Column, DataType, Engine, Error, ExecResult, Result, Value};

/// Which cluster listing a `SHOW` asks for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Show {
    /// `SHOW NODES`.
    Nodes,
    /// `SHOW RANGES`, or `SHOW RANGES FROM TABLE t` (the ranges holding `t`'s rows).
    Ranges(Option<String>),
}

/// Recognises the words of `SHOW NODES` / `SHOW RANGES ...` (as sqlparser collects them into
/// a variable name); None for any other `SHOW`.
pub(crate) fn parse(variable: &[ast::Ident]) -> Option<Result<Show>> {
    let word = |i: &ast::Ident| i.value.to_lowercase();
    let first = variable.first().map(word)?;
    match (first.as_str(), variable.len()) {
        ("nodes", 1) => Some(Ok(Show::Nodes)),
        ("ranges", 1) => Some(Ok(Show::Ranges(None))),
        ("ranges", _) => Some(match &variable[1..] {
            [from, table, name] if word(from) == "from" && word(table) == "table" => {
                let name = match name.quote_style {
                    Some(_) => name.value.clone(),
                    None => name.value.to_lowercase(),
                };
                Ok(Show::Ranges(Some(name)))
            }
            _ => Err(Error::Syntax(
                "expected SHOW RANGES or SHOW RANGES FROM TABLE name".into(),
            )),
        }),
        _ => None,
    }
}

/// The result columns of `show`.
pub(crate) fn columns(show: &Show) -> Vec<Column> {
    let col = |name: &str, data_type| Column {
        name: name.into(),
        data_type,
    };
    match show {
        Show::Nodes => vec![
            col("node_id", DataType::Int8),
            col("address", DataType::Text),
            col("liveness", DataType::Text),
            col("decommissioning", DataType::Bool),
            col("ranges", DataType::Int8),
            col("leaders", DataType::Int8),
        ],
        Show::Ranges(_) => vec![
            col("range_id", DataType::Int8),
            col("start_key", DataType::Text),
            col("end_key", DataType::Text),
            col("leader", DataType::Int8),
            col("replicas", DataType::Text),
        ],
    }
}

/// Runs `show` on `engine`'s store.
pub(crate) async fn run(engine: &Engine, show: &Show) -> Result<ExecResult> {
    let not_here = |e: txn::Error| match e {
        txn::Error::InvalidArgument(m) => Error::NotSupported(m),
        e => e.into(),
    };
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let rows = match show {
        Show::Nodes => engine
            .store
            .nodes()
            .await
            .map_err(not_here)?
            .into_iter()
            .map(|n| {
                vec![
                    int(n.node_id),
                    Value::Text(n.address),
                    Value::Text(n.liveness.into()),
                    Value::Bool(n.decommissioning),
                    int(n.ranges),
                    int(n.leaders),
                ]
            })
            .collect(),
        Show::Ranges(table) => {
            let span = match table {
                Some(name) => Some(table_span(engine, name).await?),
                None => None,
            };
            engine
                .store
                .ranges()
                .await
                .map_err(not_here)?
                .into_iter()
                .filter(|r| {
                    span.as_ref().is_none_or(|(start, end)| {
                        r.desc.start.as_slice() < end.as_slice()
                            && start.as_slice() < r.desc.end.as_slice()
                    })
                })
                .map(|r| {
                    let replicas: Vec<String> =
                        r.desc.replicas.iter().map(|n| n.to_string()).collect();
                    vec![
                        int(r.desc.range_id),
                        Value::Text(txn::keys::Pretty(&r.desc.start).to_string()),
                        Value::Text(txn::keys::Pretty(&r.desc.end).to_string()),
                        r.leader.map_or(Value::Null, int),
                        Value::Text(format!("{{{}}}", replicas.join(","))),
                    ]
                })
                .collect()
        }
    };
    Ok(ExecResult::Rows {
        columns: columns(show),
        rows,
    })
}

/// The key span of every index of table `name`.
async fn table_span(engine: &Engine, name: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let opts = TxnOptions {
        read_only: true,
        ..TxnOptions::default()
    };
    let mut txn = engine.store.begin(opts).await?;
    let table = crate::catalog::get_table(txn.as_mut(), name).await;
    let _ = txn.rollback().await;
    let table = table?
        .ok_or_else(|| Error::UndefinedTable(format!("relation \"{name}\" does not exist")))?;
    Ok((
        txn::keys::sql_index_prefix(table.id, 0),
        txn::keys::sql_index_prefix(table.id + 1, 0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<ast::Ident> {
        s.split(' ').map(ast::Ident::new).collect()
    }

    #[test]
    fn recognises_the_cluster_listings_only() {
        assert_eq!(parse(&words("NODES")).unwrap().unwrap(), Show::Nodes);
        assert_eq!(
            parse(&words("ranges")).unwrap().unwrap(),
            Show::Ranges(None)
        );
        assert_eq!(
            parse(&words("RANGES FROM TABLE Accounts"))
                .unwrap()
                .unwrap(),
            Show::Ranges(Some("accounts".into()))
        );
        assert!(parse(&words("RANGES OF t")).unwrap().is_err());
        assert!(parse(&words("search_path")).is_none());
    }
}
