//! The dashboard's search page over plain HTTP: the search box on every page, the matched
//! words `<mark>`ed and the rest escaped, filters as parameters, fragments, and bad
//! parameters as 400 pages naming them.

use serde_json::json;

use crate::dashboard::get;
use crate::helpers::{import_founding, record, spawn_app};

/// A query parameter's value, percent-encoded.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_search_page_marks_the_matched_words_and_escapes_the_rest() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let (_, head) = record(
        &app,
        "occurrence-2025-03-03-search-page",
        json!({"occurred": {"day": "2025-03-03"}, "sources": [{"source": "usa.state-department"}],
               "statement_issued": {"speaker": "marco-rubio",
                                    "summary": "<script>alert(1)</script> The sanctions stay"}}),
    )
    .await;
    let addr = app.http_addr;

    // Every page has the search box.
    let overview = get(addr, &format!("/?min_position={head}")).await;
    assert!(
        overview.body.contains("id=\"search-form\""),
        "{}",
        overview.body
    );

    let page = get(
        addr,
        &format!("/search?q={}&min_position={head}", encoded("контакты")),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.head.contains("content-security-policy"),
        "{}",
        page.head
    );
    assert!(page.head.contains("x-frame-options: deny"), "{}", page.head);
    assert!(
        page.body.contains("<mark>контактах</mark>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"/occurrences/"), "{}", page.body);
    assert!(page.body.contains(&format!("data-position=\"{head}\"")));

    // The text is escaped; only the matched words are marked.
    let page = get(addr, &format!("/search?q=sanction&min_position={head}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<mark>sanctions</mark>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || page
                .body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"), "{}", page.body);

    // Filters as parameters narrow; a fragment is the page's <main> only.
    let hits = |body: &str| body.matches("<li class=\"hit\">").count();
    let all = get(addr, &format!("/search?q={}", encoded("meeting experts"))).await;
    let commitments = get(
        addr,
        &format!(
            "/search?q={}&kind=CommitmentStated&fragment=1",
            encoded("meeting experts")
        ),
    )
    .await;
    assert!(
        commitments.body.trim_start().starts_with("<main"),
        "{}",
        commitments.body
    );
    assert!(hits(&commitments.body) >= 1, "{}", commitments.body);
    assert!(hits(&all.body) > hits(&commitments.body), "{}", all.body);
    let by_actor = get(addr, "/search?q=sanction&actor=RUS").await;
    assert_eq!(hits(&by_actor.body), 0, "{}", by_actor.body);
    let in_march = get(addr, "/search?q=sanction&from=2025-03-01&to=2025-03-31").await;
    assert_eq!(hits(&in_march.body), 1, "{}", in_march.body);
    let in_april = get(addr, "/search?q=sanction&from=2025-04-01").await;
    assert_eq!(hits(&in_april.body), 0, "{}", in_april.body);

    // No words: the form alone. Bad parameters: a 400 naming them.
    let empty = get(addr, "/search").await;
    assert_eq!(empty.status, 200);
    assert_eq!(hits(&empty.body), 0);
    for (path, parameter) in [
        ("/search?q=x&kind=Nope", "kind"),
        ("/search?q=x&from=banana", "from"),
        ("/search?q=x&actor=Not%20An%20Actor", "actor"),
        ("/search?q=x&as_of=3", "as_of"),
    ] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 400, "GET {path}: {}", answer.body);
        assert!(
            answer.body.contains(parameter),
            "GET {path}: {}",
            answer.body
        );
    }
    app.stop().await;
}
