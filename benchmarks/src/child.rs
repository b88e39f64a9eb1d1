//! Running the load side in a second process: the bench binary starts itself again with
//! [`CHILD_ENV`] set and talks to that copy over its standard input and output, one line at a
//! time. The server's process then holds only the server (its allocation counter sees nothing
//! of the client), and each process stays under the open-file limit.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

/// Set in the environment of the client copy.
pub const CHILD_ENV: &str = "DSTAR_BENCH_CHILD";

/// The client copy's arguments, when this process is one.
pub fn child_args() -> Option<Vec<String>> {
    std::env::var_os(CHILD_ENV)?;
    Some(std::env::args().skip(1).collect())
}

/// The client copy, seen from the server's process.
#[derive(Debug)]
pub struct Child {
    child: tokio::process::Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Child {
    /// Starts this binary again as a client with `args`.
    pub fn spawn(args: &[String]) -> Child {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let mut child = Command::new(exe)
            .args(args)
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the client process");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        Child {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next line the client writes that starts with `tag ` (other lines are echoed); the
    /// rest of that line. Panics when the client exits first.
    pub async fn expect(&mut self, tag: &str) -> String {
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .expect("read from the client")
                .unwrap_or_else(|| panic!("the client exited while `{tag}` was expected"));
            if let Some(rest) = line.strip_prefix(tag) {
                return rest.trim().to_owned();
            }
            println!("  client: {line}");
        }
    }

    /// Sends the client one line.
    pub async fn say(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the client");
        self.stdin.flush().await.expect("flush to the client");
    }

    /// Waits for the client to exit.
    pub async fn finish(mut self) {
        drop(self.stdin);
        let status = self.child.wait().await.expect("wait for the client");
        assert!(status.success(), "the client failed: {status}");
    }
}

/// In the client copy: tells the server's process `tag rest`.
pub fn tell(tag: &str, rest: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{tag} {rest}");
    let _ = out.flush();
}

/// In the client copy: the lines the server's process sends.
#[derive(Debug)]
pub struct Orders {
    lines: Lines<BufReader<tokio::io::Stdin>>,
}

impl Orders {
    /// Reads the standard input line by line.
    pub fn new() -> Self {
        Orders {
            lines: BufReader::new(tokio::io::stdin()).lines(),
        }
    }

    /// The next line (empty once the server's process closed the pipe).
    pub async fn next(&mut self) -> String {
        self.lines
            .next_line()
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl Default for Orders {
    fn default() -> Self {
        Orders::new()
    }
}
