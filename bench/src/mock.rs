//! An in-process stand-in for the collector, for tests: OTLP/gRPC trace and
//! logs services that remember trace ids (and reject a fixed number of items
//! per request through `partial_success`), plus the few Jaeger API routes
//! and the native search route `query` uses, answering from the same memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// What the mock collector has received.
#[derive(Clone, Default)]
pub struct Mock {
    /// Hex trace id → spans received.
    pub traces: Arc<Mutex<BTreeMap<String, usize>>>,
    pub logs: Arc<Mutex<u64>>,
    /// Items every ack reports as rejected.
    pub reject: i64,
    /// Refuse every export with UNAVAILABLE (backpressure).
    pub refuse: bool,
    /// Serve no Jaeger API (every HTTP path answers 404).
    pub no_api: bool,
}

/// Addresses of a running mock.
pub struct Running {
    pub grpc: String,
    pub http: String,
    pub mock: Mock,
}

#[tonic::async_trait]
impl TraceService for Mock {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        if self.refuse {
            return Err(Status::unavailable("mock backpressure"));
        }
        let mut traces = self.traces.lock().unwrap();
        let req = req.into_inner();
        for span in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            *traces.entry(hex::encode(&span.trace_id)).or_default() += 1;
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (self.reject > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: self.reject,
                error_message: "mock rejection".into(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Mock {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        if self.refuse {
            return Err(Status::unavailable("mock backpressure"));
        }
        let req = req.into_inner();
        let n = req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum::<usize>();
        *self.logs.lock().unwrap() += n as u64;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (self.reject > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: self.reject,
                error_message: "mock rejection".into(),
            }),
        }))
    }
}

async fn services() -> Json<Value> {
    Json(json!({ "data": crate::gen::SERVICES.iter().map(|s| s.name).collect::<Vec<_>>() }))
}

async fn trace_by_id(
    State(m): State<Mock>,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let n = m
        .traces
        .lock()
        .unwrap()
        .get(&id)
        .copied()
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(
        json!({ "data": [{ "traceID": id, "spans": vec![json!({}); n] }] }),
    ))
}

async fn search(State(m): State<Mock>, Query(q): Query<BTreeMap<String, String>>) -> Json<Value> {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let traces = m.traces.lock().unwrap();
    let data: Vec<Value> = traces
        .keys()
        .take(limit)
        .map(|id| json!({ "traceID": id }))
        .collect();
    Json(json!({ "data": data }))
}

/// The native search (`/api/v1/traces?q=`): the first `limit` traces.
async fn native_search(
    State(m): State<Mock>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Json<Value> {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    let traces = m.traces.lock().unwrap();
    let found: Vec<Value> = traces
        .keys()
        .take(limit)
        .map(|id| json!({ "trace_id": id }))
        .collect();
    Json(json!({ "traces": found, "next_cursor": null }))
}

/// Starts `mock` on two ephemeral ports.
pub async fn start(mock: Mock) -> Running {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap().to_string();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(mock.clone()))
        .add_service(LogsServiceServer::new(mock.clone()));
    tokio::spawn(server.serve_with_incoming(TcpListenerStream::new(grpc)));
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap().to_string();
    let app = if mock.no_api {
        Router::new()
    } else {
        Router::new()
            .route("/api/services", get(services))
            .route("/api/traces", get(search))
            .route("/api/traces/{id}", get(trace_by_id))
            .route("/api/v1/traces", get(native_search))
            .with_state(mock.clone())
    };
    tokio::spawn(async move { axum::serve(http, app).await });
    Running {
        grpc: grpc_addr,
        http: http_addr,
        mock,
    }
}
