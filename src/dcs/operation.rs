//! The 15 migration-task operations and `ShowJobInfo` (the provisioning job of an online task),
//! named as the official SDK names them.

/// One operation of the migration-task API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CreateMigrationTask,
    CreateOnlineMigrationTask,
    SetOnlineMigrationTask,
    ShowMigrationTask,
    ShowMigrationTaskStats,
    ListMigrationTask,
    ListMigrationTaskLogs,
    StopMigrationTask,
    StopMigrationTaskSync,
    BatchStopMigrationTasks,
    BatchRestartOnlineMigrationTasks,
    UpdateMigrationTask,
    DeleteMigrationTask,
    ExchangeInstanceIp,
    RollbackExchangeInstanceIp,
    ShowJobInfo,
}

impl Operation {
    /// Every operation, in the order of `dcs-api.md` §2, §12 and §12.1.
    pub const ALL: [Operation; 16] = [
        Self::CreateMigrationTask,
        Self::CreateOnlineMigrationTask,
        Self::SetOnlineMigrationTask,
        Self::ShowMigrationTask,
        Self::ListMigrationTask,
        Self::ListMigrationTaskLogs,
        Self::ShowMigrationTaskStats,
        Self::StopMigrationTask,
        Self::StopMigrationTaskSync,
        Self::BatchStopMigrationTasks,
        Self::BatchRestartOnlineMigrationTasks,
        Self::UpdateMigrationTask,
        Self::DeleteMigrationTask,
        Self::ExchangeInstanceIp,
        Self::RollbackExchangeInstanceIp,
        Self::ShowJobInfo,
    ];

    /// The SDK's operation name (also the simulator's call-count key).
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateMigrationTask => "CreateMigrationTask",
            Self::CreateOnlineMigrationTask => "CreateOnlineMigrationTask",
            Self::SetOnlineMigrationTask => "SetOnlineMigrationTask",
            Self::ShowMigrationTask => "ShowMigrationTask",
            Self::ShowMigrationTaskStats => "ShowMigrationTaskStats",
            Self::ListMigrationTask => "ListMigrationTask",
            Self::ListMigrationTaskLogs => "ListMigrationTaskLogs",
            Self::StopMigrationTask => "StopMigrationTask",
            Self::StopMigrationTaskSync => "StopMigrationTaskSync",
            Self::BatchStopMigrationTasks => "BatchStopMigrationTasks",
            Self::BatchRestartOnlineMigrationTasks => "BatchRestartOnlineMigrationTasks",
            Self::UpdateMigrationTask => "UpdateMigrationTask",
            Self::DeleteMigrationTask => "DeleteMigrationTask",
            Self::ExchangeInstanceIp => "ExchangeInstanceIp",
            Self::RollbackExchangeInstanceIp => "RollbackExchangeInstanceIp",
            Self::ShowJobInfo => "ShowJobInfo",
        }
    }

    /// The operation with this SDK name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Position in [`Operation::ALL`] (for counters kept in an array).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|op| *op == self).unwrap_or(0)
    }

    /// True when sending the call twice has the effect of sending it once, so the client may
    /// retry it after an unknown outcome. Creates, configure and the IP switch-over are not:
    /// the controller decides what to do after their failure (a second exchange swaps back).
    /// Stops, restarts and deletes converge on the same end state, so they are.
    pub fn is_idempotent(self) -> bool {
        !matches!(
            self,
            Self::CreateMigrationTask
                | Self::CreateOnlineMigrationTask
                | Self::SetOnlineMigrationTask
                | Self::ExchangeInstanceIp
                | Self::RollbackExchangeInstanceIp
        )
    }
}

/// KiB, for the caps below.
const KIB: usize = 1024;

impl Operation {
    /// False for the operations whose 2xx answer means "accepted" whatever its body (empty, `{}`,
    /// `null`, text: `dcs-api.md` §12.2): nothing in it is decoded.
    pub fn answer_has_content(self) -> bool {
        !matches!(
            self,
            Self::UpdateMigrationTask
                | Self::StopMigrationTaskSync
                | Self::ExchangeInstanceIp
                | Self::RollbackExchangeInstanceIp
        )
    }

    /// True for the operations whose answers run to hundreds of KiB (list pages). Their HTTP connection is
    /// closed after the answer: hyper keeps a connection's read buffer at the largest size it grew to, and a
    /// pooled connection that once carried a 1,000-row page held half a MiB or more for as long as it lived
    /// (9.6 of a 30.3 MiB heap peak at 3,000 resources on 3 accounts, heaptrack). A list walk is one call per
    /// tick per account; the connection it opens costs less than the buffer it would leave behind.
    pub fn answer_is_large(self) -> bool {
        matches!(self, Self::ListMigrationTask | Self::ListMigrationTaskLogs)
    }

    /// The most bytes of a success answer read; a longer answer to be decoded is refused, not
    /// buffered. Measured on the simulator's answers (`tests/answer_caps.rs` keeps these honest:
    /// every cap is at least 3× the largest answer):
    /// - a ListMigrationTask page of 1,000 rows (the API's largest `limit`) with 64-character
    ///   names, 256-character descriptions, three addresses a side and every field set: 1.2 MiB;
    ///   cap 4 MiB;
    /// - a ListMigrationTaskLogs page of 1,000 lines of up to 256 bytes: 0.25 MiB; cap 1 MiB;
    /// - a task (show, stop) of a backup import naming 100 files with long names: 17 KiB; cap 256 KiB;
    /// - the others: a batch answer of 50 items 3.4 KiB, stats 150 bytes; cap 64 KiB.
    pub fn max_answer_bytes(self) -> usize {
        match self {
            Self::ListMigrationTask => 4 * KIB * KIB,
            Self::ListMigrationTaskLogs => KIB * KIB,
            Self::ShowMigrationTask | Self::StopMigrationTask => 256 * KIB,
            _ => 64 * KIB,
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_update_exchange_rollback_and_sync_stop_are_accepted_whatever_their_body() {
        let no_content: Vec<_> = Operation::ALL.into_iter().filter(|op| !op.answer_has_content()).collect();
        assert_eq!(
            no_content,
            [
                Operation::StopMigrationTaskSync,
                Operation::UpdateMigrationTask,
                Operation::ExchangeInstanceIp,
                Operation::RollbackExchangeInstanceIp,
            ]
        );
    }
}
