//! Whole-screen tests of the view with ratatui's `TestBackend`: what a user sees for a given state.

use ratatui::{backend::TestBackend, Terminal};

use super::draw;
use crate::{
    counters::Totals,
    protocol::{
        redis::{Blob, Frame},
        Exchange,
    },
    record::{Record, Side},
    store,
    test_records::{endpoint, on, redis_with_args, with_latency},
    tui::app::{Action, App},
};

/// `command key` answered by `redis-server` (pid 10) at 01:00:00 UTC in 250 µs.
fn record(command: &str, key: &str, reply: Frame) -> Record {
    let server = endpoint(
        10,
        "redis-server",
        "127.0.0.1:6379",
        "127.0.0.1:50000",
        Side::Server,
    );
    let mut r = on(
        redis_with_args(command, vec![Blob::full(key)], Some(reply)),
        server,
    );
    r.start_unix_ns = 3_600_000_000_000;
    with_latency(r, Some(250_000))
}

fn app_with(records: Vec<Record>) -> App {
    let store = store::of(records.into_iter());
    let mut app = App::default();
    app.update(Action::Data(store.snapshot(), Totals::default()));
    app
}

fn screen(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    app.update(Action::PageRows(super::table_rows(app, height)));
    terminal.draw(|f| draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn table_lists_records_with_latency_and_status_counts() {
    let mut app = app_with(vec![
        record("GET", "user:1", Frame::Bulk(Blob::full("alice"))),
        record(
            "INCR",
            "list",
            Frame::Error(Blob::full("WRONGTYPE Operation")),
        ),
    ]);
    let text = screen(&mut app, 160, 12);
    assert!(text.contains("01:00:00.000"), "{text}");
    assert!(
        text.contains("GET") && text.contains("user:1") && text.contains("\"alice\""),
        "{text}"
    );
    assert!(text.contains("(error) WRONGTYPE"), "{text}");
    assert!(text.contains("250µs"), "{text}");
    assert!(
        text.contains("seen 2 · shown 2 · mem 0.0 MiB · lost 0"),
        "{text}"
    );
}

#[test]
fn filter_hides_rows_and_detail_shows_everything() {
    let mut app = app_with(vec![
        record("GET", "user:1", Frame::Bulk(Blob::full("alice"))),
        record("SET", "user:2", Frame::Simple(Blob::full("OK"))),
    ]);
    for c in "set".chars() {
        app.update(Action::FilterChar(c));
    }
    let text = screen(&mut app, 160, 12);
    assert!(
        !text.contains("user:1") && text.contains("user:2"),
        "{text}"
    );
    app.update(Action::FilterDone);
    app.update(Action::OpenDetail);
    let detail = screen(&mut app, 160, 14);
    assert!(
        detail.contains("Arguments") && detail.contains("\"user:2\"") && detail.contains("OK"),
        "{detail}"
    );
}

#[test]
fn a_too_small_terminal_gets_a_message_not_a_crash() {
    let mut app = app_with(vec![record("GET", "k", Frame::Null)]);
    let text = screen(&mut app, 30, 5);
    assert!(text.contains("too small"), "{text}");
}

#[test]
fn binary_values_are_shown_as_hex_in_the_detail_view() {
    let mut app = app_with(vec![record(
        "GET",
        "k",
        Frame::Bulk(Blob::full(vec![0u8, 1, 0xff])),
    )]);
    app.update(Action::OpenDetail);
    let text = screen(&mut app, 100, 14);
    assert!(text.contains("hex 0001ff"), "{text}");
}

#[test]
fn redacted_values_show_their_length_and_shown_secrets_are_said_on_every_screen() {
    let mut auth = record("AUTH", "hunter2", Frame::Simple(Blob::full("OK")));
    let Exchange::Redis(x) = &mut auth.exchange else {
        panic!("redis")
    };
    x.args[0].redact();
    let mut app = app_with(vec![auth]);
    let table = screen(&mut app, 160, 12);
    assert!(!table.contains("SECRETS SHOWN"), "{table}");
    app.update(Action::OpenDetail);
    let detail = screen(&mut app, 100, 14);
    assert!(detail.contains("1: (redacted, 7 bytes)"), "{detail}");
    app.secrets_shown = true;
    assert!(screen(&mut app, 100, 14).contains("SECRETS SHOWN"));
}

fn http_record(status: u16, body: &str) -> Record {
    use crate::protocol::http::{HttpExchange, HttpRequest, HttpResponse};
    let mut r = record("GET", "k", Frame::Null);
    r.exchange = Exchange::Http(Box::new(HttpExchange {
        request: HttpRequest {
            method: "GET".into(),
            target: "/api/users?id=7".into(),
            version: 1,
            headers: [("Host", &b"shop.test"[..])].into_iter().collect(),
            ..HttpRequest::default()
        },
        response: Some(HttpResponse {
            version: 1,
            status,
            reason: "OK".into(),
            headers: [("Content-Type", &b"application/json"[..])]
                .into_iter()
                .collect(),
            body: Blob::full(body),
            ..HttpResponse::default()
        }),
    }));
    r
}

#[test]
fn http_rows_show_method_target_and_status_and_the_detail_pretty_prints_json() {
    let mut app = app_with(vec![http_record(200, "{\"name\":\"alice\",\"tags\":[1]}")]);
    let text = screen(&mut app, 160, 12);
    assert!(
        text.contains("GET")
            && text.contains("shop.test/api/users?id=7")
            && text.contains("200 OK"),
        "{text}"
    );
    app.update(Action::OpenDetail);
    let detail = screen(&mut app, 100, 30);
    assert!(detail.contains("GET /api/users?id=7 HTTP/1.1"), "{detail}");
    assert!(
        detail.contains("Host: shop.test") && detail.contains("HTTP/1.1 200 OK"),
        "{detail}"
    );
    // Pretty-printed: one member per line.
    assert!(detail.contains("\"name\": \"alice\","), "{detail}");
}

#[test]
fn stats_tab_groups_the_rows_shown_and_follows_group_by_and_filter() {
    let mut app = app_with(vec![
        record("GET", "a", Frame::Bulk(Blob::full("1"))),
        record("GET", "b", Frame::Bulk(Blob::full("2"))),
        record("SET", "c", Frame::Error(Blob::full("ERR no"))),
    ]);
    app.update(Action::ToggleStats);
    let text = screen(&mut app, 140, 12);
    assert!(text.contains("stats · by command"), "{text}");
    let get_row = text
        .lines()
        .find(|l| l.contains("│redis GET"))
        .unwrap_or_else(|| panic!("a GET row: {text}"));
    assert!(
        get_row.contains(" 2 ") && get_row.contains("0.0%"),
        "{get_row}"
    );
    let set_row = text
        .lines()
        .find(|l| l.contains("redis SET"))
        .expect("a SET row");
    assert!(set_row.contains("100.0%"), "{set_row}");
    // 250 µs latencies sit in one histogram bucket: one full bar.
    assert!(get_row.contains('█'), "{get_row}");

    app.update(Action::CycleGroupBy);
    let text = screen(&mut app, 140, 12);
    assert!(text.contains("stats · by endpoint"), "{text}");

    // The tab groups only what the table shows: filter to SET, then come back.
    app.update(Action::ToggleStats);
    app.update(Action::StartFilter);
    for c in "SET".chars() {
        app.update(Action::FilterChar(c));
    }
    app.update(Action::FilterDone);
    app.update(Action::ToggleStats);
    let text = screen(&mut app, 140, 12);
    assert!(
        text.contains("1 groups of 1 rows") && !text.contains("redis GET"),
        "{text}"
    );
}

#[test]
fn stats_tab_shows_rows_when_a_group_has_them() {
    use crate::protocol::mysql::{exchange::ResultSet, Outcome};
    let rows = |n| {
        Outcome::Rows(Box::new(ResultSet {
            rows: n,
            ..ResultSet::default()
        }))
    };
    let mut app = app_with(vec![
        crate::test_records::mysql("SELECT * FROM t", Some(vec![rows(40)])),
        crate::test_records::mysql("SELECT * FROM t", Some(vec![rows(2)])),
    ]);
    app.update(Action::ToggleStats);
    let text = screen(&mut app, 160, 12);
    let header = |text: &str| -> String {
        text.lines()
            .find(|l| l.contains("bytes req/rsp"))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header(&text).contains("rows"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("mysql SELECT"))
        .unwrap_or_else(|| panic!("a SELECT row: {text}"));
    assert!(row.contains(" 42 "), "40 + 2 rows: {row}");
    let mut redis_only = app_with(vec![record("GET", "a", Frame::Bulk(Blob::full("1")))]);
    redis_only.update(Action::ToggleStats);
    assert!(!header(&screen(&mut redis_only, 160, 12)).contains("rows"));
}

#[test]
fn containers_get_a_column_while_on_screen_and_the_detail_names_the_cgroup() {
    let id = "3f9a".repeat(16);
    let mut boxed = record("GET", "user:1", Frame::Bulk(Blob::full("alice")));
    let mut endpoint = (*boxed.endpoint).clone();
    endpoint.cgroup = Some(std::sync::Arc::new(crate::cgroup::Cgroup::new(
        77,
        &format!("/system.slice/docker-{id}.scope"),
    )));
    boxed.endpoint = std::sync::Arc::new(endpoint);
    let plain = record("SET", "user:2", Frame::Simple(Blob::full("OK")));

    let text = screen(&mut app_with(vec![plain.clone()]), 160, 12);
    assert!(
        !text.contains("container"),
        "no column without containers: {text}"
    );
    let text = screen(&mut app_with(vec![boxed.clone(), plain]), 180, 12);
    assert!(text.contains("container"), "{text}");
    assert!(
        text.contains(&id[..12]) && !text.contains(&id[..13]),
        "{text}"
    );
    let mut app = app_with(vec![boxed]);
    app.update(Action::OpenDetail);
    let detail = screen(&mut app, 180, 30);
    assert!(
        detail.contains(&format!(
            "container {id} · cgroup /system.slice/docker-{id}.scope"
        )),
        "{detail}"
    );
}
