//! Adapter: the WAL reader as the indexer's [`RecordSource`].
//!
//! Keeps `index/` independent of `wal/`: the indexer only knows the trait,
//! the WAL only knows its own reader. Nothing else lives here.

use std::time::Duration;

use crate::index::{IndexInput, Lsn, RecordSource, Signal, SourceError};
use crate::wal::{RecordKind, Wal, WalReader};

pub struct WalSource {
    reader: WalReader,
    wal: Wal,
}

impl WalSource {
    pub fn new(reader: WalReader, wal: Wal) -> Self {
        WalSource { reader, wal }
    }
}

impl RecordSource for WalSource {
    fn next_batch(
        &mut self,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<IndexInput>, SourceError> {
        let records = self.reader.next_batch(max_bytes, timeout)?;
        Ok(records
            .into_iter()
            .map(|r| IndexInput {
                signal: match r.kind {
                    RecordKind::Spans => Signal::Spans,
                    RecordKind::Logs => Signal::Logs,
                },
                payload: r.payload,
                end_lsn: r.end_lsn,
                appended_at: None,
            })
            .collect())
    }

    fn checkpoint(&mut self, lsn: Lsn) -> Result<(), SourceError> {
        self.wal.checkpoint(lsn)?;
        Ok(())
    }

    fn backlog_bytes(&self) -> Option<u64> {
        Some(
            self.wal
                .durable_lsn()
                .saturating_sub(self.reader.position()),
        )
    }
}
