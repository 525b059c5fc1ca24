//! How staged batches enter DuckDB: a table function, `_etl_stage_batch`,
//! that scans one Arrow batch, so that each batch is written by
//! `INSERT INTO _etl_stage SELECT * FROM _etl_stage_batch(token)`.
//!
//! The Appender did the same work with three copies of every string (into
//! its own `DataChunk`, checked for UTF-8 once more; into its buffer
//! collection; into the table) and cost about 0.65 s per million 10-column
//! string records. Here the scan hands DuckDB `string_t`s that point into
//! the batch's own buffer (strings of up to 12 bytes are inlined, as DuckDB
//! does), and the INSERT copies each string once, into the table: 0.33 s
//! for the same records (`stage` profile in the note of 2026-12-05).
//!
//! This is the crate's only `unsafe` code: writing `string_t`s and validity
//! bits into a DuckDB vector, which duckdb-rs offers only through a
//! function that copies and re-validates every string. Typed columns
//! (integers, decimals, booleans) go through duckdb-rs's own safe
//! conversion.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use duckdb::arrow::array::{Array, AsArray, StringArray};
use duckdb::arrow::datatypes::DataType;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::core::{
    ArrayVector, DataChunkHandle, FlatVector, ListVector, LogicalTypeHandle, LogicalTypeId,
    StructVector,
};
use duckdb::vtab::arrow::{write_arrow_array_to_vector, WritableVector};
use duckdb::vtab::{to_duckdb_logical_type_for_field, BindInfo, InitInfo, TableFunctionInfo, VTab};
use duckdb::{ffi, Connection};

/// The table function's name (ours: a user's SQL never sees it).
pub const FUNCTION: &str = "_etl_stage_batch";

type BoxError = Box<dyn std::error::Error>;

/// Batches waiting to be scanned, by token. Process-wide, as DuckDB's
/// function catalog is per database and a process may open several.
static BATCHES: LazyLock<Mutex<HashMap<u64, RecordBatch>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn batches() -> MutexGuard<'static, HashMap<u64, RecordBatch>> {
    BATCHES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers the table function on `conn`'s database.
pub fn register(conn: &Connection) -> duckdb::Result<()> {
    conn.register_table_function::<BatchScan>(FUNCTION)
}

/// A batch the table function can scan while this value lives.
#[derive(Debug)]
pub struct Registered(u64);

impl Registered {
    pub fn new(rb: RecordBatch) -> Self {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        batches().insert(token, rb);
        Self(token)
    }

    /// The function's argument.
    pub fn token(&self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        batches().remove(&self.0);
    }
}

struct BatchScan;

/// The batch, owned by the statement's bind data: DuckDB frees it only
/// when the statement is done, so the strings the scan points to outlive
/// every chunk it produces.
struct Bound(RecordBatch);

/// The next row to scan.
struct Cursor(AtomicUsize);

impl VTab for BatchScan {
    type BindData = Bound;
    type InitData = Cursor;

    fn bind(bind: &BindInfo) -> Result<Bound, BoxError> {
        let token = u64::try_from(bind.get_parameter(0).to_int64())?;
        let rb = batches()
            .get(&token)
            .cloned()
            .ok_or_else(|| format!("{FUNCTION}: no batch {token}"))?;
        for f in rb.schema().fields() {
            bind.add_result_column(f.name(), to_duckdb_logical_type_for_field(f)?);
        }
        Ok(Bound(rb))
    }

    fn init(init: &InitInfo) -> Result<Cursor, BoxError> {
        init.set_max_threads(1);
        Ok(Cursor(AtomicUsize::new(0)))
    }

    fn func(func: &TableFunctionInfo<Self>, output: &mut DataChunkHandle) -> Result<(), BoxError> {
        let rb = &func.get_bind_data().0;
        let cursor = &func.get_init_data().0;
        let off = cursor.load(Ordering::Relaxed);
        // SAFETY: a plain getter of a compile-time constant.
        let cap = usize::try_from(unsafe { ffi::duckdb_vector_size() })?;
        let n = rb.num_rows().saturating_sub(off).min(cap);
        cursor.store(off + n, Ordering::Relaxed);
        for (c, col) in rb.columns().iter().enumerate() {
            if *col.data_type() == DataType::Utf8 {
                strings(col.as_string::<i32>(), off, n, output, c)?;
            } else {
                write_arrow_array_to_vector(&col.slice(off, n), &mut Column(output, c))?;
            }
        }
        output.set_len(n);
        Ok(())
    }

    fn parameters() -> Option<Vec<LogicalTypeHandle>> {
        Some(vec![LogicalTypeHandle::from(LogicalTypeId::Bigint)])
    }
}

/// Column `.1` of a chunk, for duckdb-rs's conversion.
struct Column<'a>(&'a mut DataChunkHandle, usize);

impl WritableVector for Column<'_> {
    fn flat_vector(&mut self) -> FlatVector<'_> {
        self.0.flat_vector(self.1)
    }
    fn list_vector(&mut self) -> ListVector<'_> {
        self.0.list_vector(self.1)
    }
    fn array_vector(&mut self) -> ArrayVector<'_> {
        self.0.array_vector(self.1)
    }
    fn struct_vector(&mut self) -> StructVector<'_> {
        self.0.struct_vector(self.1)
    }
}

