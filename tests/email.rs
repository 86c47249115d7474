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
    /// When each delivery attempt (its first RCPT) arrived.
    attempted_at: Arc<Mutex<Vec<std::time::Instant>>>,
    envelope_to: Arc<Mutex<Vec<String>>>,
    /// Answers to RCPT, in order (then 250).
    rcpt_script: Arc<Mutex<Vec<Response>>>,
    /// Until when every RCPT is refused with 451 (then accepted).
    refuse_until: Arc<Mutex<Option<std::time::Instant>>>,
    current: Vec<u8>,
    rcpts: u32,
}

impl Handler for Mailbox {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        self.rcpts = 0;
        response::OK
    }

    fn rcpt(&mut self, _to: &str) -> Response {
        if self.rcpts == 0 {
            self.attempted_at
                .lock()
                .unwrap()
                .push(std::time::Instant::now());
        }
        self.rcpts += 1;
        let refusing = self
            .refuse_until
            .lock()
            .unwrap()
            .is_some_and(|until| std::time::Instant::now() < until);
        let answer = if refusing {
            response::INTERNAL_ERROR
        } else {
            self.rcpt_script
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(response::OK)
        };
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
    let (mailbox, smtp) = start_smtp(vec![response::INTERNAL_ERROR]);
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(Duration::from_secs(20))
        .config(move |a| email_config(a.sim, smtp, "20s"))
        .start()
        .await;
    let (sim, daemon) = (&s.sim, &s.daemon);
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
    assert_eq!(mail_deliveries(daemon, "success", "none").await, 1.0);
    s.stop().await;
}

/// How many notifications on the mail channel ended `outcome`/`reason`.
async fn mail_deliveries(daemon: &Daemon, outcome: &'static str, reason: &'static str) -> f64 {
    daemon
        .metric(
            "relinkd_deliveries_total",
            &delivery("mail", outcome, reason),
        )
        .await
        .unwrap()
}

/// Waits (real time, generously) until the mail channel counts one
/// notification `outcome`/`reason`.
async fn until_counted(daemon: &Daemon, outcome: &'static str, reason: &'static str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while mail_deliveries(daemon, outcome, reason).await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no {outcome}/{reason} notification counted in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_smtp_rejection_is_not_retried() {
    let (mailbox, smtp) = start_smtp(vec![response::NO_MAILBOX]);
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(Duration::from_secs(20))
        .config(move |a| email_config(a.sim, smtp, "20s"))
        .start()
        .await;
    // The notification is over once counted: no attempt can follow.
    until_counted(&s.daemon, "failure", "client").await;
    assert_eq!(*mailbox.attempts.lock().unwrap(), 1);
    assert_eq!(mail_deliveries(&s.daemon, "success", "none").await, 0.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_code_is_never_sent_after_it_expires() {
    // The server refuses for longer than the 8 s code lives, then would
    // take the mail at once: a late attempt would get through.
    let (mailbox, smtp) = start_smtp(Vec::new());
    *mailbox.refuse_until.lock().unwrap() =
        Some(std::time::Instant::now() + Duration::from_secs(20));
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(Duration::from_secs(8))
        .config(move |a| email_config(a.sim, smtp, "8s"))
        .start()
        .await;
    // Counted with its last attempt's reason (451: transient), and as expired.
    until_counted(&s.daemon, "failure", "server").await;
    assert_eq!(
        s.daemon
            .metric("relinkd_deliveries_expired_total", &[("channel", "mail")])
            .await,
        Some(1.0)
    );
    let issued = s
        .sim
        .calls(FIRST_ID)
        .into_iter()
        .find(|c| c.method == "getAuthorizationCode")
        .expect("a code was requested")
        .at
        .into_std();
    let attempts = mailbox.attempted_at.lock().unwrap().clone();
    assert!(attempts.len() >= 2, "retried while valid: {attempts:?}");
    for at in &attempts {
        assert!(
            *at < issued + Duration::from_secs(8),
            "an attempt {:?} after the code was issued, past its 8 s life",
            *at - issued
        );
    }
    assert!(
        !mailbox
            .accepted
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("linking code")),
        "no code went out late"
    );
    s.stop().await;
}
