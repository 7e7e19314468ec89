//! The upload request: `POST {url}/v1/reports` with the repository token, the JSON body
//! gzip-compressed when large (progress printed as it goes), success exactly 204.

use std::io::Write;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::coverage::Mode;

/// Bodies from this size are compressed and show progress.
const LARGE: usize = 1024 * 1024;
const CHUNK: usize = 256 * 1024;

pub async fn upload(
    url: &str,
    token: &str,
    sha: &str,
    data: serde_json::Map<String, Value>,
    mode: Mode,
) -> Result<(), String> {
    let base = url.trim().trim_end_matches('/');
    let endpoint = format!("{base}/v1/reports");
    let body = serde_json::to_vec(&json!({"commit_sha": sha, "data": data, "mode": mode}))
        .map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client
        .post(&endpoint)
        .header("authorization", format!("token {token}"))
        .header("content-type", "application/json");
    if body.len() >= LARGE {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).map_err(|e| e.to_string())?;
        let compressed = gz.finish().map_err(|e| e.to_string())?;
        eprintln!(
            "uploading {} KiB ({} KiB compressed)",
            body.len() / 1024,
            compressed.len() / 1024
        );
        request = request
            .header("content-encoding", "gzip")
            .header("content-length", compressed.len())
            .body(reqwest::Body::wrap_stream(progress(compressed)));
    } else {
        request = request.body(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("API over {base} could not be reached: {e}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or(text);
    Err(format!(
        "API over {base} responded with HTTP {}: {reason}",
        status.as_u16()
    ))
}

/// The body in chunks, printing each tenth sent.
fn progress(body: Vec<u8>) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let total = body.len();
    let body = Bytes::from(body);
    let mut shown = 0;
    let chunks: Vec<Bytes> = (0..total)
        .step_by(CHUNK)
        .map(|start| body.slice(start..(start + CHUNK).min(total)))
        .collect();
    let mut sent = 0;
    futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        sent += chunk.len();
        let tenth = sent * 10 / total.max(1);
        if tenth > shown {
            shown = tenth;
            eprintln!("  {}% sent", tenth * 10);
        }
        Ok(chunk)
    }))
}
