//! Reading the lines of an input on every core, and applying them in order.
//!
//! A parser splits its work in two: `lex` reads one line on its own (words, options, errors),
//! `apply` adds it to the model in order, with the per-file state. Lexing is most of the work
//! on a large node, so for large inputs it runs on worker threads, one block of lines each in
//! turn, while the calling thread applies the blocks in input order. The result is the same as
//! reading the lines one by one, which is what small inputs do.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use crate::source::Lines;

/// Bytes of text per block handed to a worker.
const BLOCK: usize = 1 << 14;

/// Inputs smaller than this are read on the calling thread: threads would cost more than they
/// save.
const PARALLEL_FROM: usize = 1 << 21;

/// The lexed lines of a block: (line start, line, lexed).
type Block<'a, T> = Vec<(usize, &'a str, T)>;

/// The applying thread's ends of a worker's channels.
struct Worker<'a, T> {
    /// Lexed blocks, in the worker's turn.
    lexed: Receiver<Block<'a, T>>,
    /// Emptied blocks, to be filled again.
    back: Sender<Block<'a, T>>,
}

/// Calls `apply(line number, line start, line, &mut lex(scratch, line start, line))` for every
/// line of `text`, in order. `S` is per-thread scratch space (a token buffer). `apply` gets the
/// lexed line by reference and takes out what it keeps: lexed lines are a few hundred bytes,
/// and moving each one again would cost more than applying most of them.
pub(crate) fn lex_and_apply<'a, S, T, L, A>(text: &'a str, lex: L, mut apply: A)
where
    S: Default,
    T: Send,
    L: Fn(&mut S, usize, &'a str) -> T + Sync,
    A: FnMut(u32, usize, &'a str, &mut T),
{
    // The calling thread applies while the workers lex: one worker fewer than cores, so that no
    // thread waits for a core (channels spin before they sleep, and an oversubscribed machine
    // spent a third more CPU time on a 700k-line node).
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(9) - 1);
    if text.len() < PARALLEL_FROM || workers == 0 {
        let mut scratch = S::default();
        for (n, start, line) in Lines::new(text) {
            let mut t = lex(&mut scratch, start, line);
            apply(n, start, line, &mut t);
        }
        return;
    }
    let blocks = text.len().div_ceil(BLOCK);
    std::thread::scope(|s| {
        let lex = &lex;
        let workers: Vec<Worker<'a, T>> = (0..workers)
            .map(|w| {
                // One block ready ahead per worker: enough to keep the threads from waiting on
                // each other, few enough to bound the memory in flight.
                let (tx, rx) = sync_channel(1);
                // Emptied blocks come back to be filled again, so that the memory in flight
                // is allocated once, by this thread: memory a worker allocated and this thread
                // freed would stay with the worker's allocator arena.
                let (back_tx, back_rx) = channel::<Block<'a, T>>();
                for _ in 0..3 {
                    let _ = back_tx.send(Vec::with_capacity(BLOCK / 64));
                }
                s.spawn(move || {
                    let mut scratch = S::default();
                    for i in (w..blocks).step_by(workers) {
                        let (from, to) = (block_start(text, i), block_start(text, i + 1));
                        let Ok(mut lexed) = back_rx.recv() else {
                            return;
                        };
                        lexed.extend(Lines::new(&text[from..to]).map(|(_, start, line)| {
                            (from + start, line, lex(&mut scratch, from + start, line))
                        }));
                        if tx.send(lexed).is_err() {
                            return;
                        }
                    }
                });
                Worker {
                    lexed: rx,
                    back: back_tx,
                }
            })
            .collect();
        let mut line_no = 0u32;
        for i in 0..blocks {
            let worker = &workers[i % workers.len()];
            // A worker only stops early if it panicked, which the scope then reports.
            let Ok(mut lexed) = worker.lexed.recv() else {
                return;
            };
            for (start, line, t) in &mut lexed {
                line_no += 1;
                apply(line_no, *start, line, t);
            }
            lexed.clear();
            let _ = worker.back.send(lexed);
        }
    });
}

/// The offset where block `i` starts: the start of the first line that starts at or after
/// `i * BLOCK` (or the end of the text), so that blocks hold whole lines.
fn block_start(text: &str, i: usize) -> usize {
    let at = i * BLOCK;
    if at == 0 {
        return 0;
    }
    if at >= text.len() {
        return text.len();
    }
    memchr::memchr(b'\n', &text.as_bytes()[at - 1..]).map_or(text.len(), |n| at + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Vec<(u32, usize, String, usize)> {
        let mut out = Vec::new();
        lex_and_apply(
            text,
            |_: &mut (), start, line: &str| line.len() + start,
            |n, start, line, t: &mut usize| out.push((n, start, line.to_string(), *t)),
        );
        out
    }

    #[test]
    fn parallel_reading_matches_line_by_line() {
        // Lines of varied length, CRLF ends, an empty line and one longer than a block.
        let mut text = String::new();
        for i in 0..120_000 {
            match i % 7 {
                0 => text.push_str("-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-X\n"),
                1 => text.push_str("\r\n"),
                2 => text.push_str(&"x".repeat(i % 300)),
                _ => text.push_str("COMMIT\n"),
            }
            if i % 7 == 2 {
                text.push('\n');
            }
        }
        text.push_str(&"y".repeat(BLOCK + 17));
        text.push('\n');
        text.push_str("last line without newline");
        assert!(text.len() > PARALLEL_FROM);
        let expected: Vec<_> = Lines::new(&text)
            .map(|(n, start, line)| (n, start, line.to_string(), line.len() + start))
            .collect();
        assert_eq!(collect(&text), expected);
    }

    #[test]
    fn blocks_start_at_line_starts() {
        let text = format!("{}\nabc\n", "a".repeat(BLOCK));
        assert_eq!(block_start(&text, 0), 0);
        assert_eq!(block_start(&text, 1), BLOCK + 1);
        assert_eq!(block_start(&text, 2), text.len());
    }
}
