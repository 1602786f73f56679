//! A healthchecks.io-style ping receiver on 127.0.0.1: a real HTTP listener (std's TCP and
//! HTTP/1.1 by hand: it only reads a request line, headers and a body) that records what it got.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Records every request line and body it receives; answers 200.
pub struct PingServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Each request's path and body, in order.
    pub got: Arc<Mutex<Vec<(String, String)>>>,
    /// Each request's first line (`POST /path HTTP/1.1`), in order.
    pub request_lines: Arc<Mutex<Vec<String>>>,
}

/// Starts a [`PingServer`] on a free port, served by a background thread.
pub fn ping_server() -> PingServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let request_lines = Arc::new(Mutex::new(Vec::new()));
    let l = request_lines.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { break };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            l.lock().unwrap().push(line.trim().to_string());
            g.lock()
                .unwrap()
                .push((path, String::from_utf8_lossy(&body).into_owned()));
            let mut s = s;
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    PingServer {
        url,
        got,
        request_lines,
    }
}
