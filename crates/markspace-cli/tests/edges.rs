//! Edges of `audit`: an empty ruleset is valid input, and control characters in echoed input
//! never reach the terminal (text and Markdown escape them; JSON escapes them by itself).

use crate::util::{run, run_stdin, Dir};

#[test]
fn an_empty_ruleset_is_valid() {
    for input in ["", "\n\n", "   \n"] {
        let r = run_stdin(&["audit", "-"], input);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("no rules"), "{}", r.stdout);
        assert!(
            r.stderr.len() < 200,
            "a long hint for an empty input: {}",
            r.stderr
        );
        let r = run_stdin(&["audit", "--format", "json", "-"], input);
        assert_eq!(r.code, 0);
        assert_eq!(r.json()["summary"]["rules"], 0);
    }
}

#[test]
fn control_characters_in_input_are_escaped() {
    let d = Dir::new();
    let evil = "x\u{1b}]0;pwned\u{7}\u{1b}[31mred\u{9b}2J";
    let rules = format!(
        "*mangle\n:PREROUTING ACCEPT [0:0]\n:EVIL{} - [0:0]\n-A PREROUTING -j EVIL\u{1b}[2J\n-A PREROUTING -m comment --comment \"{evil}\" -j MARK --set-mark 0x1\n-A PREROUTING -m comment --comment \"kubernetes\" -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n",
        "\u{1b}[2J"
    );
    let file = d.file("iptables-save.txt", &rules);
    for format in ["text", "markdown"] {
        let r = run(&["audit", "--fail-on", "never", "--format", format, &file]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        for c in ['\u{1b}', '\u{7}', '\u{9b}'] {
            assert!(
                !r.stdout.contains(c),
                "{format} output holds {c:?}:\n{}",
                r.stdout
            );
            assert!(
                !r.stderr.contains(c),
                "{format} stderr holds {c:?}:\n{}",
                r.stderr
            );
        }
        assert!(
            r.stdout.contains("\\x1b]0;pwned\\x07"),
            "{format}:\n{}",
            r.stdout
        );
    }
    let r = run(&["audit", "--fail-on", "never", "--format", "json", &file]);
    assert!(!r.stdout.contains('\u{1b}'));
    // A malformed line echoed in an error is escaped too.
    let bad = d.file(
        "bad.txt",
        "*mangle\n-A PREROUTING -j MARK --set-xmark \u{1b}[2J\u{7}\nCOMMIT\n",
    );
    let r = run(&["audit", &bad]);
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stderr.contains('\u{7}'),
        "{}",
        r.stderr
    );
}
