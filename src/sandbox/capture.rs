//! Reading a sandboxed program's stdout or stderr with a cap: the first bytes are kept, and
//! going over the cap is reported at once so the program can be killed instead of drained for
//! ever.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub fn spawn<R>(pipe: Option<R>, cap: usize, overflow: Arc<Notify>) -> JoinHandle<Vec<u8>>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut kept = Vec::new();
        let Some(mut pipe) = pipe else { return kept };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        overflow.notify_one();
                        break;
                    }
                }
            }
        }
        kept
    })
}
