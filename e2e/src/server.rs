//! An axum server for tests, on its own thread and Tokio runtime, plus the route that serves
//! the Datastar client.

use std::net::{Ipv4Addr, SocketAddr};
use std::thread::JoinHandle;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::asset::datastar_js;

/// An axum app listening on `127.0.0.1` at a free port, served from a thread of its own.
///
/// Running on its own runtime means a blocking test (and the blocking [`crate::Tab`] calls in
/// it) never starves the handlers. Dropping the server stops it at once, long-lived SSE
/// streams included.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    handle: Handle,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and starts serving `app`.
    ///
    /// # Panics
    ///
    /// When the runtime or the listener can't be set up.
    pub fn start(app: Router) -> TestServer {
        TestServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), app)
    }

    /// Binds `addr` and starts serving `app`: with the address of a server just dropped, a
    /// restart on the same port (what a browser tab sees when `cargo run` starts again).
    ///
    /// # Panics
    ///
    /// When the runtime or the listener can't be set up (the port is taken, say).
    pub fn start_on(addr: SocketAddr, app: Router) -> TestServer {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dstar-e2e-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("tokio runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind(addr).await {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("bind {addr}: {e}")));
                            return;
                        }
                    };
                    let addr = listener.local_addr().map_err(|e| e.to_string());
                    let _ = ready_tx.send(addr.map(|addr| (addr, Handle::current())));
                    tokio::select! {
                        served = axum::serve(listener, app) => {
                            if let Err(e) = served {
                                eprintln!("dstar-e2e: test server stopped: {e}");
                            }
                        }
                        _ = shutdown_rx => {}
                    }
                });
                // Dropping the runtime here cancels every connection task still running.
            })
            .expect("spawn the test server thread");

        match ready_rx.recv() {
            Ok(Ok((addr, handle))) => TestServer {
                addr,
                handle,
                shutdown: Some(shutdown_tx),
                thread: Some(thread),
            },
            Ok(Err(e)) => panic!("dstar-e2e: cannot start the test server: {e}"),
            Err(_) => panic!("dstar-e2e: the test server thread died while starting"),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL joined with `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's runtime, to spawn tasks next to the handlers (e.g. to push events to a
    /// live stream from the test).
    pub fn runtime(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A router serving the genuine Datastar client at `/datastar.js` as `application/javascript`;
/// merge it into the app under test.
///
/// The client is loaded (and fetched through cargo if needed) right here, not in the first
/// request; this panics as [`datastar_js`] does.
#[track_caller]
pub fn datastar_js_route<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let js = datastar_js();
    Router::new().route(
        "/datastar.js",
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, "application/javascript"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                js,
            )
                .into_response()
        }),
    )
}

/// A whole HTML page around `body` that loads `/datastar.js` as a module.
pub fn datastar_page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>dstar e2e</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <script type=\"module\" src=\"/datastar.js\"></script>\n</head>\n\
         <body>\n{body}\n</body>\n</html>\n"
    ))
}
