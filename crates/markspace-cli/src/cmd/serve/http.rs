//! A minimal HTTP/1.x responder for the exporter's three read-only routes, on a fixed number of
//! worker threads.
//!
//! Hand-written rather than `tiny_http` (tried first): tiny_http hands each connection to a task
//! pool that starts a new thread whenever all are busy, so 1,000 parallel scrapes started about
//! as many threads, left the exporter's RSS 1.5–1.8 MB higher after each round, and some
//! clients saw their connection reset. Here a fixed set of workers accept from one listener
//! (the kernel queues the rest: the backlog is raised to 1,024), each request head is read with
//! a size cap and a timeout, the answer is written with `Connection: close`, and nothing is
//! allocated per connection but the head buffer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Largest request head read.
const MAX_HEAD: usize = 8 << 10;
/// Time a client has to send its request and to take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Worker threads.
const WORKERS: usize = 4;
/// Connections the kernel queues while every worker is busy.
const BACKLOG: i32 = 1024;

/// An answer.
pub(crate) struct Reply {
    /// Status code.
    pub(crate) status: u16,
    /// `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Arc<str>,
}

impl Reply {
    /// A plain-text answer.
    pub(crate) fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Serves forever on `listener`: `route(method, path)` answers each request.
pub(crate) fn serve<F>(listener: TcpListener, route: F) -> std::io::Result<()>
where
    F: Fn(&str, &str) -> Reply + Send + Sync + 'static,
{
    rustix::net::listen(&listener, BACKLOG)?;
    let listener = Arc::new(listener);
    let route = Arc::new(route);
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let listener = Arc::clone(&listener);
            let route = Arc::clone(&route);
            std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || loop {
                    if let Ok((stream, _)) = listener.accept() {
                        // A client that goes away or stalls is its own business.
                        let _ = answer(stream, &*route);
                    }
                })
        })
        .collect::<Result<_, _>>()?;
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// Reads one request head and writes the answer.
fn answer(mut stream: TcpStream, route: &dyn Fn(&str, &str) -> Reply) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let reply = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head_complete(&head) {
            break None;
        }
        if head.len() > MAX_HEAD {
            break Some(Reply::text(431, "request head too large\n"));
        }
    };
    let line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or(target);
    let reply = match reply {
        Some(r) => r,
        None if !matches!(method, "GET" | "HEAD") => Reply::text(405, "only GET and HEAD\n"),
        None => route(method, path),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(reply.body.as_bytes());
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// Whether the head is complete (an empty line ends it).
fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(request: &[u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            answer(s, &|_, path| Reply::text(200, path)).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(request).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        server.join().unwrap();
        out
    }

    #[test]
    fn answers_get_with_length_and_close() {
        let out = exchange(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\nConnection: close\r\n\r\n/metrics"
        );
    }

    #[test]
    fn head_has_no_body_and_other_methods_are_refused() {
        let out = exchange(b"HEAD /healthz HTTP/1.0\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 200 OK") && out.ends_with("\r\n\r\n"),
            "{out}"
        );
        assert!(exchange(b"POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    }

    #[test]
    fn rejects_an_endless_head() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert!(exchange(&req).starts_with("HTTP/1.1 431 "));
    }
}
