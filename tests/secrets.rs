//! Tokens and codes never reach the logs, at any level, whatever fails.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use relinkd::sim::{Fault, FaultKind};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn no_token_or_code_appears_in_logs_at_any_level() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // An unlinked instance (codes flow), one whose vendor fails in every way,
    // and one whose API host refuses connections (transport errors).
    let (sim, sim_addr) = start_sim(secs(20), &["notAuthorized", "authorized"]).await;
    let kinds = [
        FaultKind::Status {
            code: 500,
            body: "x".into(),
        },
        FaultKind::Status {
            code: 400,
            body: "bad request data".into(),
        },
        FaultKind::Unauthorized,
        FaultKind::Malformed,
        FaultKind::NullBody,
        FaultKind::ErrorIn200,
        FaultKind::Hang,
    ];
    for kind in kinds {
        sim.add_fault(
            FIRST_ID + 1,
            Fault {
                method: None,
                latency: None,
                kind,
                times: Some(1),
            },
        );
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let (hook, hook_addr) = Receiver::start().await;
    hook.answer_with(&[500, 401]);
    let mut toml = fleet_toml(
        sim_addr,
        hook_addr,
        2,
        "code_ttl = \"20s\"\nlinking_poll_interval = \"2s\"\npoll_interval = \"5s\"\nrequest_timeout = \"3s\"",
    );
    toml.push_str(&format!(
        "\n[[instance]]\nid = 1101000099\nname = \"gone\"\napi_url = \"http://{closed_addr}\"\n\
         api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234599999\nchannels = [\"hook\"]\n"
    ));
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    // Codes at about 0 s, 20 s and 40 s (the first meets a 500 then a 401).
    wait(secs(50)).await;
    let code = hook.codes().pop().expect("codes were delivered");
    sim.enter_code(FIRST_ID, &code).unwrap();
    wait(secs(120)).await;
    daemon.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("linking code received"), "the scenario ran");
    assert!(logs.contains("state poll failed"), "faults were logged");
    assert!(logs.len() > 10_000, "trace level was captured");
    assert!(!logs.contains(TOKEN), "a token leaked into the logs");
    let codes: Vec<String> = hook
        .all()
        .iter()
        .filter_map(|r| r.json["code"].as_str().map(str::to_owned))
        .collect();
    assert!(codes.len() >= 3);
    for code in codes {
        assert!(!logs.contains(&code), "a code leaked into the logs");
    }
}
