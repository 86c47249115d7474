//! The GREEN-API simulator, driven over real HTTP like the daemon drives the vendor.

use std::time::Duration;

use relinkd::sim::{
    EnterError, Fault, FaultKind, SimArgs, SimConfig, SimInstance, Simulator, fleet, run_cli, serve,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, advance};

const ID: u64 = 1_101_000_001;
const OTHER: u64 = 1_101_000_002;
const TOKEN: &str = "tok-secret-1";
const PHONE: u64 = 441_234_567_890;

const BAD_PHONE: &str =
    "Validation failed. Details: Wrong format. 'phoneNumber' must contain only digits";
const STARTING: &str = "instance in starting process try later";

fn instance(id: u64, state: &str) -> SimInstance {
    SimInstance {
        id,
        token: TOKEN.to_owned(),
        phone: PHONE,
        state: state.to_owned(),
    }
}

/// No rate limit on state calls: for tests that are not about rate limits.
fn unlimited() -> SimConfig {
    SimConfig {
        state_call_interval: Duration::ZERO,
        ..SimConfig::default()
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
}

struct Harness {
    sim: Simulator,
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

async fn start(config: SimConfig, instances: &[SimInstance]) -> Harness {
    let sim = Simulator::new(config);
    for i in instances {
        sim.add_instance(i.clone());
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, sim.clone(), async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    Harness {
        sim,
        base,
        http,
        stop: Some(stop),
        server: Some(server),
    }
}

impl Harness {
    fn vendor_url(&self, id: u64, method: &str, token: &str) -> String {
        format!("{}/waInstance{id}/{method}/{token}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Reply {
            status,
            headers,
            text,
        }
    }

    async fn get_raw(&self, url: &str) -> Reply {
        self.send(self.http.get(url)).await
    }

    async fn get(&self, id: u64, method: &str) -> Reply {
        self.get_raw(&self.vendor_url(id, method, TOKEN)).await
    }

    async fn post(&self, id: u64, method: &str, body: &str) -> Reply {
        let url = self.vendor_url(id, method, TOKEN);
        self.send(
            self.http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    async fn request_code(&self, id: u64) -> Reply {
        self.post(
            id,
            "getAuthorizationCode",
            &json!({"phoneNumber": PHONE}).to_string(),
        )
        .await
    }

    async fn control_get(&self, path: &str) -> Reply {
        self.get_raw(&format!("{}{path}", self.base)).await
    }

    async fn control_post(&self, path: &str, body: &str) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }
}

fn statuses(sim: &Simulator, id: u64) -> Vec<(String, u16)> {
    sim.calls(id)
        .into_iter()
        .map(|c| (c.method, c.status))
        .collect()
}

#[tokio::test]
async fn wrong_token_is_401_and_unknown_instance_is_403() {
    let h = start(unlimited(), &[instance(ID, "authorized")]).await;

    let r = h
        .get_raw(&h.vendor_url(ID, "getStateInstance", "wrong"))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"error": "Unauthorized"}));

    let r = h.get(999, "getStateInstance").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json(), json!({"error": "Forbidden"}));

    for path in [
        format!("/waInstanceXYZ/getStateInstance/{TOKEN}"),
        format!("/instance{ID}/getStateInstance/{TOKEN}"),
        format!("/waInstance{ID}/getStateInstance"),
        format!("/waInstance{ID}/getStateInstance/{TOKEN}/extra"),
    ] {
        assert_eq!(h.control_get(&path).await.status, 404, "{path}");
    }
    assert_eq!(h.get(ID, "noSuchMethod").await.status, 404);
    assert_eq!(h.post(ID, "getStateInstance", "").await.status, 405);
    assert_eq!(h.get(ID, "getAuthorizationCode").await.status, 405);
    let put = h
        .send(h.http.put(h.vendor_url(ID, "getStateInstance", TOKEN)))
        .await;
    assert_eq!(put.status, 405);

    assert_eq!(
        statuses(&h.sim, ID),
        vec![
            ("getStateInstance".to_owned(), 401),
            ("noSuchMethod".to_owned(), 404),
            ("getStateInstance".to_owned(), 405),
            ("getAuthorizationCode".to_owned(), 405),
            ("getStateInstance".to_owned(), 405),
        ]
    );
    h.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_state_is_reported_as_is_even_when_unknown() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    let r = h.get(ID, "getStateInstance").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.json(), json!({"stateInstance": "notAuthorized"}));

    for state in [
        "blocked",
        "sleepMode",
        "yellowCard",
        "suspended",
        "pendingCode",
        "weird",
    ] {
        h.sim.set_state(ID, state);
        assert_eq!(h.sim.state(ID).as_deref(), Some(state));
        assert_eq!(
            h.get(ID, "getStateInstance").await.json(),
            json!({"stateInstance": state})
        );
    }
    assert_eq!(h.sim.state(999), None);
}

