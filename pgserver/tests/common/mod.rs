//! What the pgserver end-to-end tests share: a server over an in-memory engine and a raw
//! protocol client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

/// A running server and the means to stop it.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(pgserver::Options::default()).await
    }

    pub async fn start_with(opts: pgserver::Options) -> TestServer {
        TestServer::start_on(opts, sql::Engine::memory()).await
    }

    /// A server over `engine` (which the test keeps, to change its settings).
    pub async fn start_on(opts: pgserver::Options, engine: Arc<sql::Engine>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(pgserver::serve(listener, engine, opts, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("postgresql://root@{}/tinkerdb", self.addr)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    pub async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops in time")
            .expect("server task does not panic")
    }
}

/// What the server sent in answer to one request, up to and including ReadyForQuery.
#[derive(Debug, Default)]
pub struct Reply {
    /// Message type bytes in order.
    pub kinds: String,
    /// CommandComplete tags in order.
    pub tags: Vec<String>,
    /// SQLSTATEs of ErrorResponses in order.
    pub errors: Vec<String>,
    /// DataRow first-column values (text), in order.
    pub values: Vec<Option<String>>,
    /// The ReadyForQuery status byte.
    pub status: char,
}

/// A protocol-level client: every message is visible.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(addr: SocketAddr, params: &[(&str, &str)]) -> (Raw, Reply) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut body = 196608i32.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        stream.write_all(&msg).await.unwrap();
        let mut raw = Raw { stream };
        let reply = raw.reply().await;
        (raw, reply)
    }

    pub async fn send(&mut self, kind: u8, body: &[u8]) {
        let mut msg = vec![kind];
        msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(body);
        self.stream.write_all(&msg).await.unwrap();
    }

    /// Reads one message; None at end of stream.
    pub async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let kind = self.stream.read_u8().await.ok()?;
        let len = self.stream.read_i32().await.ok()? as usize;
        let mut body = vec![0; len - 4];
        self.stream.read_exact(&mut body).await.ok()?;
        Some((kind, body))
    }

    /// Reads until ReadyForQuery (or the end of the stream).
    pub async fn reply(&mut self) -> Reply {
        let mut reply = Reply::default();
        while let Some((kind, body)) = self.recv().await {
            reply.kinds.push(kind as char);
            match kind {
                b'C' => reply.tags.push(cstr(&body)),
                b'E' => reply.errors.push(error_code(&body)),
                b'D' => reply.values.push(first_value(&body)),
                b'Z' => {
                    reply.status = body[0] as char;
                    break;
                }
                _ => {}
            }
        }
        reply
    }

    pub async fn query(&mut self, sql: &str) -> Reply {
        self.send(b'Q', &cstring(sql)).await;
        self.reply().await
    }

    /// Parse (unnamed) + Bind + Execute + Sync of a parameterless statement.
    pub async fn extended(&mut self, sql: &str) -> Reply {
        self.extended_with(sql, &[]).await
    }

    /// Parse (unnamed, no declared types) + Bind with text parameters + Execute + Sync.
    pub async fn extended_with(&mut self, sql: &str, params: &[Option<&str>]) -> Reply {
        let mut parse = cstring("");
        parse.extend(cstring(sql));
        parse.extend(0i16.to_be_bytes());
        self.send(b'P', &parse).await;
        let mut bind = cstring("");
        bind.extend(cstring(""));
        bind.extend(0i16.to_be_bytes()); // all parameters in text format
        bind.extend((params.len() as i16).to_be_bytes());
        for param in params {
            match param {
                None => bind.extend((-1i32).to_be_bytes()),
                Some(p) => {
                    bind.extend((p.len() as i32).to_be_bytes());
                    bind.extend(p.as_bytes());
                }
            }
        }
        bind.extend(0i16.to_be_bytes()); // results in text format
        self.send(b'B', &bind).await;
        let mut execute = cstring("");
        execute.extend(0i32.to_be_bytes());
        self.send(b'E', &execute).await;
        self.send(b'S', &[]).await;
        self.reply().await
    }
}

pub fn cstring(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

pub fn cstr(body: &[u8]) -> String {
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

pub fn error_code(body: &[u8]) -> String {
    let mut rest = body;
    while let Some((&field, tail)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let value = cstr(tail);
        if field == b'C' {
            return value;
        }
        rest = &tail[value.len() + 1..];
    }
    String::new()
}

pub fn first_value(body: &[u8]) -> Option<String> {
    let len = i32::from_be_bytes(body[2..6].try_into().unwrap());
    (len >= 0).then(|| String::from_utf8_lossy(&body[6..6 + len as usize]).into_owned())
}

pub async fn raw(server: &TestServer) -> Raw {
    let (raw, reply) =
        Raw::connect(server.addr, &[("user", "root"), ("database", "tinkerdb")]).await;
    assert_eq!(reply.status, 'I', "{reply:?}");
    raw
}
