//! The HTTP endpoint: `/health` and `/metrics` (Prometheus text format).

use std::sync::{Arc, OnceLock};

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
    store: Arc<kv::Store>,
}

/// Serves HTTP until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    store: Arc<kv::Store>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { metrics, store });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("HTTP server: {e}");
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
        .filter(|r| r.group().leader().is_none())
        .map(|r| r.range_id)
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
    for replica in state.store.replicas() {
        let range = replica.range_id.to_string();
        metrics::gauge!("tinkerdb_range_is_leader", "range" => range).set(
            if replica.group().is_leader() {
                1.0
            } else {
                0.0
            },
        );
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
