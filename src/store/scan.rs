//! Lists read from the indexed columns: the name and signer selectors, the continue position
//! and the page size go into SQL, the caller's filter sees the columns (and decodes the object
//! only when it must, e.g. for a label selector), and matching rows come back as their stored
//! JSON, so a page of a large table reads only what it returns.

use rusqlite::params;

use super::{Store, StoreError, current_rv};

/// What SQL can narrow a list by.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery<'a> {
    /// Only this name (`fieldSelector=metadata.name=X`).
    pub name: Option<&'a str>,
    /// Only this signer (`fieldSelector=spec.signerName=X`).
    pub signer_name: Option<&'a str>,
    /// Names after this one (the continue token's position).
    pub after: Option<&'a str>,
    /// Stop after this many kept rows.
    pub max_rows: Option<usize>,
}

/// One stored row's indexed columns and its object as stored.
#[derive(Debug, Clone)]
pub struct Row {
    /// `metadata.name`.
    pub name: String,
    /// `spec.username`.
    pub requester: String,
    /// The request's subject CN.
    pub subject_cn: Option<String>,
    /// `spec.signerName`.
    pub signer_name: String,
    /// The object, JSON.
    pub json: String,
}

impl Store {
    /// The rows matching `q` that `keep` accepts, ordered by name, at most `q.max_rows`, and
    /// the resourceVersion of that snapshot.
    pub fn scan(
        &self,
        q: &ListQuery<'_>,
        keep: &mut dyn FnMut(&Row) -> bool,
    ) -> Result<(Vec<Row>, u64), StoreError> {
        let st = self.lock()?;
        let mut stmt = st.conn.prepare_cached(
            "SELECT name, requester, subject_cn, signer_name, object FROM csrs
             WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR signer_name = ?2)
               AND (?3 IS NULL OR name > ?3)
             ORDER BY name",
        )?;
        let mut rows = stmt.query(params![q.name, q.signer_name, q.after])?;
        let mut out = Vec::new();
        while q.max_rows.is_none_or(|m| out.len() < m) {
            let Some(r) = rows.next()? else { break };
            let row = Row {
                name: r.get(0)?,
                requester: r.get(1)?,
                subject_cn: r.get(2)?,
                signer_name: r.get(3)?,
                json: r.get(4)?,
            };
            if keep(&row) {
                out.push(row);
            }
        }
        drop(rows);
        drop(stmt);
        Ok((out, current_rv(&st.conn)?))
    }

    /// How many CSRs are in a lifecycle phase (`pending`, `approved`, ...: [`super::phase`]).
    pub fn count_phase(&self, phase: &str) -> Result<usize, StoreError> {
        let st = self.lock()?;
        let n: i64 = st
            .conn
            .prepare_cached("SELECT count(*) FROM csrs WHERE phase = ?1")?
            .query_row(params![phase], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
