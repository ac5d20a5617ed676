//! A reader of `text/event-stream` responses, one frame at a time.

use std::time::Duration;

/// Reads the frames of an event stream (`/api/events/stream`) as they arrive.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    /// Wraps a response that must be an event stream.
    pub fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next frame, blank line included; waits at most 10 s for each chunk.
    pub async fn next_frame(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                return self.buf.drain(..end + 2).collect();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The ids of the next `n` frames that carry one (keep-alive comments carry none).
    pub async fn ids(&mut self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        while ids.len() < n {
            if let Some(id) = frame_id(&self.next_frame().await) {
                ids.push(id);
            }
        }
        ids
    }
}

/// The `id:` of a frame.
pub fn frame_id(frame: &str) -> Option<String> {
    frame
        .lines()
        .find_map(|l| l.strip_prefix("id: ").or(l.strip_prefix("id:")))
        .map(|id| id.trim().to_string())
}

/// The first `data:` line of a frame, trimmed.
pub fn frame_data(frame: &str) -> Option<&str> {
    frame
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
}
