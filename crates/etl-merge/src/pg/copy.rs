//! Binary `COPY ... FROM STDIN` rows, encoded here into large chunks.
//!
//! The client crate's own `BinaryCopyInWriter` sends a message every 4 KiB
//! and enters its runtime for every row; at a million rows that is tens of
//! thousands of socket writes, each waking the server. Encoding the rows in
//! PostgreSQL's binary COPY format (a header, then per row a field count and
//! length-prefixed fields, then a trailer) into 256 KiB chunks sends the
//! same bytes in a few hundred writes.

use std::io::Write as _;

use etl_core::{Error, Result};
use postgres::types::private::BytesMut;
use postgres::types::{IsNull, ToSql, Type};
use postgres::CopyInWriter;

use super::conn;

const CHUNK: usize = 256 * 1024;

pub struct CopyRows<'c> {
    w: CopyInWriter<'c>,
    buf: BytesMut,
    types: Vec<Type>,
}

impl<'c> CopyRows<'c> {
    /// Starts the rows of a `COPY ... (FORMAT binary)` whose columns have
    /// `types`.
    pub fn new(w: CopyInWriter<'c>, types: Vec<Type>) -> Self {
        let mut buf = BytesMut::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension
        Self { w, buf, types }
    }

    /// One row: a value per column, in order.
    pub fn write(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<()> {
        if values.len() != self.types.len() {
            return Err(Error::internal(format!(
                "staging row of {} values for {} columns",
                values.len(),
                self.types.len()
            )));
        }
        let n = i16::try_from(values.len()).map_err(|_| Error::internal("too many columns"))?;
        self.buf.extend_from_slice(&n.to_be_bytes());
        for (v, ty) in values.iter().zip(&self.types) {
            let at = self.buf.len();
            self.buf.extend_from_slice(&0i32.to_be_bytes());
            let len = match v.to_sql_checked(ty, &mut self.buf) {
                Ok(IsNull::Yes) => -1,
                Ok(IsNull::No) => i32::try_from(self.buf.len() - at - 4)
                    .map_err(|_| Error::data("a staged value is larger than 2 GiB"))?,
                Err(e) => return Err(Error::internal(format!("encoding a staged value: {e}"))),
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        let chunk = self.buf.split();
        self.w.write_all(&chunk).map_err(|e| {
            // The client crate wraps its error in the I/O error.
            match e
                .into_inner()
                .map(<dyn std::error::Error + Send + Sync>::downcast::<postgres::Error>)
            {
                Some(Ok(pe)) => conn::err("staging records", &pe),
                Some(Err(other)) => Error::temp_fail(format!("staging records: {other}")),
                None => Error::temp_fail("staging records: the connection failed"),
            }
        })
    }

    /// The trailer, and the end of the COPY; the rows the server took.
    pub fn finish(mut self) -> Result<u64> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.send()?;
        self.w
            .finish()
            .map_err(|e| conn::err("staging records", &e))
    }
}
