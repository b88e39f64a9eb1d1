//! What more than one browser test file needs.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use axum::Router;
use dstar::App;
use tokio::sync::oneshot;

/// `App::serve_listener` on a thread and runtime of its own, stopped when dropped.
pub struct TlsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsServer {
    pub fn start(app: App, router: Router) -> Self {
        let (ready, address) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1:0");
                ready.send(listener.local_addr().unwrap()).unwrap();
                app.serve_listener(listener, router, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        let addr = address.recv().expect("the server thread starts");
        TlsServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
