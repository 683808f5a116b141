//! Route regexes compiled to DFAs over ASCII (regex-automata), for the sidecar to run as a
//! table walk: PipyJS regexes run on std::regex, whose matcher recurses once per character,
//! so a long path or header value would overflow a small thread stack. A table walk is linear
//! and flat, and means exactly what the regex crate (explain) means on the printable ASCII
//! the sidecar matches.

use crate::model::{MatchMode as Mode, Matcher};
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};
use std::collections::HashMap;

/// The most states a route regex's DFA may have: each is a row of the table the sidecar
/// holds (at most 128 entries).
pub const MAX_STATES: usize = 512;

/// The matcher of `pattern`, or why there is none (too many states, or not a regex the
/// DFA builder accepts).
pub fn compile(pattern: &str, mode: Mode) -> Result<Matcher, String> {
    let (source, kind) = match mode {
        Mode::WholePath => (format!("(?:{pattern})$"), StartKind::Anchored),
        Mode::Anywhere => (pattern.to_owned(), StartKind::Unanchored),
    };
    let dfa = dense::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            dense::Config::new()
                .start_kind(kind)
                .match_kind(MatchKind::All)
                .minimize(true)
                .dfa_size_limit(Some(1 << 22))
                .determinize_size_limit(Some(1 << 22)),
        )
        .build(&source)
        .map_err(|e| format!("cannot be compiled for the sidecar: {e}"))?;
    let anchored = if mode == Mode::WholePath {
        Anchored::Yes
    } else {
        Anchored::No
    };
    let start = dfa
        .start_state(&start::Config::new().anchored(anchored))
        .map_err(|e| format!("cannot be compiled for the sidecar: {e}"))?;
    // Every live state reachable from the start over ASCII, numbered in the order found.
    let mut ids: HashMap<regex_automata::util::primitives::StateID, usize> = HashMap::new();
    let mut order = vec![start];
    ids.insert(start, 0);
    let mut rows: Vec<[i32; 128]> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        let mut row = [-1i32; 128];
        for (b, slot) in row.iter_mut().enumerate() {
            let next = dfa.next_state(s, b as u8);
            if dfa.is_dead_state(next) || dfa.is_quit_state(next) {
                continue;
            }
            let id = *ids.entry(next).or_insert_with(|| {
                order.push(next);
                order.len() - 1
            });
            *slot = id as i32;
        }
        rows.push(row);
        if order.len() > MAX_STATES {
            return Err(format!(
                "needs more than {MAX_STATES} states in the sidecar's matcher; simplify it"
            ));
        }
        i += 1;
    }
    // Bytes whose column is the same in every row share a class.
    let mut classes = vec![0u16; 128];
    let mut columns: HashMap<Vec<i32>, u16> = HashMap::new();
    let mut representatives = Vec::new();
    for (b, class) in classes.iter_mut().enumerate() {
        let column: Vec<i32> = rows.iter().map(|r| r[b]).collect();
        let next = columns.len() as u16;
        *class = *columns.entry(column).or_insert_with(|| {
            representatives.push(b);
            next
        });
    }
    let width = representatives.len();
    let next = rows
        .iter()
        .flat_map(|r| representatives.iter().map(move |&b| r[b]))
        .collect();
    let flag = |f: &dyn Fn(regex_automata::util::primitives::StateID) -> bool| {
        order.iter().map(|&s| u8::from(f(s))).collect::<Vec<u8>>()
    };
    Ok(Matcher {
        classes,
        width: width as u32,
        next,
        hit: flag(&|s| dfa.is_match_state(s)),
        end: flag(&|s| dfa.is_match_state(dfa.next_eoi_state(s))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matcher_means_what_the_regex_crate_means() {
        let paths = [
            "/",
            "/get",
            "/get/",
            "/getx",
            "/a/b",
            "/status/200",
            "/status/",
            "/public/x/y",
            "/api/v2/users/ab-9",
            "/api/v22/users/",
            "x/get",
            "/GET",
        ];
        for re in [
            "/get",
            "/status/[0-9]+",
            "/public/.*",
            "/api/v[0-9]+/users/[a-z0-9-]*",
            "(/a|/b)+",
            "^/get$",
            "/(get|status/[0-9]{3})",
            "[^/]*",
        ] {
            let m = compile(re, Mode::WholePath).unwrap();
            let whole = regex::Regex::new(&format!("^(?:{re})$")).unwrap();
            for p in paths {
                assert_eq!(m.matches(p), whole.is_match(p), "{re} on {p}");
            }
            let m = compile(re, Mode::Anywhere).unwrap();
            let anywhere = regex::Regex::new(re).unwrap();
            for p in paths {
                assert_eq!(m.matches(p), anywhere.is_match(p), "{re} anywhere in {p}");
            }
        }
    }

    #[test]
    fn a_regex_with_too_many_states_is_refused() {
        let e = compile("/[a-z]{1000}", Mode::WholePath).unwrap_err();
        assert!(e.contains("states"), "{e}");
    }
}
