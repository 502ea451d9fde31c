//! The controller's HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (the control
//! loop is turning) and `/readyz` (the first list of WebStacks is in and the loop is turning).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The loop is considered stuck when it has not turned for this long.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// What the probes report.
pub struct Health {
    ready: AtomicBool,
    last_turn: Mutex<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ready: AtomicBool::new(false),
            last_turn: Mutex::new(Instant::now()),
        }
    }
}

impl Health {
    /// The control loop went round once.
    pub fn turned(&self) {
        *self.last_turn.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn live(&self) -> bool {
        self.last_turn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            < STUCK_AFTER
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.live()
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn respond(health: &Health, metrics: &dyn Fn() -> String, path: &str) -> Response<Full<Bytes>> {
    let probe = |ok: bool| {
        if ok {
            text(StatusCode::OK, "ok\n".into())
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into())
        }
    };
    match path {
        "/metrics" => {
            let mut r = text(StatusCode::OK, metrics());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        "/healthz" | "/livez" => probe(health.live()),
        "/readyz" => probe(health.ready()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Serves the endpoint on `listener` until the task is dropped. `metrics` renders the metrics
/// at each scrape.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Arc<dyn Fn() -> String + Send + Sync>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (health, metrics) = (health.clone(), metrics.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = respond(&health, metrics.as_ref(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "metrics endpoint: connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_metrics_answer_by_path() {
        let health = Health::default();
        let metrics = || "webstack_stacks 3\n".to_owned();
        assert_eq!(respond(&health, &metrics, "/healthz").status(), 200);
        assert_eq!(respond(&health, &metrics, "/readyz").status(), 503);
        health.set_ready(true);
        assert_eq!(respond(&health, &metrics, "/readyz").status(), 200);
        assert_eq!(respond(&health, &metrics, "/metrics").status(), 200);
        assert_eq!(respond(&health, &metrics, "/other").status(), 404);
    }
}
