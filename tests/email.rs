//! The email channel against a real SMTP server (mailin-embedded) on
//! 127.0.0.1. The server runs on its own threads, so these tests run on the
//! real clock, with short code lifetimes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server};

#[derive(Clone, Default)]
struct Mailbox {
    /// Raw messages accepted.
    accepted: Arc<Mutex<Vec<String>>>,
    attempts: Arc<Mutex<u32>>,
    envelope_to: Arc<Mutex<Vec<String>>>,
    /// Answers to RCPT, in order (then 250).
    rcpt_script: Arc<Mutex<Vec<Response>>>,
    current: Vec<u8>,
}

impl Handler for Mailbox {
    fn rcpt(&mut self, _to: &str) -> Response {
        let answer = self
            .rcpt_script
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(response::OK);
        if answer.code != 250 {
            *self.attempts.lock().unwrap() += 1;
        }
        answer
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current.clear();
        self.envelope_to.lock().unwrap().extend(to.iter().cloned());
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        *self.attempts.lock().unwrap() += 1;
        let text = String::from_utf8_lossy(&self.current).into_owned();
        self.accepted.lock().unwrap().push(text);
        response::OK
    }
}

/// Starts an SMTP server answering RCPT from `rcpt`, then 250s. (Failures
/// are scripted at RCPT: after a failed DATA this server does not answer the
/// client's QUIT, which only costs a timeout.)
fn start_smtp(rcpt: Vec<Response>) -> (Mailbox, std::net::SocketAddr) {
    let mailbox = Mailbox::default();
    *mailbox.rcpt_script.lock().unwrap() = rcpt.into_iter().rev().collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(mailbox.clone());
    server.with_name("smtp.test").with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (mailbox, addr)
}

fn email_config(sim: std::net::SocketAddr, smtp: std::net::SocketAddr, ttl: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\
         [defaults]\ncode_ttl = \"{ttl}\"\nlinking_poll_interval = \"1s\"\ncodes_per_episode = 1\n\
         [[channel]]\nname = \"mail\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {port}\ntls = \"none\"\nfrom = \"relinkd <relinkd@example.com>\"\n\
         to = [\"ops@example.com\", \"Oncall <oncall@example.com>\"]\ntimeout = \"3s\"\n\
         [[instance]]\nid = {FIRST_ID}\nname = \"sales-line\"\napi_url = \"http://{sim}\"\n\
         api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234500000\nchannels = [\"mail\"]\n",
        port = smtp.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_arrives_by_email_with_a_clear_subject_after_a_transient_failure() {
    let (sim, sim_addr) = start_sim(Duration::from_secs(20), &["notAuthorized"]).await;
    let (mailbox, smtp) = start_smtp(vec![response::INTERNAL_ERROR]);
    let (config, _dir) = load_config(&email_config(sim_addr, smtp, "20s"));
    let daemon = Daemon::start(config).await;
    let mut waited = 0;
    while mailbox.accepted.lock().unwrap().is_empty() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let mail = mailbox
        .accepted
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("a mail arrived");
    let code = sim.current_code(FIRST_ID).unwrap();
    assert_eq!(*mailbox.attempts.lock().unwrap(), 2, "451 was retried");
    let subject = mail
        .lines()
        .find(|l| l.starts_with("Subject: "))
        .expect("a subject");
    assert!(
        subject.starts_with("Subject: relinkd: code for sales-line (expires "),
        "{subject}"
    );
    assert!(subject.ends_with(" UTC)"), "{subject}");
    assert!(mail.contains(&code), "{mail}");
    assert!(mail.contains("Link with phone number instead"));
    assert!(
        mail.contains("From: relinkd <relinkd@example.com>"),
        "{mail}"
    );
    let to = mailbox.envelope_to.lock().unwrap().clone();
    assert!(to.iter().any(|t| t.contains("ops@example.com")));
    assert!(to.iter().any(|t| t.contains("oncall@example.com")));
    assert_eq!(
        daemon.metrics.deliveries.count("mail", "success", "none"),
        1
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_smtp_rejection_is_not_retried() {
    let (_sim, sim_addr) = start_sim(Duration::from_secs(20), &["notAuthorized"]).await;
    let (mailbox, smtp) = start_smtp(vec![response::NO_MAILBOX]);
    let (config, _dir) = load_config(&email_config(sim_addr, smtp, "20s"));
    let daemon = Daemon::start(config).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let scrape = daemon.scrape().await;
    let lines: Vec<_> = scrape
        .lines()
        .filter(|l| l.starts_with("relinkd_deliveries_total") && !l.ends_with(" 0"))
        .collect();
    assert_eq!(*mailbox.attempts.lock().unwrap(), 1);
    assert_eq!(
        daemon.metrics.deliveries.count("mail", "failure", "client"),
        1,
        "{lines:?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_that_cannot_go_out_before_the_code_expires_is_dropped_as_expired() {
    let (_sim, sim_addr) = start_sim(Duration::from_secs(4), &["notAuthorized"]).await;
    let (mailbox, smtp) = start_smtp(vec![response::INTERNAL_ERROR; 4]);
    let (config, _dir) = load_config(&email_config(sim_addr, smtp, "4s"));
    let daemon = Daemon::start(config).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        *mailbox.attempts.lock().unwrap() >= 2,
        "retried while valid"
    );
    assert!(
        !mailbox
            .accepted
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("linking code")),
        "no code went out late"
    );
    assert_eq!(
        daemon
            .metrics
            .deliveries
            .count("mail", "failure", "expired"),
        1
    );
    daemon.stop().await;
}
