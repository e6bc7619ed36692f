//! `diplog search WORDS…`: `Projections.Search` from the command line. Hits print best first,
//! each with its event, kind, date and field, and its text with the matched words in
//! brackets (`[контактах]`); `--json` prints the answer message.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::text::fuzzy;
use super::{CliError, connect, print_json};
use crate::cli::finish;
use crate::cli::query_args::SearchArgs;
use crate::grpc::convert::to_timestamp;
use crate::proto;

pub async fn search(args: SearchArgs) -> ExitCode {
    finish(run(args).await)
}

async fn run(args: SearchArgs) -> Result<(), CliError> {
    let query = args.words.join(" ");
    if query.trim().is_empty() {
        return Err(CliError::Input("give the words to search for".to_owned()));
    }
    let request = proto::SearchRequest {
        query,
        kinds: args.kinds.clone(),
        actor: args.actor.clone().unwrap_or_default(),
        occurred_from: args.from.map(to_timestamp),
        occurred_to: args.to.map(to_timestamp),
        read: Some(proto::ReadOptions {
            min_position: args.min_position,
            ..Default::default()
        }),
        page_size: args.limit,
        page_token: String::new(),
        records: args.records.wire(),
    };
    let mut client = connect(&args.client).await?;
    let answer = client.search(request).await?.into_inner();
    if args.json {
        print_json(&answer);
        return Ok(());
    }
    print!("{}", results_text(&answer));
    Ok(())
}

/// The hits as text for people.
fn results_text(answer: &proto::SearchResults) -> String {
    let (position, total) = answer
        .info
        .as_ref()
        .map_or((0, 0), |info| (info.position, info.total));
    let mut out = format!(
        "At log position {position}: {total} hit(s){}\n",
        if (answer.hits.len() as u32) < total {
            format!(", the best {}", answer.hits.len())
        } else {
            String::new()
        }
    );
    for hit in &answer.hits {
        let when = match fuzzy(hit.occurred.as_ref()) {
            when if when.is_empty() => when,
            when => format!(" {when}"),
        };
        let _ = writeln!(
            out,
            "\n{}{} (event {}, {}, {})",
            hit.kind, when, hit.event_id, hit.field, hit.config,
        );
        let _ = writeln!(out, "  {}", bracketed(hit));
    }
    out
}

/// The hit's text with each matched word in brackets.
fn bracketed(hit: &proto::SearchHit) -> String {
    let chars: Vec<char> = hit.text.chars().collect();
    let mut out = String::new();
    let mut at = 0usize;
    for range in &hit.matches {
        let (start, end) = (range.start as usize, (range.end as usize).min(chars.len()));
        if start < at || start > end {
            continue;
        }
        out.extend(&chars[at..start]);
        out.push('[');
        out.extend(&chars[start..end]);
        out.push(']');
        at = end;
    }
    out.extend(&chars[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matched_words_are_bracketed() {
        let hit = proto::SearchHit {
            text: "Договорились о регулярных контактах".into(),
            matches: vec![
                proto::TextRange { start: 15, end: 25 },
                proto::TextRange { start: 26, end: 35 },
            ],
            ..Default::default()
        };
        assert_eq!(bracketed(&hit), "Договорились о [регулярных] [контактах]");
    }
}