#[tokio::test(start_paused = true)]
async fn a_second_state_call_within_a_second_is_rate_limited() {
    let h = start(
        SimConfig::default(),
        &[instance(ID, "notAuthorized"), instance(OTHER, "authorized")],
    )
    .await;
    assert_eq!(h.get(ID, "getStateInstance").await.status, 200);

    // State calls share one bucket per instance.
    let r = h.get(ID, "getWaSettings").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json(), json!({"error": "Too Many Requests"}));
    assert_eq!(h.get(ID, "getStateInstance").await.status, 429);
    // Another instance has its own bucket; code requests have their own.
    assert_eq!(h.get(OTHER, "getStateInstance").await.status, 200);
    assert_eq!(h.request_code(ID).await.status, 200);

    // Measured from the last accepted call: rejected calls do not extend it.
    advance(Duration::from_millis(999)).await;
    assert_eq!(h.get(ID, "getStateInstance").await.status, 429);
    advance(Duration::from_millis(1)).await;
    assert_eq!(h.get(ID, "getStateInstance").await.status, 200);
    advance(Duration::from_secs(1)).await;
    assert_eq!(h.get(ID, "logout").await.status, 200);
    assert_eq!(h.get(ID, "reboot").await.status, 429);

    let statuses: Vec<u16> = h.sim.calls(ID).iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![200, 429, 429, 200, 429, 200, 200, 429]);
}

#[tokio::test(start_paused = true)]
async fn code_requests_are_rate_limited_on_their_own() {
    let h = start(SimConfig::default(), &[instance(ID, "notAuthorized")]).await;
    assert_eq!(h.request_code(ID).await.status, 200);
    let r = h.request_code(ID).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json(), json!({"error": "Too Many Requests"}));
    assert_eq!(h.sim.codes_issued(ID), 1);
    advance(Duration::from_secs(1)).await;
    assert_eq!(h.request_code(ID).await.status, 200);
    assert_eq!(h.sim.codes_issued(ID), 2);
}

#[tokio::test(start_paused = true)]
async fn phone_number_must_be_an_integer() {
    let h = start(SimConfig::default(), &[instance(ID, "notAuthorized")]).await;
    for body in [
        r#"{"phoneNumber":"441234567890"}"#,
        r#"{"phoneNumber":"+44 1234"}"#,
        r#"{"phoneNumber":441234567890.5}"#,
        r#"{"phoneNumber":-441234567890}"#,
        r#"{"phoneNumber":null}"#,
        r#"{"phone":441234567890}"#,
        r#"{}"#,
        r#"[441234567890]"#,
    ] {
        let r = h.post(ID, "getAuthorizationCode", body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.text, BAD_PHONE, "{body}");
    }
    let r = h.post(ID, "getAuthorizationCode", "{not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text, "bad request data");
    // Malformed requests do not use up the rate limit, and issue no code.
    assert_eq!(h.sim.codes_issued(ID), 0);
    assert_eq!(h.request_code(ID).await.status, 200);
}

#[tokio::test]
async fn a_code_looks_like_the_vendor_s_and_is_counted() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    let r = h.request_code(ID).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["status"], json!(true));
    let code = body["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 8);
    assert!(
        code.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
        "{code}"
    );
    assert_eq!(h.sim.current_code(ID), Some(code));
    assert_eq!(h.sim.codes_issued(ID), 1);
}

