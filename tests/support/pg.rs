//! A throwaway PostgreSQL server for tests: `initdb` into a temporary
//! folder, `pg_ctl start` on a free port, trust authentication, no fsync.
//! Include it with `#[path = "support/pg.rs"] mod pg;`.
//!
//! Without PostgreSQL installed the tests that need it skip (one line on
//! stderr), except under CI (`CI` set), where that is a failure. As root
//! (containers), initdb and postgres refuse to run, so they run as the
//! `postgres` user through `runuser`.
//!
//! [`shared`] is one server for a whole test binary, each test in a
//! database of its own ([`Cluster::create_database`]). A static is never
//! dropped, so every server also gets a watchdog shell that stops it and
//! removes its folder once the test process has gone.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

pub struct Cluster {
    dir: tempfile::TempDir,
    /// Where `initdb`, `pg_ctl` and `postgres` are.
    bin: PathBuf,
    port: u16,
    /// Running as root: PostgreSQL's commands run as `postgres`.
    as_postgres: bool,
}

/// One server for every test of the binary; `None` when PostgreSQL is not
/// installed (and `CI` is not set).
pub fn shared() -> Option<&'static Cluster> {
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
    SHARED.get_or_init(Cluster::start).as_ref()
}

/// The folder with `initdb` and `pg_ctl`: on `PATH`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian and Ubuntu keep them there).
fn find_bin() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_tools(dir))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a bound port").port()
}

/// Runs `command`, panicking with its output when it fails.
fn run(command: &mut Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A shell word in single quotes.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Cluster {
    /// A new server, started; `None` when PostgreSQL is not installed.
    pub fn start() -> Option<Cluster> {
        Self::start_with(|_| {})
    }

    /// A server that takes TCP connections only over TLS (`hostssl`), with
    /// this certificate and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<Cluster> {
        Self::start_with(|cluster| {
            let data = cluster.data();
            for (name, text) in [("server.crt", cert_pem), ("server.key", key_pem)] {
                let path = data.join(name);
                std::fs::write(&path, text).expect("write the TLS files");
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("a private key");
                if cluster.as_postgres {
                    run(
                        Command::new("chown").arg("postgres:postgres").arg(&path),
                        "chown",
                    );
                }
            }
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
            text.push_str("\nssl = on\n");
            std::fs::write(&conf, text).expect("postgresql.conf");
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .expect("pg_hba.conf");
        })
    }

    fn start_with(setup: impl FnOnce(&Cluster)) -> Option<Cluster> {
        let Some(bin) = find_bin() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PostgreSQL is not installed (no initdb/pg_ctl on PATH or in \
                     /usr/lib/postgresql/*/bin), and CI must run the PostgreSQL tests"
                );
            }
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                eprintln!("skipping: PostgreSQL is not installed (apt install postgresql)")
            });
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("rapport-pg-")
            .tempdir()
            .expect("a temporary folder");
        let as_postgres = is_root();
        if as_postgres {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path()),
                "chown",
            );
        }
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            as_postgres,
        };
        let data = cluster.data();
        run(
            cluster.command("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        );
        setup(&cluster);
        cluster.watch();
        // Another process can take the free port before postgres binds it.
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port();
            match cluster.try_start() {
                Ok(()) => return Some(cluster),
                Err(error) => last = error,
            }
        }
        panic!("cannot start PostgreSQL: {last}");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// One of PostgreSQL's programs, as the user allowed to run it.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn try_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .arg("-o")
            .arg(options)
            .args(["-w", "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "pg_ctl start failed ({}):\n{}{}\nlog:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        ))
    }

    /// Stops the server and removes its folder once this process has
    /// exited, however it exits.
    fn watch(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let runuser = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        // In the background of a shell that exits at once: the loop is
        // adopted by init, and nothing is left for this process to wait for.
        let script = format!(
            "(while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {runuser}{pg_ctl} -D {data} stop -m immediate; rm -rf {dir}) \
             </dev/null >/dev/null 2>&1 &",
            pid = std::process::id(),
            pg_ctl = quote(&pg_ctl.display().to_string()),
            data = quote(&self.data().display().to_string()),
            dir = quote(&self.dir.path().display().to_string()),
        );
        run(
            Command::new("sh").args(["-c", &script]),
            "the server's watchdog",
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database of its own for one test, named after `name` (made
    /// unique), and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let db = format!("t_{clean}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.execute("postgres", &format!("CREATE DATABASE {db}"));
        self.url(&db)
    }

    /// Runs SQL in database `db`. On a thread of its own, so async tests
    /// (already inside a runtime) can call it too.
    pub fn execute(&self, db: &str, sql: &str) {
        let url = self.url(db);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    runtime.block_on(async {
                        let (client, connection) =
                            tokio_postgres::connect(&url, tokio_postgres::NoTls)
                                .await
                                .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
                        let driver = tokio::spawn(connection);
                        client
                            .batch_execute(sql)
                            .await
                            .unwrap_or_else(|e| panic!("{sql}: {e}"));
                        drop(client);
                        let _ = driver.await;
                    })
                })
                .join()
                .expect("the SQL ran")
        })
    }

    /// Stops the server (`-m fast`): connections are closed, as when the
    /// database goes away.
    pub fn stop(&self) {
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    /// Starts it again on the same port.
    pub fn start_again(&self) {
        if let Err(error) = self.try_start() {
            panic!("{error}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The folder goes with `self.dir`.
    }
}
