//! The HTTP endpoint: `/health`, `/metrics` (Prometheus text format) and `/status` (JSON: the
//! node and the replicas it holds).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Installs the process-wide metrics recorder once and returns its handle.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program); then this
            // endpoint reports nothing, which is logged rather than fatal.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    store: kv::Node,
}

/// Serves HTTP until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    store: kv::Node,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .route("/status", get(status));
    // Fault injection for multi-node tests: `PUT /debug/cut` with a body of comma-separated
    // node ids cuts this node off from them (an empty body heals). Only in builds with
    // failpoints compiled in, never in a release a user runs.
    #[cfg(feature = "failpoints")]
    let app = app.route("/debug/cut", axum::routing::put(cut));
    let app = app.with_state(AppState { metrics, store });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("HTTP server: {e}");
    }
}

#[cfg(feature = "failpoints")]
async fn cut(State(state): State<AppState>, body: String) -> impl IntoResponse {
    let nodes: Result<Vec<kv::NodeId>, _> = body
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect();
    match nodes {
        Ok(nodes) => {
            tracing::warn!(?nodes, "injected fault: cut off from these nodes");
            state.store.faults().cut(nodes);
            (
                StatusCode::OK,
                format!("{:?}\n", state.store.faults().cut_nodes()),
            )
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("node ids: {e}\n")),
    }
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(failure) = state.store.health() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{failure}\n"));
    }
    let leaderless: Vec<_> = state
        .store
        .replicas()
        .iter()
        .filter(|r| r.status.leader.is_none())
        .map(|r| r.desc.range_id)
        .collect();
    if leaderless.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ranges without a leader: {leaderless:?}\n"),
        )
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let replicas = state.store.replicas();
    let mut led = 0;
    for replica in &replicas {
        let range = replica.desc.range_id.to_string();
        let status = &replica.status;
        led += status.is_leader as u64;
        metrics::gauge!("tinkerdb_range_is_leader", "range" => range.clone())
            .set(if status.is_leader { 1.0 } else { 0.0 });
        metrics::gauge!("tinkerdb_range_term", "range" => range.clone()).set(status.term as f64);
        let applied = status.applied_index.unwrap_or(0);
        metrics::gauge!("tinkerdb_range_applied_index", "range" => range.clone())
            .set(applied as f64);
        // How far this replica's state machine trails what it knows is committed.
        let lag = status.committed_index.unwrap_or(0).saturating_sub(applied);
        metrics::gauge!("tinkerdb_range_apply_lag", "range" => range.clone()).set(lag as f64);
        let m = &replica.membership;
        metrics::gauge!("tinkerdb_range_voters", "range" => range).set(m.all_voters().len() as f64);
    }
    metrics::gauge!("tinkerdb_replicas").set(replicas.len() as f64);
    metrics::gauge!("tinkerdb_ranges_led").set(led as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// One replica in `/status`.
#[derive(serde::Serialize)]
struct ReplicaStatus {
    range_id: u64,
    /// The span, keys in their readable form.
    start: String,
    end: String,
    /// The leader this replica knows of.
    leader: Option<u64>,
    /// The descriptor's replica list.
    replicas: Vec<u64>,
    /// The Raft voter sets (two while a change is joint) and learners.
    voters: Vec<Vec<u64>>,
    learners: Vec<u64>,
    applied_index: Option<u64>,
}

/// `/status`: this node and its replicas, as JSON.
async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let replicas: Vec<ReplicaStatus> = state
        .store
        .replicas()
        .iter()
        .map(|r| {
            let (desc, m, s) = (r.desc.clone(), &r.membership, &r.status);
            ReplicaStatus {
                range_id: desc.range_id,
                start: kv::keys::Pretty(&desc.start).to_string(),
                end: kv::keys::Pretty(&desc.end).to_string(),
                leader: s.leader,
                replicas: desc.replicas,
                voters: m
                    .voters
                    .iter()
                    .map(|v| v.iter().copied().collect())
                    .collect(),
                learners: m.learners.iter().copied().collect(),
                applied_index: s.applied_index,
            }
        })
        .collect();
    let body = serde_json::json!({
        "node_id": state.store.node_id(),
        "cluster_id": format!("{:x}", state.store.cluster_id()),
        "grpc_addr": state.store.advertise_addr(),
        "replicas": replicas,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
}