#[tokio::test(start_paused = true)]
async fn an_authorized_instance_gets_status_false_and_a_starting_one_is_told_to_wait() {
    let h = start(SimConfig::default(), &[instance(ID, "authorized")]).await;
    let r = h.request_code(ID).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": false, "code": ""}));

    h.sim.set_state(ID, "starting");
    advance(Duration::from_secs(1)).await;
    let r = h.request_code(ID).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text, STARTING);
    assert_eq!(h.sim.codes_issued(ID), 0);
    assert_eq!(h.sim.current_code(ID), None);
}

#[tokio::test(start_paused = true)]
async fn a_new_code_invalidates_the_previous_one() {
    let h = start(SimConfig::default(), &[instance(ID, "notAuthorized")]).await;
    let first = h.request_code(ID).await.json()["code"]
        .as_str()
        .expect("code")
        .to_owned();
    advance(Duration::from_secs(1)).await;
    let second = h.request_code(ID).await.json()["code"]
        .as_str()
        .expect("code")
        .to_owned();
    assert_ne!(first, second);
    assert_eq!(h.sim.current_code(ID).as_deref(), Some(second.as_str()));
    assert_eq!(h.sim.enter_code(ID, &first), Err(EnterError::WrongCode));
    assert_eq!(h.sim.state(ID).as_deref(), Some("notAuthorized"));
    assert_eq!(h.sim.enter_code(ID, &second), Ok(()));
    assert_eq!(h.sim.codes_issued(ID), 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_code_cannot_be_entered() {
    let h = start(SimConfig::default(), &[instance(ID, "notAuthorized")]).await;
    assert_eq!(h.request_code(ID).await.status, 200);
    let code = h.sim.current_code(ID).expect("a code");
    advance(Duration::from_secs(149)).await;
    assert_eq!(h.sim.current_code(ID).as_deref(), Some(code.as_str()));
    let listed = h.control_get("/sim/instances").await.json();
    assert_eq!(listed[0]["code_valid"], json!(true));

    advance(Duration::from_secs(1)).await;
    assert_eq!(h.sim.current_code(ID), None);
    assert_eq!(h.sim.enter_code(ID, &code), Err(EnterError::Expired));
    assert_eq!(h.sim.state(ID).as_deref(), Some("notAuthorized"));
    let listed = h.control_get("/sim/instances").await.json();
    assert_eq!(listed[0]["code_valid"], json!(false));
    assert_eq!(
        h.control_get(&format!("/sim/instances/{ID}/code"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn entering_the_current_code_authorizes_the_instance() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    assert_eq!(h.sim.enter_code(ID, "ABCD1234"), Err(EnterError::NoCode));
    assert_eq!(
        h.sim.enter_code(999, "ABCD1234"),
        Err(EnterError::UnknownInstance)
    );

    h.request_code(ID).await;
    let code = h.sim.current_code(ID).expect("a code");
    assert_eq!(h.sim.enter_code(ID, "ZZZZ9999"), Err(EnterError::WrongCode));
    // As WhatsApp shows it: two groups of four, any case.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    assert_eq!(h.sim.enter_code(ID, &typed), Ok(()));

    assert_eq!(h.sim.state(ID).as_deref(), Some("authorized"));
    assert_eq!(h.sim.current_code(ID), None, "a code is used once");
    assert_eq!(
        h.get(ID, "getStateInstance").await.json(),
        json!({"stateInstance": "authorized"})
    );
    assert_eq!(
        h.request_code(ID).await.json(),
        json!({"status": false, "code": ""})
    );
}

#[tokio::test]
async fn logout_unlinks_the_instance_and_drops_the_code() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    h.request_code(ID).await;
    assert!(h.sim.current_code(ID).is_some());
    let r = h.get(ID, "logout").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"isLogout": true}));
    assert_eq!(h.sim.current_code(ID), None);

    h.sim.set_state(ID, "authorized");
    h.sim.logout(ID);
    assert_eq!(h.sim.state(ID).as_deref(), Some("notAuthorized"));
}

#[tokio::test(start_paused = true)]
async fn a_reboot_passes_through_starting_for_five_seconds() {
    let h = start(unlimited(), &[instance(ID, "authorized")]).await;
    let r = h.get(ID, "reboot").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"isReboot": true}));
    assert_eq!(h.sim.state(ID).as_deref(), Some("starting"));
    assert_eq!(h.request_code(ID).await.text, STARTING);
    advance(Duration::from_millis(4999)).await;
    assert_eq!(
        h.get(ID, "getStateInstance").await.json(),
        json!({"stateInstance": "starting"})
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        h.get(ID, "getStateInstance").await.json(),
        json!({"stateInstance": "authorized"})
    );

    // A reboot clears the vendor's "stuck in starting" state.
    h.sim.set_state(ID, "starting");
    h.get(ID, "reboot").await;
    advance(Duration::from_secs(5)).await;
    assert_eq!(h.sim.state(ID).as_deref(), Some("notAuthorized"));

    // A reboot drops a pending code.
    h.request_code(ID).await;
    assert!(h.sim.current_code(ID).is_some());
    h.get(ID, "reboot").await;
    assert_eq!(h.sim.current_code(ID), None);
    advance(Duration::from_secs(5)).await;
    assert_eq!(h.sim.state(ID).as_deref(), Some("notAuthorized"));
}

