//! The record writer: one compact JSON object per line on stdout.
//!
//! Block-buffered (64 KiB) when stdout is not a terminal, line-buffered when
//! it is, like ripgrep's `cli` crate. The buffer is our own rather than a
//! `BufWriter` so the writer knows exactly which records have been handed to
//! the operating system: `etl-checkpoint filter` must never record a
//! watermark past what was delivered when a reader downstream goes away.

use std::io::{self, Write};

use crate::record::{write_record, Record};

const BLOCK: usize = 64 * 1024;

/// Writes records as NDJSON.
#[derive(Debug)]
pub struct RecordWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    line_buffered: bool,
    written: u64,
    delivered: u64,
}

impl RecordWriter<io::Stdout> {
    /// A writer on stdout, line-buffered when stdout is a terminal.
    pub fn stdout() -> Self {
        use std::io::IsTerminal;
        let out = io::stdout();
        let tty = out.is_terminal();
        Self::new(out, tty)
    }
}

impl<W: Write> RecordWriter<W> {
    /// A writer on `out`.
    pub fn new(out: W, line_buffered: bool) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(BLOCK + 4096),
            line_buffered,
            written: 0,
            delivered: 0,
        }
    }

    /// Appends one record; flushes when the block is full.
    pub fn write(&mut self, rec: &Record) -> io::Result<()> {
        write_record(&mut self.buf, rec);
        self.buf.push(b'\n');
        self.after_line()
    }

    /// Appends one already-serialised JSON object (without its newline),
    /// for commands that pass input lines through byte-exact.
    pub fn write_raw(&mut self, line: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.after_line()
    }

    /// Lets `f` append one JSON object (without its newline) straight into
    /// the output buffer: the zero-copy path for commands that build lines
    /// themselves (etl-parse's CSV loop).
    pub fn write_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        f(&mut self.buf);
        self.buf.push(b'\n');
        self.after_line()
    }

    /// Appends several whole lines at once: `f` writes them (each ending in
    /// `\n`) to the buffer, stopping once it holds `limit` bytes or more,
    /// and returns how many it wrote. `limit` is 0 on a terminal, where
    /// every line goes out as it is written.
    pub fn write_lines(&mut self, f: impl FnOnce(&mut Vec<u8>, usize) -> u64) -> io::Result<()> {
        let limit = if self.line_buffered { 0 } else { BLOCK };
        let n = f(&mut self.buf, limit);
        self.written += n;
        if (self.line_buffered && n > 0) || self.buf.len() >= BLOCK {
            self.flush()?;
        }
        Ok(())
    }

    fn after_line(&mut self) -> io::Result<()> {
        self.written += 1;
        if self.line_buffered || self.buf.len() >= BLOCK {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands everything buffered to the OS.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let r = self.out.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        self.out.flush()?;
        self.delivered = self.written;
        Ok(())
    }

    /// Records accepted by `write` so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Records fully handed to the OS (a prefix of those written).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// True when every written record has been delivered.
    pub fn all_delivered(&self) -> bool {
        self.delivered == self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse_record;

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn block_buffered_until_flush() {
        let mut w = RecordWriter::new(Vec::new(), false);
        w.write(&parse_record(r#"{"a":1.0}"#).unwrap()).unwrap();
        assert!(w.out.is_empty());
        assert_eq!((w.written(), w.delivered()), (1, 0));
        w.flush().unwrap();
        assert_eq!(w.out, b"{\"a\":1.0}\n");
        assert!(w.all_delivered());
    }

    #[test]
    fn lines_written_at_once_are_counted_and_flushed_by_the_block() {
        let mut w = RecordWriter::new(Vec::new(), false);
        w.write_lines(|buf, limit| {
            assert_eq!(limit, BLOCK);
            buf.extend_from_slice(b"{}\n{}\n");
            2
        })
        .unwrap();
        assert!(w.out.is_empty());
        assert_eq!((w.written(), w.delivered()), (2, 0));
        w.write_lines(|buf, _| {
            buf.extend_from_slice(&b"{}\n".repeat(BLOCK / 3 + 1));
            (BLOCK / 3 + 1) as u64
        })
        .unwrap();
        assert_eq!(w.out.len(), 6 + 3 * (BLOCK / 3 + 1));
        assert!(w.all_delivered());
        let mut tty = RecordWriter::new(Vec::new(), true);
        tty.write_lines(|buf, limit| {
            assert_eq!(limit, 0);
            buf.extend_from_slice(b"{}\n");
            1
        })
        .unwrap();
        assert_eq!(tty.out, b"{}\n");
        assert!(tty.all_delivered());
    }

    #[test]
    fn line_buffered_on_a_terminal() {
        let mut w = RecordWriter::new(Vec::new(), true);
        w.write_raw(b"{\"b\":2}").unwrap();
        assert_eq!(w.out, b"{\"b\":2}\n");
        assert_eq!(w.delivered(), 1);
    }

    #[test]
    fn a_closed_pipe_delivers_nothing_more() {
        let mut w = RecordWriter::new(Closed, false);
        w.write_raw(b"{}").unwrap();
        let e = w.flush().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(w.delivered(), 0);
    }
}