/// DuckDB's `string_t` for `s` (its C API's `duckdb_string_t`): the length
/// (u32), then up to 12 bytes inlined and zero-padded (DuckDB compares
/// inlined strings as two 8-byte words), or the first 4 bytes and a
/// pointer to all of them.
fn string_t(s: &[u8]) -> Result<[u8; 16], BoxError> {
    let mut t = [0u8; 16];
    t[..4].copy_from_slice(&u32::try_from(s.len())?.to_le_bytes());
    if s.len() <= 12 {
        t[4..4 + s.len()].copy_from_slice(s);
    } else {
        t[4..8].copy_from_slice(&s[..4]);
        t[8..].copy_from_slice(&(s.as_ptr() as usize).to_le_bytes());
    }
    Ok(t)
}

/// Rows `off..off + n` of `a` into column `c` of `out`, without copying the
/// strings (see the module's comment).
fn strings(
    a: &StringArray,
    off: usize,
    n: usize,
    out: &DataChunkHandle,
    c: usize,
) -> Result<(), BoxError> {
    let c = u64::try_from(c)?;
    // SAFETY: `c` is a column of `out` (the chunk has one per batch column,
    // bound from the same schema); its validity mask is made writable
    // before it is read.
    let (data, mask) = unsafe {
        let v = ffi::duckdb_data_chunk_get_vector(out.get_ptr(), c);
        ffi::duckdb_vector_ensure_validity_writable(v);
        (
            ffi::duckdb_vector_get_data(v).cast::<[u8; 16]>(),
            ffi::duckdb_vector_get_validity(v),
        )
    };
    for i in 0..n {
        let row = off + i;
        let cell = if a.is_null(row) {
            None
        } else {
            Some(string_t(a.value(row).as_bytes())?)
        };
        let bit = 1u64 << (i % 64);
        // SAFETY:
        // - `i < n <= duckdb_vector_size()`, the number of 16-byte
        //   `string_t`s the vector's data holds and of bits in its mask;
        // - a non-inlined `string_t` points into `a`'s buffer, which the
        //   statement's bind data owns until the statement is done; the
        //   INSERT it feeds copies every string into the table before then.
        unsafe {
            let word = mask.add(i / 64);
            match cell {
                Some(t) => {
                    data.add(i).write(t);
                    *word |= bit;
                }
                None => *word &= !bit,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{ArrayRef, Int64Array, StringArray};
    use duckdb::arrow::record_batch::RecordBatch;
    use duckdb::Connection;

    use super::{register, string_t, Registered, FUNCTION};

    /// A scan of 5,000 rows (three DuckDB chunks) lands as it was: strings
    /// inlined and not, nulls in both columns; registering twice (a second
    /// staging on one connection) is no error; a dropped batch is gone.
    #[test]
    fn a_batch_scans_as_it_was() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        register(&conn).unwrap();
        let n = 5000_i64;
        let ints: Int64Array = (0..n).map(|i| (i % 3 != 0).then_some(i)).collect();
        let texts: StringArray = (0..n)
            .map(|i| (i % 5 != 0).then(|| "x".repeat(usize::try_from(i % 20).unwrap())))
            .collect();
        let rb = RecordBatch::try_from_iter([
            ("i", Arc::new(ints) as ArrayRef),
            ("s", Arc::new(texts) as ArrayRef),
        ])
        .unwrap();
        let batch = Registered::new(rb);
        conn.execute_batch("CREATE TABLE t (i BIGINT, s VARCHAR)")
            .unwrap();
        conn.execute(
            &format!("INSERT INTO t SELECT * FROM {FUNCTION}(?)"),
            [batch.token()],
        )
        .unwrap();
        let (rows, ints, nulls, len, text_nulls): (i64, i64, i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), sum(i), count(*) FILTER (WHERE i IS NULL), \
                 sum(strlen(s)), count(*) FILTER (WHERE s IS NULL) FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        let want_len: i64 = (0..n).filter(|i| i % 5 != 0).map(|i| i % 20).sum();
        let want_ints: i64 = (0..n).filter(|i| i % 3 != 0).sum();
        assert_eq!((rows, ints, nulls), (n, want_ints, (n + 2) / 3));
        assert_eq!((len, text_nulls), (want_len, n / 5));
        let bad: i64 = conn
            .query_row(
                "SELECT count(*) FROM t WHERE s IS NOT NULL AND s <> repeat('x', strlen(s))",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(bad, 0);
        let token = batch.token();
        drop(batch);
        let gone = conn.execute(&format!("SELECT * FROM {FUNCTION}(?)"), [token]);
        assert!(gone.is_err());
    }

    #[test]
    fn string_t_inlines_up_to_12_bytes_zero_padded() {
        let t = string_t(b"abc").unwrap();
        assert_eq!(&t[..4], &3u32.to_le_bytes());
        assert_eq!(&t[4..7], b"abc");
        assert!(t[7..].iter().all(|&b| b == 0));
        let twelve = string_t(b"123456789012").unwrap();
        assert_eq!(&twelve[4..], b"123456789012");
    }

    #[test]
    fn string_t_points_to_longer_strings() {
        let s = b"customer 12345";
        let t = string_t(s).unwrap();
        assert_eq!(&t[..4], &14u32.to_le_bytes());
        assert_eq!(&t[4..8], b"cust");
        assert_eq!(t[8..], (s.as_ptr() as usize).to_le_bytes());
    }
}