#[tokio::test]
async fn wa_settings_are_empty_unless_authorized() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    assert_eq!(
        h.get(ID, "getWaSettings").await.json(),
        json!({"avatar": "", "phone": "", "stateInstance": "notAuthorized", "deviceId": ""})
    );
    h.sim.set_state(ID, "authorized");
    let body = h.get(ID, "getWaSettings").await.json();
    assert_eq!(body["phone"], json!(PHONE.to_string()));
    assert_eq!(body["stateInstance"], json!("authorized"));
    assert_eq!(body["deviceId"], json!(format!("{PHONE}:8@s.whatsapp.net")));
    assert!(
        body["avatar"]
            .as_str()
            .is_some_and(|a| a.starts_with("https://"))
    );
}

#[tokio::test]
async fn send_message_needs_an_authorized_instance_and_is_recorded() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    let body = json!({"chatId": "79001234567@c.us", "message": "code: ABCD1234"}).to_string();
    let r = h.post(ID, "sendMessage", &body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text, "instance account not authorized");

    h.sim.set_state(ID, "authorized");
    let r = h.post(ID, "sendMessage", &body).await;
    assert_eq!(r.status, 200);
    let id = r.json()["idMessage"]
        .as_str()
        .expect("idMessage")
        .to_owned();
    assert!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    for bad in [
        "",
        "{",
        r#"{"chatId":"79001234567@c.us"}"#,
        r#"{"message":"hi"}"#,
        r#"{"chatId":42,"message":"hi"}"#,
        r#"{"chatId":"no-at-sign","message":"hi"}"#,
    ] {
        let r = h.post(ID, "sendMessage", bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.text, "bad request data", "{bad}");
    }
    assert_eq!(
        h.sim.sent_messages(ID),
        vec![relinkd::sim::SentMessage {
            chat_id: "79001234567@c.us".into(),
            message: "code: ABCD1234".into(),
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn send_message_is_limited_to_fifty_per_second() {
    let h = start(SimConfig::default(), &[instance(ID, "authorized")]).await;
    let body = json!({"chatId": "79001234567@c.us", "message": "hi"}).to_string();
    for _ in 0..50 {
        assert_eq!(h.post(ID, "sendMessage", &body).await.status, 200);
    }
    assert_eq!(h.post(ID, "sendMessage", &body).await.status, 429);
    advance(Duration::from_secs(1)).await;
    assert_eq!(h.post(ID, "sendMessage", &body).await.status, 200);
    assert_eq!(h.sim.sent_messages(ID).len(), 51);
}

#[tokio::test]
async fn each_fault_kind_is_served_as_documented() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    let html = "<html><body>502 Bad Gateway</body></html>";
    let cases: Vec<(FaultKind, u16, &str)> = vec![
        (
            FaultKind::Status {
                code: 502,
                body: html.into(),
            },
            502,
            html,
        ),
        (
            FaultKind::Status {
                code: 400,
                body: STARTING.into(),
            },
            400,
            STARTING,
        ),
        (
            FaultKind::Status {
                code: 499,
                body: String::new(),
            },
            499,
            "",
        ),
        (
            FaultKind::RateLimited { retry_after: None },
            429,
            r#"{"error":"Too Many Requests"}"#,
        ),
        (FaultKind::Malformed, 200, r#"{"stateInst"#),
        (FaultKind::NullBody, 200, "null"),
        (FaultKind::StatusFalse, 200, r#"{"status":false,"code":""}"#),
        (FaultKind::Unauthorized, 401, r#"{"error":"Unauthorized"}"#),
        (
            FaultKind::ErrorIn200,
            200,
            r#"{"code":401,"description":"Unauthorized"}"#,
        ),
    ];
    let mut expected_log = Vec::new();
    for (kind, status, body) in cases {
        h.sim.set_fault(ID, Fault::new(kind.clone()));
        let r = h.get(ID, "getStateInstance").await;
        assert_eq!(r.status, status, "{kind:?}");
        match serde_json::from_str::<Value>(body) {
            // JSON bodies: compare as JSON (key order is not part of the contract).
            Ok(expected) => assert_eq!(r.json(), expected, "{kind:?}"),
            Err(_) => assert_eq!(r.text, body, "{kind:?}"),
        }
        expected_log.push(("getStateInstance".to_owned(), status));
    }
    assert!(serde_json::from_str::<Value>(r#"{"stateInst"#).is_err());

    h.sim.set_fault(
        ID,
        Fault::new(FaultKind::RateLimited {
            retry_after: Some(7),
        }),
    );
    let r = h.get(ID, "getStateInstance").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    expected_log.push(("getStateInstance".to_owned(), 429));

    h.sim.set_fault(ID, Fault::new(FaultKind::QuotaExceeded));
    let r = h
        .post(
            ID,
            "sendMessage",
            r#"{"chatId":"79001234567@c.us","message":"hi"}"#,
        )
        .await;
    assert_eq!(r.status, 466);
    assert_eq!(
        r.json(),
        json!({"invokeStatus": {"method": "sendMessage", "used": 3, "total": 3,
            "status": "QUOTE_EXCEEDED", "description": "Monthly quota has been exceeded"}})
    );
    expected_log.push(("sendMessage".to_owned(), 466));

    // StatusFalse on the method it is meant for.
    h.sim.set_fault(
        ID,
        Fault::new(FaultKind::StatusFalse).on("getAuthorizationCode"),
    );
    assert_eq!(
        h.request_code(ID).await.json(),
        json!({"status": false, "code": ""})
    );
    expected_log.push(("getAuthorizationCode".to_owned(), 200));
    assert_eq!(h.sim.codes_issued(ID), 0, "a faulted call issues no code");

    // Faults come after authentication.
    h.sim
        .set_fault(ID, Fault::new(FaultKind::NullBody).times(1));
    let r = h
        .get_raw(&h.vendor_url(ID, "getStateInstance", "wrong"))
        .await;
    assert_eq!(r.status, 401);
    expected_log.push(("getStateInstance".to_owned(), 401));
    assert_eq!(h.sim.faults(ID).len(), 1, "not used up by a rejected call");

    assert_eq!(statuses(&h.sim, ID), expected_log);
}

#[tokio::test]
async fn a_fault_with_times_expires() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    h.sim.set_fault(
        ID,
        Fault::new(FaultKind::Status {
            code: 500,
            body: "oops".into(),
        })
        .times(2),
    );
    assert_eq!(h.get(ID, "getStateInstance").await.status, 500);
    assert_eq!(h.sim.faults(ID)[0].times, Some(1));
    assert_eq!(h.get(ID, "getStateInstance").await.status, 500);
    assert!(h.sim.faults(ID).is_empty());
    assert_eq!(h.get(ID, "getStateInstance").await.status, 200);
}

#[tokio::test]
async fn the_first_matching_fault_applies() {
    let h = start(unlimited(), &[instance(ID, "notAuthorized")]).await;
    h.sim.add_fault(
        ID,
        Fault::new(FaultKind::Status {
            code: 500,
            body: "code service down".into(),
        })
        .on("getAuthorizationCode"),
    );
    h.sim
        .add_fault(ID, Fault::new(FaultKind::Unauthorized).times(1));

    assert_eq!(h.get(ID, "getStateInstance").await.status, 401);
    assert_eq!(h.get(ID, "getStateInstance").await.status, 200);
    let r = h.request_code(ID).await;
    assert_eq!((r.status, r.text.as_str()), (500, "code service down"));
    assert_eq!(
        h.request_code(ID).await.status,
        500,
        "no times: until cleared"
    );

    h.sim.clear_faults(ID);
    assert_eq!(h.request_code(ID).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_then_the_call_proceeds() {
    let h = start(SimConfig::default(), &[instance(ID, "notAuthorized")]).await;
    h.sim.set_fault(
        ID,
        Fault::new(FaultKind::None).with_latency(Duration::from_secs(3)),
    );
    let sent = Instant::now();
    let r = h.get(ID, "getStateInstance").await;
    assert!(sent.elapsed() >= Duration::from_secs(3));
    assert_eq!(r.json(), json!({"stateInstance": "notAuthorized"}));
    let calls = h.sim.calls(ID);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, 200);
    assert!(
        calls[0].at.duration_since(sent) < Duration::from_secs(1),
        "recorded on arrival"
    );

    // Latency applies to error kinds too.
    h.sim.set_fault(
        ID,
        Fault::new(FaultKind::Unauthorized).with_latency(Duration::from_secs(2)),
    );
    let sent = Instant::now();
    assert_eq!(h.get(ID, "getStateInstance").await.status, 401);
    assert!(sent.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_call_times_out_and_is_recorded_with_status_0() {
    let h = start(unlimited(), &[instance(ID, "authorized")]).await;
    h.sim.set_fault(ID, Fault::new(FaultKind::Hang).times(1));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let sent = Instant::now();
    let err = client
        .get(h.vendor_url(ID, "getStateInstance", TOKEN))
        .send()
        .await
        .expect_err("must time out");
    assert!(err.is_timeout(), "{err}");
    assert!(sent.elapsed() >= Duration::from_secs(5));
    assert_eq!(
        statuses(&h.sim, ID),
        vec![("getStateInstance".to_owned(), 0)]
    );
    // Used up: the next call is answered.
    assert_eq!(h.get(ID, "getStateInstance").await.status, 200);
}

#[tokio::test]
async fn shutdown_releases_hanging_calls() {
    let h = start(unlimited(), &[instance(ID, "authorized")]).await;
    h.sim.set_fault(ID, Fault::new(FaultKind::Hang));
    let url = h.vendor_url(ID, "getStateInstance", TOKEN);
    let client = h.http.clone();
    let pending = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.sim.calls(ID).is_empty() {
        assert!(Instant::now() < deadline, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::timeout(Duration::from_secs(5), h.shutdown())
        .await
        .expect("shutdown must not wait for the hung call")
        .expect("serve returns Ok");
    let status = pending.await.expect("task").expect("answered at shutdown");
    assert_eq!(status.as_u16(), 504);
}

#[tokio::test]
async fn control_routes_drive_instances_without_revealing_tokens() {
    let h = start(
        unlimited(),
        &[instance(OTHER, "authorized"), instance(ID, "notAuthorized")],
    )
    .await;
    let r = h.control_get("/sim/instances").await;
    assert_eq!(r.status, 200);
    assert!(!r.text.contains(TOKEN));
    assert_eq!(
        r.json(),
        json!([
            {"id": ID, "state": "notAuthorized", "code_valid": false},
            {"id": OTHER, "state": "authorized", "code_valid": false},
        ])
    );

    let code_path = format!("/sim/instances/{ID}/code");
    assert_eq!(h.control_get(&code_path).await.status, 404);
    h.request_code(ID).await;
    let code = h.control_get(&code_path).await.json()["code"]
        .as_str()
        .expect("code")
        .to_owned();
    assert_eq!(Some(code.clone()), h.sim.current_code(ID));

    let one = h.control_get(&format!("/sim/instances/{ID}")).await;
    assert!(!one.text.contains(TOKEN));
    let one = one.json();
    assert_eq!(one["code_valid"], json!(true));
    assert_eq!(one["codes_issued"], json!(1));

    let enter = format!("/sim/instances/{ID}/enter");
    let r = h.control_post(&enter, r#"{"code":"WRONG123"}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], json!("wrong_code"));
    assert_eq!(h.control_post(&enter, "{").await.status, 400);
    assert_eq!(h.control_post(&enter, "{}").await.status, 400);
    let r = h
        .control_post(&enter, &json!({"code": code}).to_string())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.sim.state(ID).as_deref(), Some("authorized"));
    let r = h
        .control_post(&enter, &json!({"code": code}).to_string())
        .await;
    assert_eq!(r.json()["error"], json!("no_code"));

    let state = format!("/sim/instances/{ID}/state");
    assert_eq!(
        h.control_post(&state, r#"{"state":"blocked"}"#)
            .await
            .status,
        200
    );
    assert_eq!(h.sim.state(ID).as_deref(), Some("blocked"));
    assert_eq!(h.control_post(&state, r#"{"state":1}"#).await.status, 400);

    let logout = format!("/sim/instances/{ID}/logout");
    assert_eq!(h.control_post(&logout, "").await.status, 200);
    assert_eq!(h.sim.state(ID).as_deref(), Some("notAuthorized"));

    let faults = format!("/sim/instances/{ID}/faults");
    // Flat form, and the nested form of the Fault type.
    let r = h
        .control_post(
            &faults,
            r#"{"method":"getStateInstance","kind":"status","code":502,"body":"bad gateway","times":1}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .control_post(
            &faults,
            r#"{"latency":"10ms","kind":{"kind":"rate_limited","retry_after":3}}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.sim.faults(ID).len(), 2);
    assert_eq!(h.sim.faults(ID)[1].latency, Some(Duration::from_millis(10)));
    assert_eq!(h.get(ID, "getStateInstance").await.text, "bad gateway");
    assert_eq!(h.get(ID, "getStateInstance").await.status, 429);
    for bad in [
        r#"{"kind":"nope"}"#,
        r#"{"kind":"status","code":1000,"body":""}"#,
        r#"{"latency":"soon"}"#,
        "[",
    ] {
        assert_eq!(h.control_post(&faults, bad).await.status, 400, "{bad}");
    }
    let cleared = h.send(h.http.delete(format!("{}{faults}", h.base))).await;
    assert_eq!(cleared.status, 200);
    assert!(h.sim.faults(ID).is_empty());

    let calls = h
        .control_get(&format!("/sim/instances/{ID}/calls"))
        .await
        .json();
    assert_eq!(calls[0]["method"], json!("getAuthorizationCode"));
    assert_eq!(calls[0]["status"], json!(200));
    assert_eq!(
        h.control_get(&format!("/sim/instances/{ID}/messages"))
            .await
            .json(),
        json!([])
    );

    assert_eq!(h.control_get("/sim/instances/999").await.status, 404);
    assert_eq!(
        h.control_post("/sim/instances/999/logout", "").await.status,
        404
    );
    assert_eq!(h.control_get("/sim/instances/abc").await.status, 400);
}

#[tokio::test]
async fn holds_ten_thousand_instances() {
    let sim_instances: Vec<SimInstance> = (0..10_000u64)
        .map(|i| SimInstance {
            id: 1_000_000_000_000 + i,
            token: format!("token-{i}"),
            phone: 440_000_000_000 + i,
            state: if i % 2 == 0 {
                "authorized"
            } else {
                "notAuthorized"
            }
            .to_owned(),
        })
        .collect();
    let h = start(unlimited(), &sim_instances).await;
    assert_eq!(h.sim.len(), 10_000);
    for i in [0u64, 4_999, 9_999] {
        let id = 1_000_000_000_000 + i;
        let r = h
            .get_raw(&h.vendor_url(id, "getStateInstance", &format!("token-{i}")))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["stateInstance"],
            json!(if i % 2 == 0 {
                "authorized"
            } else {
                "notAuthorized"
            })
        );
    }
    let all = h.control_get("/sim/instances").await.json();
    assert_eq!(all.as_array().map(Vec::len), Some(10_000));
    assert_eq!(all[9_999]["id"], json!(1_000_000_009_999u64));
}

#[tokio::test]
async fn the_call_log_keeps_the_last_thousand_calls() {
    let h = start(unlimited(), &[instance(ID, "authorized")]).await;
    for _ in 0..1_000 {
        h.get(ID, "getStateInstance").await;
    }
    for _ in 0..5 {
        h.get(ID, "logout").await;
    }
    let calls = h.sim.calls(ID);
    assert_eq!(calls.len(), 1_000);
    assert_eq!(calls[994].method, "getStateInstance");
    assert!(
        calls[995..]
            .iter()
            .all(|c| c.method == "logout" && c.status == 200)
    );
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

#[test]
fn the_cli_fleet_follows_its_arguments() {
    use clap::Parser as _;
    let defaults = Cli::parse_from(["relinkd-sim"]).sim;
    assert_eq!(defaults.listen.to_string(), "127.0.0.1:7700");
    assert_eq!(defaults.code_ttl, Duration::from_secs(150));
    let fleet_default = fleet(&defaults);
    assert_eq!(fleet_default.len(), 5);
    assert_eq!(fleet_default[0].id, 1_101_000_001);
    assert_eq!(fleet_default[0].phone, 441_234_500_000);
    assert_eq!(fleet_default[0].state, "notAuthorized");
    assert_eq!(fleet_default[4].id, 1_101_000_005);
    assert!(fleet_default[1..].iter().all(|i| i.state == "authorized"));
    assert!(fleet_default.iter().all(|i| i.token == "sim-token"));

    let args = Cli::parse_from([
        "relinkd-sim",
        "--instances",
        "3",
        "--unlinked",
        "2",
        "--first-id",
        "7103000000",
        "--token",
        "t",
        "--phone-base",
        "79000000000",
        "--code-ttl",
        "2m 30s",
    ])
    .sim;
    assert_eq!(args.code_ttl, Duration::from_secs(150));
    let ids: Vec<(u64, u64, String)> = fleet(&args)
        .into_iter()
        .map(|i| (i.id, i.phone, i.state))
        .collect();
    assert_eq!(
        ids,
        vec![
            (7_103_000_000, 79_000_000_000, "notAuthorized".to_owned()),
            (7_103_000_001, 79_000_000_001, "notAuthorized".to_owned()),
            (7_103_000_002, 79_000_000_002, "authorized".to_owned()),
        ]
    );
    assert!(Cli::try_parse_from(["relinkd-sim", "--code-ttl", "soon"]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_cli_serves_the_vendor_api_until_shutdown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = SimArgs {
        listen: format!("127.0.0.1:{port}").parse().expect("addr"),
        ..SimArgs::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(run_cli(args, async {
        let _ = stopped.await;
    }));
    // It answers, as the vendor would, once started (a failed start-up
    // would end the task instead).
    let url = format!(
        "http://127.0.0.1:{port}/waInstance{}/getStateInstance/{}",
        SimArgs::default().first_id,
        SimArgs::default().token
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body: serde_json::Value = loop {
        assert!(!running.is_finished(), "run_cli ended: {:?}", running.await);
        if let Ok(response) = http.get(&url).send().await {
            break response.json().await.expect("JSON");
        }
        assert!(std::time::Instant::now() < deadline, "never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["stateInstance"], "notAuthorized");
    stop.send(()).expect("still running");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops")
        .expect("task")
        .expect("ok");
    assert!(
        http.get(&url).send().await.is_err(),
        "still serving after shutdown"
    );
}

#[test]
fn faults_have_a_readable_json_form() {
    let fault: Fault = serde_json::from_value(json!({
        "method": "getStateInstance",
        "latency": "1s 500ms",
        "kind": {"kind": "rate_limited", "retry_after": 3},
        "times": 2
    }))
    .expect("fault");
    assert_eq!(fault.method.as_deref(), Some("getStateInstance"));
    assert_eq!(fault.latency, Some(Duration::from_millis(1500)));
    assert_eq!(
        fault.kind,
        FaultKind::RateLimited {
            retry_after: Some(3)
        }
    );
    assert_eq!(fault.times, Some(2));
    let back = serde_json::to_value(&fault).expect("serialize");
    assert_eq!(
        back["kind"],
        json!({"kind": "rate_limited", "retry_after": 3})
    );
    let minimal: Fault = serde_json::from_value(json!({})).expect("defaults");
    assert_eq!(minimal.kind, FaultKind::None);
    assert_eq!(
        (minimal.method, minimal.latency, minimal.times),
        (None, None, None)
    );
}
