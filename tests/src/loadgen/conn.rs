//! One HTTP/1.1 keep-alive connection per virtual user, straight on hyper's
//! connection API: no pool, no per-request lookup, and exactly
//! `--concurrency` connections to the target.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Where every request goes.
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header: the base URL's authority.
    pub host: HeaderValue,
    /// The base URL's path without its trailing `/` (usually empty).
    pub prefix: String,
}

impl Target {
    /// An origin-form request target: the prefix, then `path_and_query`.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, String> {
        format!("{}{path_and_query}", self.prefix)
            .parse()
            .map_err(|e| format!("`{path_and_query}`: {e}"))
    }
}

/// A failure below HTTP.
#[derive(Debug)]
pub enum NetError {
    Connect(std::io::Error),
    Handshake(hyper::Error),
    Send(hyper::Error),
    Body(hyper::Error),
    Timeout,
}

impl NetError {
    /// A short kind for the report: few distinct values.
    pub fn kind(&self, step: &str) -> String {
        match self {
            NetError::Connect(e) => format!("{step} connect {:?}", e.kind()),
            NetError::Handshake(_) => format!("{step} connect handshake"),
            NetError::Send(e) | NetError::Body(e) => {
                let what = if e.is_incomplete_message() {
                    "closed mid-message"
                } else if e.is_canceled() {
                    "canceled"
                } else if e.is_closed() {
                    "closed"
                } else if e.is_parse() {
                    "bad response"
                } else if e.is_timeout() {
                    "timeout"
                } else {
                    "io"
                };
                let part = if matches!(self, NetError::Send(_)) {
                    "send"
                } else {
                    "body"
                };
                format!("{step} {part} {what}")
            }
            NetError::Timeout => format!("{step} timeout"),
        }
    }
}

pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
    /// Connections opened, requests sent (monotonic).
    pub connects: u64,
    pub requests: u64,
    /// The last attempt to connect failed (the caller backs off).
    pub connect_failed: bool,
}

impl Conn {
    /// Connects lazily, on the first request.
    pub fn new(target: Arc<Target>, timeout: Duration) -> Self {
        Self {
            target,
            sender: None,
            timeout,
            connects: 0,
            requests: 0,
            connect_failed: false,
        }
    }

    pub async fn get(&mut self, uri: Uri) -> Result<(StatusCode, Bytes), NetError> {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri;
        self.send(req).await
    }

    pub async fn post_json(
        &mut self,
        uri: Uri,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), NetError> {
        let mut req = Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.send(req).await
    }

    /// One exchange within the timeout; any failure drops the connection
    /// (a late answer must not be read as the next request's).
    async fn send(
        &mut self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), NetError> {
        req.headers_mut().insert(HOST, self.target.host.clone());
        self.requests += 1;
        let outcome = match tokio::time::timeout(self.timeout, self.exchange(req)).await {
            Ok(result) => result,
            Err(_) => Err(NetError::Timeout),
        };
        if outcome.is_err() {
            self.sender = None;
        }
        outcome
    }

    async fn exchange(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), NetError> {
        let alive = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            self.sender = None;
            let connected = self.connect().await;
            self.connect_failed = connected.is_err();
            self.sender = Some(connected?);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(NetError::Timeout);
        };
        let resp = sender.send_request(req).await.map_err(NetError::Send)?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(NetError::Body)?
            .to_bytes();
        Ok((status, body))
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, NetError> {
        self.connects += 1;
        let stream = TcpStream::connect(self.target.addr)
            .await
            .map_err(NetError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(NetError::Handshake)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}
